// Runs one sync described by Options: picks the backend (both images here, or the digest protocol over links) for the one orchestrator.
import {formatEndpoint} from './endpoint.js';
import type {Options} from './options.js';
import type {Reporter, Summary} from './engine/progress.js';

/** Runs the sync; the reporter receives the summary, which is also returned. */
export async function run(options: Options, reporter: Reporter, signal: AbortSignal): Promise<Summary> {
	const {runSync} = await import('./engine/run-sync.js');
	if (options.src.kind === 'local' && options.dst.kind === 'local') {
		const {LocalBackend} = await import('./engine/local-backend.js');
		return runSync(new LocalBackend(options.src.path, options.dst.path, options), options, reporter, signal);
	}
	const {RemoteBackend} = await import('./remote/remote-backend.js');
	const backend = new RemoteBackend({...options, srcName: formatEndpoint(options.src), dstName: formatEndpoint(options.dst)});
	return runSync(backend, options, reporter, signal);
}
