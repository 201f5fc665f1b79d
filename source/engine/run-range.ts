// One worker's job, the same in a worker thread and in-process: wrap the fds, run syncRange, report.
import {LocalImage} from '../image/local-image.js';
import {emptyCounters} from './progress.js';
import {syncRange, type WriteLock} from './sync-range.js';
import {LOCK, STOP, type WorkerInput, type WorkerMessage} from './worker-protocol.js';

const PROGRESS_INTERVAL_MS = 100;

/** A lock on one Int32 slot of shared memory, usable from every thread. */
export function sharedLock(shared: Int32Array, index: number): WriteLock {
	return {
		acquire() {
			while (Atomics.compareExchange(shared, index, 0, 1) !== 0) {
				Atomics.wait(shared, index, 1, 100);
			}
		},
		release() {
			Atomics.store(shared, index, 0);
			Atomics.notify(shared, index, 1);
		},
	};
}

/** Runs the job and posts progress/done/error messages; never throws. */
export function runRange(input: WorkerInput, post: (message: WorkerMessage) => void): void {
	const shared = new Int32Array(input.shared);
	const counters = emptyCounters();
	const warn = (message: string): void => post({type: 'warn', message});
	const src = new LocalImage(input.src.fd, input.src.name, input.src.kind, input.src.size, warn);
	const dst = new LocalImage(input.dst.fd, input.dst.name, input.dst.kind, input.dst.size, warn);
	let last = 0;
	try {
		const completed = syncRange(src, dst, input.write ? dst : undefined, input.job, counters, {
			shouldStop: () => Atomics.load(shared, STOP) !== 0,
			progress(current) {
				const now = Date.now();
				if (now - last >= PROGRESS_INTERVAL_MS) {
					last = now;
					post({type: 'progress', counters: {...current}});
				}
			},
			lock: sharedLock(shared, LOCK),
		});
		post({type: 'done', counters, completed});
	} catch (error) {
		const code = (error as {code?: unknown} | null)?.code;
		post({
			type: 'error',
			message: error instanceof Error ? error.message : String(error),
			code: typeof code === 'string' ? code : undefined,
			counters,
		});
	}
}
