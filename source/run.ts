// Runs one sync described by Options: local engine or remote transport; throws on failure.
import type {Options} from './options.js';
import type {Reporter, Summary} from './engine/progress.js';
import {UsageError} from './errors.js';

/** Runs the sync; the reporter receives the summary, which is also returned. */
export async function run(options: Options, reporter: Reporter, signal: AbortSignal): Promise<Summary> {
	if (options.src.kind === 'local' && options.dst.kind === 'local') {
		const {localSync} = await import('./engine/local-sync.js');
		return localSync(options.src.path, options.dst.path, options, reporter, signal);
	}
	throw new UsageError('remote endpoints are not supported yet');
}
