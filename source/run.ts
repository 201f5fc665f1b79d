// Runs one sync described by Options: picks local or remote, reports, throws on failure.
import type {Options} from './options.js';
import type {Reporter} from './engine/progress.js';
import {UsageError} from './errors.js';

export async function run(options: Options, reporter: Reporter, signal: AbortSignal): Promise<void> {
	void reporter;
	void signal;
	if (options.src.kind === 'local' && options.dst.kind === 'local') {
		throw new UsageError('local sync is not built yet');
	}
	throw new UsageError('remote endpoints are not supported yet');
}
