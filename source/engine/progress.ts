// Progress flows from the engine through a Reporter; the engine never touches the terminal.
import type {Counters} from '../blocks/counters.js';

export {addCounters, type Counters, emptyCounters, totalOf} from '../blocks/counters.js';

/** Where an image lives, for the header and the summary. */
export type Direction = 'local' | 'push' | 'pull' | 'relay';

export type WorkerState = Counters & {
	readonly id: number;
	/** Byte range [start, end) of the image this worker owns. */
	readonly start: number;
	readonly end: number;
	done: boolean;
};

/** What is known before the first byte is compared. */
export type SyncStart = {
	readonly src: string;
	readonly dst: string;
	readonly direction: Direction;
	readonly size: number;
	readonly blockSize: number;
	readonly hash: string;
	readonly workers: number;
	readonly dryRun: boolean;
	readonly phase: 'sync' | 'verify';
	/** --bwlimit: the run's bytes per second on the wire; absent without one. */
	readonly bwlimit?: number;
};

/** The end-of-run figures; also the --json object. */
export type Summary = Counters & {
	src: string;
	dst: string;
	direction: Direction;
	size: number;
	blockSize: number;
	blocksTotal: number;
	hash: string;
	workers: number;
	dryRun: boolean;
	/** --bwlimit in bytes per second; absent without one. */
	bwlimit?: number;
	/** Over SSH: the sessions' compression ("zstd 1, auto", "zlib 6", "off"), and SRC's data bytes over their wire bytes (1: none saved). */
	compression?: string;
	compressionRatio?: number;
	/** Over SSH: how many times the run reconnected after a link dropped (--retries). */
	reconnects?: number;
	/** null when --verify was not asked for. */
	verified: boolean | null;
	/** Bytes of a DST block device beyond SRC's size, left as they were. */
	dstExtraBytes: number;
	/** DEST's digest cache: "used", "built", "stale: <reason>", "off: <reason>"; absent when the backend keeps none. */
	cache?: string;
	/** --bitmap: "incremental" (only the chunks SRC's dirty bitmap marks were read) or "full: <reason>". */
	bitmap?: string;
	seconds: number;
	ok: boolean;
	/** The one-line error when ok is false. */
	error?: string;
};

/** Receives progress; every method may be called from the main thread only. */
export interface Reporter {
	start(info: SyncStart): void;
	/** Called at most ~10 times a second with every worker's state. */
	progress(workers: readonly WorkerState[], elapsedSeconds: number): void;
	warn(message: string): void;
	/** The run ended, successfully or not; returns when the output is flushed. */
	finish(summary: Summary): void | Promise<void>;
}

/** The default reporter: says nothing. */
export const silentReporter: Reporter = {
	start() {},
	progress() {},
	warn() {},
	finish() {},
};
