// The contract between the one orchestrator (run-sync.ts) and the ways a sync can run: both images on
// this host compared byte by byte, or the digest protocol between two roles over links.
import type {Range} from '../blocks/blocks.js';
import type {Direction, WorkerState} from './progress.js';

/** sync: make DST equal SRC (or count what differs, in a dry run); verify: count what differs, never write. */
export type Phase = 'sync' | 'verify';

/** What the prepare step learnt: SRC's size, and DST checked (created or resized) and locked. */
export type Prepared = {
	readonly src: string;
	readonly dst: string;
	readonly direction: Direction;
	readonly size: number;
	/** Bytes of a DST block device beyond SRC's size, left alone. */
	readonly dstExtraBytes: number;
};

export type PrepareHooks = {
	readonly signal: AbortSignal;
	warn(message: string): void;
	/** The ranges the workers will own once SRC's size is known (backends open their channels early). */
	rangesFor(size: number): Range[];
};

export type RangeHooks = {
	/** This worker's live state: the backend updates its counters in place; the orchestrator reports it. */
	readonly state: WorkerState;
	warn(message: string): void;
	/** Aborted when the run stops: the user's signal, or another worker's failure. */
	readonly signal: AbortSignal;
};

export interface SyncBackend {
	/** Opens both endpoints, runs every precondition, creates or resizes DST. Throws UsageError (exit 1) on refusal. */
	prepare(hooks: PrepareHooks): Promise<Prepared>;
	/**
	 * Runs one worker's range of a phase. Resolves `completed: false` when stopped by the signal;
	 * rejects with the error to report (already worded for the user).
	 */
	runRange(range: Range, index: number, phase: Phase, hooks: RangeHooks): Promise<{completed: boolean}>;
	/** After every range of a phase has ended (`ok`: all completed): flush DST. Throws the flush failure. */
	endPhase(phase: Phase, ok: boolean): Promise<void>;
	/**
	 * After the sync phase's ranges and endPhase (not in a dry run, not when interrupted): throws a TransferError
	 * naming SRC when SRC's size, or a file's mtime/ctime, moved since prepare (a read of a shrunk SRC fails first:
	 * this error then replaces that one). `failed`: a range failed; a check that cannot run is then not reported.
	 */
	checkSource(failed: boolean): Promise<void>;
	/**
	 * After a successful sync phase (checkSource passed; not in a dry run): puts DEST's digest cache in place, bound
	 * to DST as it is now; returns the cache's status for the summary (undefined: no cache in this backend).
	 */
	finishSync?(): Promise<string | undefined>;
	/** --bitmap: what the sync phase was ("incremental", "full: <reason>") for the summary; undefined without it. */
	bitmapSummary?(): string | undefined;
	/** The sessions' compression ("zstd 1, auto", "off") and the bytes of SRC's data runs over their bytes on the wire; undefined: no wire. */
	compressionSummary?(): {compression: string; compressionRatio: number} | undefined;
	/** --retries: how many times the run reconnected after a link dropped (absent: no links to drop). */
	reconnects?(): number;
	/** After the whole run succeeded (sync, finishSync, --verify): keeps what the next run builds on (SRC's bitmap rotated). */
	finishRun?(): Promise<void>;
	/** Before the verify phase: drop both images from the page caches, wherever they are. */
	beforeVerify(warn: (message: string) => void): Promise<void>;
	/** Called before each progress report with the phase's states (e.g. to fill in wire bytes). */
	sample(states: readonly WorkerState[]): void;
	/** Bytes sent before the sessions (an uploaded agent), counted in the summary's wireBytesSent. */
	readonly setupBytesSent: number;
	/** DST bytes read before the sessions (a trusted device cache's sample check), counted in the summary's dstBytesRead. */
	readonly setupDstBytesRead?: number;
	/** Releases everything (links, threads, images, locks), whatever happened. */
	close(): Promise<void>;
}
