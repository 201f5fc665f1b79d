// Runs one sync described by Options: picks the backend (both images here, or the digest protocol over links) for the one orchestrator.
import {formatEndpoint} from './endpoint.js';
import type {Options} from './options.js';
import type {Direction, Reporter, Summary} from './engine/progress.js';
import type {RemoteHosts} from './remote/hosts.js';

/** What a run over many files adds for each of its files: the run's shared connections, and DST's attributes to set. */
export type FileRun = {readonly hosts?: RemoteHosts; readonly afterSync?: () => Promise<void>};

/** Runs the sync; the reporter receives the summary, which is also returned. */
export async function run(options: Options, reporter: Reporter, signal: AbortSignal, file: FileRun = {}): Promise<Summary> {
	const {runSync} = await import('./engine/run-sync.js');
	const names = {src: formatEndpoint(options.src), dst: formatEndpoint(options.dst), direction: directionOf(options)};
	const afterSync = file.afterSync === undefined ? {} : {afterSync: file.afterSync};
	// A formatted endpoint (qcow2, ...) is an NBD export, not an fd the byte-comparison threads can read: such a
	// local run takes the digest protocol over worker threads, each role connecting to its image's qemu-nbd
	// (or, with --qmp, to the export of the running VM's QEMU).
	const served = [options.srcFormat, options.dstFormat].some(format => format !== undefined && format !== 'raw') || options.qmp !== undefined;
	// A local run whose DST has a usable digest cache takes the digest path too (worker threads): SRC is read, DST not.
	// So does one to a block device, which keeps its cache as over SSH (used with --trust-cache after a sample check).
	const local = options.src.kind === 'local' && options.dst.kind === 'local' && !served && options.bitmap === undefined;
	if (local && !(options.cache && !options.dryRun && await usableCache(options.dst.path, options))) {
		const {LocalBackend} = await import('./engine/local-backend.js');
		return runSync(new LocalBackend(options.src.path, options.dst.path, options), {...options, names, ...afterSync}, reporter, signal);
	}
	const {RemoteBackend} = await import('./remote/remote-backend.js');
	const backend = new RemoteBackend({...options, srcName: names.src, dstName: names.dst}, undefined, file.hosts);
	return runSync(backend, {...options, names, ...afterSync}, reporter, signal);
}

async function usableCache(dstPath: string, options: Options): Promise<boolean> {
	const {deviceCacheable, usableCacheFor} = await import('./delta/dest-cache.js');
	return usableCacheFor(dstPath, options.hash, options.blockSize, options.cacheDir) || deviceCacheable(dstPath, options.blockSize);
}

/** Where the images live, as the summary says it. */
export function directionOf(options: Pick<Options, 'src' | 'dst'>): Direction {
	if (options.src.kind === 'local') {
		return options.dst.kind === 'local' ? 'local' : 'push';
	}
	return options.dst.kind === 'local' ? 'pull' : 'relay';
}
