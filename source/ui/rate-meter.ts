// Recent throughput from (time, bytes) samples over a sliding window: what a worker does now, not on average.

export type RateMeter = {
	/** Records bytes done at time t (seconds) and returns bytes per second over the window; 0 until two samples. */
	sample(t: number, bytes: number): number;
};

/** A meter over the last `windowSeconds` seconds of samples. */
export function createRateMeter(windowSeconds = 3): RateMeter {
	const samples: Array<{t: number; bytes: number}> = [];
	return {
		sample(t, bytes) {
			samples.push({t, bytes});
			// Keep one sample at or before the window start, so the window is always fully covered.
			while (samples.length > 2 && samples[1]!.t <= t - windowSeconds) {
				samples.shift();
			}
			const first = samples[0]!;
			const dt = t - first.t;
			return dt > 0 ? Math.max(0, bytes - first.bytes) / dt : 0;
		},
	};
}
