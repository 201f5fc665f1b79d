// How long the driver waits on a host at each step, and the one way a wait gives up when the run stops.

/** Every wait on a host is bounded (--timeout sets all three): a host that stops answering fails the run instead of holding it. */
export type Bounds = {
	/** Reaching a host: TCP connect, SSH handshake and authentication (per ProxyJump hop), and opening a channel. */
	readonly connectMs: number;
	/** Starting the agent (the probe, an upload) and each of its replies before the session: HELLO, OPENED. */
	readonly replyMs: number;
	/** Mid-session: neither role sent a frame for this long. */
	readonly stallMs: number;
};

/** Without --timeout: 30 s to reach a host (ssh2's handshake timeout before --timeout existed), 120 s for the rest. */
export const DEFAULT_BOUNDS: Bounds = {connectMs: 30_000, replyMs: 120_000, stallMs: 120_000};

/** "2 s", "120 s", "0.5 s": a bound as messages name it. */
export function seconds(ms: number): string {
	return `${ms / 1000} s`;
}

/**
 * `work`, or a rejection with `stopped()` as soon as `signal` aborts (at once if it already has).
 * What `work` does later is ignored (a late rejection is caught): the caller closes what it holds.
 */
export async function unlessAborted<T>(work: Promise<T>, signal: AbortSignal, stopped: () => Error): Promise<T> {
	work.catch(() => {});
	if (signal.aborted) {
		throw stopped();
	}
	let onAbort: (() => void) | undefined;
	const aborted = new Promise<never>((_resolve, reject) => {
		onAbort = () => reject(stopped());
		signal.addEventListener('abort', onAbort, {once: true});
	});
	try {
		return await Promise.race([work, aborted]);
	} finally {
		signal.removeEventListener('abort', onAbort!);
	}
}

/** The end of a run's local role threads is waited for at most this long (one stuck closing its image does not hold the run). */
export const THREADS_END_MS = 10_000;

/** Waits for `work` to settle, or `ms` to pass, whichever comes first; never rejects. */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
	let timer: NodeJS.Timeout | undefined;
	await Promise.race([work.then(() => {}, () => {}), new Promise<void>(resolve => {
		timer = setTimeout(resolve, ms);
	})]);
	clearTimeout(timer);
}
