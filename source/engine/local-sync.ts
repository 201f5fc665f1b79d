// Local-to-local sync: preconditions, workers over ranges, fdatasync, optional verify, the summary.
import {describeSystemError, InterruptedError, TransferError} from '../errors.js';
import type {Options} from '../options.js';
import type {Image, WritableImage} from '../transport/image.js';
import {LocalImage, setWarnSink} from '../transport/local-image.js';
import {batchBytesFor, blockCount, splitRanges} from './blocks.js';
import {openDestination, openSource, planDestination, syncCreatedEntry} from './preflight.js';
import {type PoolJob, type PoolResult, runPool} from './pool.js';
import {finishFailedSummary, finishSummary, onceWarner, recordVerify, startSummary} from './run-summary.js';
import {type Reporter, type Summary, type SyncStart, totalOf} from './progress.js';

export type LocalSyncOptions = Pick<Options, 'truncate' | 'blockSize' | 'workers' | 'dryRun' | 'verify' | 'copy' | 'force' | 'hash'>;

/** Syncs local SRC onto local DST; returns the summary (also given to reporter.finish) or throws a RblocksyncError. */
export async function localSync(srcPath: string, dstPath: string, options: LocalSyncOptions, reporter: Reporter, signal: AbortSignal): Promise<Summary> {
	const started = performance.now();
	const elapsed = (): number => (performance.now() - started) / 1000;
	const warn = onceWarner(reporter);
	setWarnSink(warn);
	const source = openSource(srcPath);
	let summary: Summary | undefined;
	let dst: Image | undefined;
	try {
		if (source.warning) {
			warn(source.warning);
		}
		const size = source.image.size;
		const plan = planDestination(dstPath, size, source.identity, options);
		if (signal.aborted) {
			throw new InterruptedError('interrupted before DST was opened; DST untouched');
		}
		const opened = openDestination(plan, options);
		dst = opened.image;
		const writable = opened.writable;
		const batchBytes = batchBytesFor(options.blockSize);
		const ranges = splitRanges(size, options.workers, batchBytes);
		const start: SyncStart = {
			src: srcPath,
			dst: dstPath,
			direction: 'local',
			size,
			blockSize: options.blockSize,
			hash: options.hash,
			workers: ranges.length,
			dryRun: options.dryRun,
			phase: 'sync',
		};
		summary = startSummary(start, blockCount(size, options.blockSize), plan.extraBytes);
		reporter.start(start);
		const jobs = (write: boolean, copy: boolean, knownEnd: number): PoolJob[] => ranges.map(range => ({
			src: handle(source.image),
			dst: handle(dst!),
			write,
			job: {...range, blockSize: options.blockSize, batchBytes, copy, dstKnownData: {start: 0, end: knownEnd}},
		}));
		const result = await runPool(jobs(writable !== undefined, options.copy, opened.knownData.end), {signal, warn, progress: states => reporter.progress(states, elapsed())});
		Object.assign(summary, totalOf(result.states));
		finishPhase(result, writable, dstPath, signal);
		if (writable) {
			try {
				syncCreatedEntry(plan);
			} catch (error) {
				throw new TransferError(`DST ${dstPath}: flushing its directory entry failed: ${describeSystemError(error)}; DST may be lost on a crash`, {cause: error});
			}
		}

		if (options.verify) {
			for (const image of [source.image, dst]) {
				if (image instanceof LocalImage) {
					image.dropCache();
				}
			}
			reporter.start({...start, phase: 'verify'});
			const check = await runPool(jobs(false, false, size), {signal, warn, progress: states => reporter.progress(states, elapsed())});
			finishPhase(check, undefined, dstPath, signal);
			recordVerify(summary, totalOf(check.states).blocksChanged, dstPath);
		}
		await finishSummary(reporter, summary, elapsed());
		return summary;
	} catch (error) {
		await finishFailedSummary(reporter, summary, elapsed(), error);
		throw error;
	} finally {
		dst?.close();
		source.image.close();
	}
}

/** After a pool run: flush DST, then turn a stop or a failure into the right error. */
function finishPhase(result: PoolResult, writable: WritableImage | undefined, dstPath: string, signal: AbortSignal): void {
	let flushError: unknown;
	try {
		writable?.sync();
	} catch (error) {
		flushError = error;
	}
	if (result.error) {
		const partial = writable ? '; DST may be partially updated' : '';
		throw new TransferError(`worker ${result.error.worker}: ${result.error.message}${partial}`);
	}
	if (flushError) {
		throw new TransferError(`DST ${dstPath}: flushing to disk failed: ${describeSystemError(flushError)}; DST may be partially updated`, {cause: flushError});
	}
	if (signal.aborted || !result.completed) {
		throw new InterruptedError(writable ? 'interrupted; DST may be partially updated' : 'interrupted');
	}
}

function handle(image: Image): PoolJob['src'] {
	if (!(image instanceof LocalImage)) {
		// A dry run against a missing DST: a closed fd is never read because knownData is empty.
		return {fd: -1, name: image.name, kind: 'file', size: 0};
	}
	return {fd: image.fd, name: image.name, kind: image.kind === 'block' ? 'block' : 'file', size: image.size};
}
