// Messages between the engine's main thread and its worker threads.
import type {Range} from '../image/image.js';
import type {Counters} from './progress.js';
import type {RangeJob} from './sync-range.js';

/** An image as a worker sees it: an fd the main thread owns, shared by every thread of the process. */
export type ImageHandle = {fd: number; name: string; kind: 'file' | 'block'; size: number};

export type WorkerInput = {
	src: ImageHandle;
	dst: ImageHandle;
	/** false: compare only (dry run, verify). */
	write: boolean;
	job: RangeJob;
	/** Int32Array view: [0] stop flag, [1] write lock. */
	shared: SharedArrayBuffer;
};

export type WorkerMessage =
	| {type: 'progress'; counters: Counters}
	| {type: 'warn'; message: string}
	| {type: 'done'; counters: Counters; completed: boolean}
	| {type: 'error'; message: string; code: string | undefined; counters: Counters};

export const STOP = 0;
export const LOCK = 1;

export type {Range};
