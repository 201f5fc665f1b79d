// The one orchestrator: prepare, ranges per worker, the start event, progress, the first failure stopping
// the rest, the verify phase, the summary and the wording of interrupted and partial runs.
import {blockCount, workerRanges} from '../blocks/blocks.js';
import {emptyCounters, totalOf} from '../blocks/counters.js';
import {InterruptedError} from '../errors.js';
import type {Phase, SyncBackend} from './backend.js';
import type {Reporter, Summary, SyncStart, WorkerState} from './progress.js';
import {finishFailedSummary, finishSummary, onceWarner, recordVerify, startSummary, unstartedSummary} from './run-summary.js';

/** What the orchestrator itself needs of the options. */
export type RunOptions = {
	readonly blockSize: number;
	readonly workers: number;
	readonly dryRun: boolean;
	readonly verify: boolean;
	readonly hash: string;
	/** --bwlimit in bytes per second (0 or absent: none), for the header and the summary. */
	readonly bwlimit?: number;
	/** SRC and DST as a summary names them, for a run that fails before its prepare step tells (--json still prints one). */
	readonly names?: Pick<Summary, 'src' | 'dst' | 'direction'>;
	/** After a successful sync phase (SRC checked), before DEST's digest cache is bound to DST: a run over many files sets DST's attributes here. */
	readonly afterSync?: () => Promise<void>;
};

const PROGRESS_INTERVAL_MS = 100;

/** Runs one sync through `backend`; returns the summary (also given to reporter.finish) or throws a RblocksyncError. */
export async function runSync(backend: SyncBackend, options: RunOptions, reporter: Reporter, signal: AbortSignal): Promise<Summary> {
	const started = performance.now();
	const elapsed = (): number => (performance.now() - started) / 1000;
	const warn = onceWarner(reporter);
	let summary: Summary | undefined;
	let closing: Promise<void> | undefined;
	const closeBackend = (): Promise<void> => (closing ??= backend.close());
	try {
		const prepared = await backend.prepare({signal, warn, rangesFor: size => workerRanges(size, options.workers, options.blockSize)});
		const ranges = workerRanges(prepared.size, options.workers, options.blockSize);
		const start: SyncStart = {
			src: prepared.src, dst: prepared.dst, direction: prepared.direction, size: prepared.size,
			blockSize: options.blockSize, hash: options.hash, workers: ranges.length, dryRun: options.dryRun, phase: 'sync',
			...(options.bwlimit ? {bwlimit: options.bwlimit} : {}),
		};
		const begun = startSummary(start, blockCount(prepared.size, options.blockSize), prepared.dstExtraBytes);
		summary = begun;
		reporter.start(start);

		const runPhase = async (phase: Phase): Promise<WorkerState[]> => {
			const states: WorkerState[] = ranges.map((range, index) => ({id: index + 1, ...range, ...emptyCounters(), done: false}));
			const stop = new AbortController();
			const onAbort = (): void => stop.abort();
			signal.addEventListener('abort', onAbort);
			if (signal.aborted) {
				stop.abort();
			}
			const report = (): void => {
				backend.sample(states);
				reporter.progress(states, elapsed());
			};
			const timer = setInterval(report, PROGRESS_INTERVAL_MS);
			let failure: {error: unknown} | undefined;
			let completed = true;
			try {
				await Promise.all(ranges.map(async (range, index) => {
					const state = states[index]!;
					try {
						const result = await backend.runRange(range, index, phase, {state, warn, signal: stop.signal});
						state.done = result.completed;
						completed &&= result.completed;
					} catch (error) {
						// The first failure stops the other workers; theirs are consequences, not causes.
						failure ??= {error};
						completed = false;
						stop.abort();
					}
					report();
				}));
			} finally {
				clearInterval(timer);
				signal.removeEventListener('abort', onAbort);
			}
			let flushFailure: {error: unknown} | undefined;
			try {
				await backend.endPhase(phase, completed && !signal.aborted);
			} catch (error) {
				flushFailure = {error};
			}
			if (phase === 'sync' && !options.dryRun && !signal.aborted) {
				// After every range: a SRC that changed meanwhile was not copied consistently (and a read past
				// the end of a shrunk one failed): that is the cause to report.
				try {
					await backend.checkSource(failure !== undefined);
				} catch (error) {
					failure = {error};
				}
			}
			report();
			const reconnects = backend.reconnects?.();
			if (reconnects !== undefined) {
				begun.reconnects = reconnects;
			}
			if (phase === 'sync') {
				// Also when the phase failed or was interrupted: the summary then tells how far it got.
				Object.assign(begun, totalOf(states));
				begun.wireBytesSent += backend.setupBytesSent;
				begun.dstBytesRead += backend.setupDstBytesRead ?? 0;
			}
			if (failure) {
				throw failure.error;
			}
			if (flushFailure) {
				throw flushFailure.error;
			}
			if (signal.aborted || !completed) {
				throw new InterruptedError(phase === 'sync' && !options.dryRun ? 'interrupted; DST may be partially updated' : 'interrupted');
			}
			return states;
		};

		await runPhase('sync');
		if (!options.dryRun) {
			await options.afterSync?.();
		}
		if (options.verify) {
			await backend.beforeVerify(warn);
			reporter.start({...start, phase: 'verify'});
			const verified = totalOf(await runPhase('verify'));
			begun.wireBytesSent += verified.wireBytesSent;
			begun.wireBytesReceived += verified.wireBytesReceived;
			// Bytes read are the run's: the verify pass reads both images again.
			begun.srcBytesRead += verified.srcBytesRead;
			begun.dstBytesRead += verified.dstBytesRead;
			recordVerify(begun, verified.blocksChanged, prepared.dst);
		}
		// Only now, after a verify phase found DST equal: a cache (and SRC's stamp in it) vouches for DST from here on.
		const cache = options.dryRun ? undefined : await backend.finishSync?.();
		if (cache !== undefined) {
			begun.cache = cache;
		}
		const compression = backend.compressionSummary?.();
		if (compression !== undefined) {
			Object.assign(begun, compression);
		}
		const bitmap = backend.bitmapSummary?.();
		if (bitmap !== undefined) {
			begun.bitmap = bitmap;
		}
		if (!options.dryRun) {
			await backend.finishRun?.();
		}
		await finishSummary(reporter, begun, elapsed());
		return begun;
	} catch (error) {
		// Closed first: a local DEST thread flushes what it wrote as it ends, and the summary comes after that.
		await closeBackend();
		await finishFailedSummary(reporter, summary ?? (options.names && unstartedSummary(options.names, options)), elapsed(), error);
		throw error;
	} finally {
		await closeBackend();
	}
}

/** The error for a stop before DST was opened (both backends check between SRC and DST). */
export function throwIfStoppedBeforeDst(signal: AbortSignal): void {
	if (signal.aborted) {
		throw new InterruptedError('interrupted before DST was opened; DST untouched');
	}
}
