// Runs one sync described by Options: picks the backend (both images here, or the digest protocol over links) for the one orchestrator.
import {formatEndpoint} from './endpoint.js';
import type {Options} from './options.js';
import type {Direction, Reporter, Summary} from './engine/progress.js';

/** Runs the sync; the reporter receives the summary, which is also returned. */
export async function run(options: Options, reporter: Reporter, signal: AbortSignal): Promise<Summary> {
	const {runSync} = await import('./engine/run-sync.js');
	const names = {src: formatEndpoint(options.src), dst: formatEndpoint(options.dst), direction: directionOf(options)};
	// A formatted endpoint (qcow2, ...) is an NBD export, not an fd the byte-comparison threads can read: such a
	// local run takes the digest protocol over worker threads, each role connecting to its image's qemu-nbd.
	const served = [options.srcFormat, options.dstFormat].some(format => format !== undefined && format !== 'raw');
	if (options.src.kind === 'local' && options.dst.kind === 'local' && !served && options.bitmap === undefined) {
		const {LocalBackend} = await import('./engine/local-backend.js');
		return runSync(new LocalBackend(options.src.path, options.dst.path, options), {...options, names}, reporter, signal);
	}
	const {RemoteBackend} = await import('./remote/remote-backend.js');
	const backend = new RemoteBackend({...options, srcName: names.src, dstName: names.dst});
	return runSync(backend, {...options, names}, reporter, signal);
}

/** Where the images live, as the summary says it. */
function directionOf(options: Pick<Options, 'src' | 'dst'>): Direction {
	if (options.src.kind === 'local') {
		return options.dst.kind === 'local' ? 'local' : 'push';
	}
	return options.dst.kind === 'local' ? 'pull' : 'relay';
}
