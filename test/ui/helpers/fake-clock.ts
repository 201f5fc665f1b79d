// A Clock (source/ui/throttle.ts) whose time moves only when a test says so, for the throttle, the frame gate and the TUI.
import {setTimeout as sleep} from 'node:timers/promises';
import type {Clock} from '../../../source/ui/throttle.js';

export type FakeClock = Clock & {
	/** Moves time on by `ms`, firing each timer it passes, in order, at its own time. */
	advance(ms: number): void;
	/** Timers set and not yet fired or cleared. */
	pending(): number;
};

export function fakeClock(): FakeClock {
	let now = 0;
	let timers: Array<{at: number; callback: () => void; id: number}> = [];
	let next = 1;
	return {
		now: () => now,
		setTimeout(callback, ms) {
			timers.push({at: now + ms, callback, id: next});
			return next++;
		},
		clearTimeout(id) {
			timers = timers.filter(t => t.id !== id);
		},
		advance(ms) {
			const until = now + ms;
			for (;;) {
				const due = timers.filter(t => t.at <= until).sort((a, b) => a.at - b.at)[0];
				if (!due) {
					break;
				}
				timers = timers.filter(t => t !== due);
				now = due.at;
				due.callback();
			}
			now = until;
		},
		pending: () => timers.length,
	};
}

/**
 * Moves `clock` on an interval at a time until `condition` holds (at most `timeoutMs` of real time). Between steps it
 * yields to real timers: ink throttles its own renders (32 ms, es-toolkit's throttle) with no clock to inject, so a
 * frame that ink has yet to render still takes a few real milliseconds; everything of ours runs on `clock`.
 */
export async function advanceUntil(clock: FakeClock, condition: () => boolean, what: string, stepMs = 100, timeoutMs = 5000): Promise<void> {
	const deadline = performance.now() + timeoutMs;
	while (!condition()) {
		if (performance.now() > deadline) {
			throw new Error(`timed out waiting for ${what}`);
		}
		clock.advance(stepMs);
		await sleep(5);
	}
}
