// Leading-and-trailing throttle with an injected clock: at most one call per interval, the last request never lost.

export type Clock = {
	/** Milliseconds, monotonic. */
	now(): number;
	setTimeout(callback: () => void, ms: number): unknown;
	clearTimeout(handle: unknown): void;
};

/** performance.now() and the real timers. */
export const systemClock: Clock = {
	now: () => performance.now(),
	setTimeout: (callback, ms) => setTimeout(callback, ms),
	clearTimeout: handle => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export type Throttle = {
	/** Runs the callback now if the interval has passed, else once at the end of the interval. */
	request(): void;
	/** Runs the callback now, dropping any pending run. */
	flush(): void;
	/** Drops any pending run. */
	cancel(): void;
};

/** Calls `callback` at most once per `intervalMs` (leading and trailing), timed by `clock`. */
export function createThrottle(callback: () => void, intervalMs: number, clock: Clock = systemClock): Throttle {
	let last = Number.NEGATIVE_INFINITY;
	let timer: unknown;
	const cancel = (): void => {
		if (timer !== undefined) {
			clock.clearTimeout(timer);
			timer = undefined;
		}
	};
	const fire = (): void => {
		cancel();
		last = clock.now();
		callback();
	};
	return {
		request() {
			const wait = last + intervalMs - clock.now();
			if (wait <= 0) {
				fire();
			} else if (timer === undefined) {
				timer = clock.setTimeout(fire, wait);
			}
		},
		flush: fire,
		cancel,
	};
}
