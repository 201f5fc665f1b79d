// --bwlimit: one token bucket for the whole run, shared by every worker's relay (the driver sees every byte of
// SRC's data on its way to DEST), and a paced queue per session that releases its bytes in small slices.
import type {Link} from './link.js';

/**
 * A token bucket over a clock in milliseconds: `rate` bytes per second, at most `burst` bytes saved up.
 * Pure (the clock is passed in), so it is tested directly.
 */
export class TokenBucket {
	private tokens: number;
	private last: number;

	constructor(readonly rate: number, readonly burst: number, now: number) {
		this.tokens = burst;
		this.last = now;
	}

	private refill(now: number): void {
		if (now > this.last) {
			this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000);
			this.last = now;
		}
	}

	/** Takes `bytes` if the bucket holds them now (true), else takes nothing (false). */
	take(bytes: number, now: number): boolean {
		this.refill(now);
		if (this.tokens >= bytes) {
			this.tokens -= bytes;
			return true;
		}
		return false;
	}

	/** Milliseconds until `bytes` can be taken (0: now). */
	waitMs(bytes: number, now: number): number {
		this.refill(now);
		return this.tokens >= bytes ? 0 : Math.ceil((bytes - this.tokens) * 1000 / this.rate);
	}
}

/**
 * The slice a paced queue releases at once: 20 ms of the rate, from 4 KiB to 256 KiB (one write batch). A
 * 1 MiB DATA frame therefore leaves in slices, never as one burst at the line rate.
 */
export function sliceBytes(rate: number): number {
	return Math.min(256 * 1024, Math.max(4096, Math.floor(rate / 50)));
}

/** The bucket's depth: 50 ms of the rate, at least one slice (bursts stay well under the 100 ms the limit allows). */
export function burstBytes(rate: number): number {
	return Math.max(sliceBytes(rate), Math.floor(rate / 20));
}

/** The run's one budget: every session's queue draws from it. */
export class Pacer {
	readonly slice: number;
	private readonly bucket: TokenBucket;

	constructor(readonly rate: number, private readonly clock: () => number = () => performance.now()) {
		this.slice = sliceBytes(rate);
		this.bucket = new TokenBucket(rate, burstBytes(rate), clock());
	}

	take(bytes: number): boolean {
		return this.bucket.take(bytes, this.clock());
	}

	waitMs(bytes: number): number {
		return this.bucket.waitMs(bytes, this.clock());
	}
}

/** A queue that holds more than this pauses the reading of SOURCE's link, so that its host stops sending too. */
const HIGH_WATER = 512 * 1024;
const LOW_WATER = 128 * 1024;

/**
 * The bytes of one session on their way to DEST, released at the pacer's rate. The relay never stops
 * reading on its own account (doc/protocol.md), only for the budget: the queue is bounded by the credit
 * window, and while it holds more than HIGH_WATER SOURCE's link is paused (an SSH channel then stops
 * granting window, and the far host stops sending), resumed below LOW_WATER. Time alone ends every pause,
 * so no wait here depends on a peer.
 */
export class PacedSender {
	private readonly queue: Buffer[] = [];
	private head = 0;
	private queued = 0;
	private timer: ReturnType<typeof setTimeout> | undefined;
	private paused = false;
	private stopped = false;

	constructor(private readonly pacer: Pacer, private readonly to: Link, private readonly from: Link) {}

	send(bytes: Buffer): void {
		if (this.stopped) {
			return;
		}
		this.queue.push(bytes);
		this.queued += bytes.length;
		if (this.timer === undefined) {
			this.pump();
		}
		if (this.queued > HIGH_WATER && !this.paused) {
			this.paused = true;
			this.from.pause?.();
		}
	}

	/** Drops what is queued (the session ended) and lets SOURCE's link read again. */
	stop(): void {
		this.stopped = true;
		clearTimeout(this.timer);
		this.timer = undefined;
		this.queue.length = 0;
		this.queued = 0;
		if (this.paused) {
			this.paused = false;
			this.from.resume?.();
		}
	}

	private pump(): void {
		this.timer = undefined;
		while (this.queue.length > 0) {
			const first = this.queue[0]!;
			const want = Math.min(first.length - this.head, this.pacer.slice);
			if (!this.pacer.take(want)) {
				this.timer = setTimeout(() => this.pump(), Math.max(1, this.pacer.waitMs(want)));
				break;
			}
			this.to.send(this.head === 0 && want === first.length ? first : first.subarray(this.head, this.head + want));
			this.head += want;
			this.queued -= want;
			if (this.head === first.length) {
				this.queue.shift();
				this.head = 0;
			}
		}
		if (this.paused && this.queued < LOW_WATER) {
			this.paused = false;
			this.from.resume?.();
		}
	}
}
