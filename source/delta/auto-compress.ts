// --compress=auto: SOURCE compresses a worker's data runs only while that pays, decided from what it measures as it
// runs: how fast it compresses and how small (samples, one run in SAMPLE_EVERY while off), and how fast the link
// drains its frames (the bytes of the chunks DEST's CREDIT says it completed, per second). So that the decision
// applies to data not sent yet, SOURCE keeps at most half a second of the link's measured rate unacknowledged
// (at least MIN_BACKLOG): far above any bandwidth-delay product, so it never slows the link, only the queue in
// front of it. Until the first decision the link is unknown: SOURCE compresses what its first sample says
// compresses, and keeps only MIN_BACKLOG unacknowledged, so that a slow link does not take a credit window of
// raw data (8 MiB a worker, seconds at 100 Mbit/s) before anything is measured, and a fast one is found within
// the first window (the loopback compresses its first MiBs only). Pure: the caller passes the clock.

/** A decision covers at least this long and this many bytes of data sent. */
const WINDOW_MS = 250;
const WINDOW_BYTES = 1024 * 1024;
/** The first decision comes as soon as WINDOW_BYTES were acknowledged (its span includes the first round trip): a fast link compresses little before it is found. */
const FIRST_WINDOW_MS = 20;
/** While off, one data run in this many is compressed (and sent compressed when smaller) to keep the figures fresh. */
export const SAMPLE_EVERY = 8;
/** Only a window spent this much waiting for credit says the link (or DEST) is slower than SOURCE. */
const LINK_BOUND = 0.25;
/**
 * Auto's highest zstd level: on text and OS images levels 2 and 3 save ~6% and ~9% of level 1's bytes (256 KiB
 * runs) at about half its speed; higher levels save little more and cost much more.
 */
export const MAX_AUTO_LEVEL = 3;
/** The share of a window spent compressing under which a link-bound SOURCE raises the level (above which a CPU-bound one lowers it). */
const CHEAP = 0.15;
const COSTLY = 0.25;
/** Compressed runs above this ratio are not worth it. */
const WORTH = 0.9;
/**
 * The unacknowledged bytes SOURCE keeps in flight: half a second of the link's rate, at least MIN_BACKLOG (before
 * the first decision too: twice a worker's share of 100 Mbit/s at 80 ms; a faster link's rate, measured under it,
 * grows the backlog at each window, so data sent in a window that turns compression off stays small).
 */
export const MIN_BACKLOG = 1024 * 1024;
const BACKLOG_MS = 500;

export type AutoFigures = {
	/** Compressed bytes over raw bytes of the samples (an average weighted by bytes). */
	readonly ratio: number;
	/** Raw bytes compressed per second. */
	readonly compressRate: number;
	/** Bytes of data frames the link took per second in the last window. */
	readonly linkRate: number;
	/** The share of the last window SOURCE spent waiting for DEST's credit. */
	readonly waiting: number;
};

/**
 * Whether to compress, from the figures: with compression, a byte costs 1/compressRate of SOURCE's time and
 * ratio/linkRate of the link's (in series at worst) against 1/linkRate without it; on when that saves more than
 * 10%, with a factor 2 kept for the CPU the other end and the SSH cipher share with it:
 * linkRate < compressRate x (1/1.1 - ratio) / 2.
 */
export function compressionPays(figures: AutoFigures): boolean {
	return figures.ratio < WORTH && figures.linkRate < figures.compressRate * (1 / 1.1 - figures.ratio) / 2;
}

export class AutoCompress {
	on = false;
	private runs = 0;
	// Samples, decayed by half at each decision so that the data's nature may change along the image.
	private rawBytes = 0;
	private outBytes = 0;
	private compressMs = 0;
	/** Time spent compressing in the current window (not decayed: its share of the window). */
	private windowCompressMs = 0;
	// The current window.
	private windowStart: number;
	private windowWire = 0;
	private waitingMs = 0;
	private waitingSince: number | undefined;
	private wireSent = 0;
	private wireAcked = 0;
	/** The link's rate in the last window (bytes per second; 0 until measured). */
	private rate = 0;
	/** The link's rate in the last window SOURCE spent waiting for it (what it can carry; 0 until such a window). */
	private capacity = 0;
	private credited = false;
	/** The figures of the last decision (for tests and traces); undefined until the first. */
	last: AutoFigures | undefined;

	/** The zstd level of the next runs: the OPEN's, raised up to MAX_AUTO_LEVEL while the link is slow and compressing cheap. */
	level: number;
	private readonly baseLevel: number;

	/** `level`: OPEN's level (auto's is 1). */
	constructor(now: number, level = 1) {
		this.windowStart = now;
		this.level = level;
		this.baseLevel = level;
	}

	/** Whether this data run is to be compressed: every run while on, one in SAMPLE_EVERY while off. */
	wants(): boolean {
		return this.on || this.runs++ % SAMPLE_EVERY === 0;
	}

	/** A run was compressed: `raw` bytes in, `out` bytes out (raw when it did not shrink), in `ms`. */
	compressed(raw: number, out: number, ms: number): void {
		this.rawBytes += raw;
		this.outBytes += Math.min(raw, out);
		this.compressMs += ms;
		this.windowCompressMs += ms;
		if (this.last === undefined) {
			this.on = this.outBytes / this.rawBytes < WORTH;
		}
	}

	/** A frame of `bytes` went out. */
	sent(bytes: number): void {
		this.wireSent += bytes;
	}

	/** DEST completed chunks whose frames came to `acked` bytes in all (from its CREDIT). */
	acked(acked: number, now: number): void {
		if (!this.credited) {
			// DEST's first CREDIT (its window, nothing completed yet): the first window starts here, the time before it was setup.
			this.credited = true;
			this.windowStart = now;
			this.waitingSince = undefined;
			this.waitingMs = 0;
		}
		if (acked > this.wireAcked) {
			this.windowWire += acked - this.wireAcked;
			this.wireAcked = acked;
		}
		this.endWait(now);
		this.decide(now);
	}

	/** Whether SOURCE should wait for DEST's next CREDIT before it sends more: the unacknowledged bytes are enough. */
	holding(): boolean {
		return this.wireSent - this.wireAcked >= Math.max(MIN_BACKLOG, this.rate * BACKLOG_MS / 1000);
	}

	/** SOURCE stopped for want of credit (or holding()) / credit came. */
	waiting(now: number): void {
		this.waitingSince ??= now;
	}

	private endWait(now: number): void {
		if (this.waitingSince !== undefined) {
			this.waitingMs += now - this.waitingSince;
			this.waitingSince = undefined;
		}
	}

	private decide(now: number): void {
		const span = now - this.windowStart;
		if (span < (this.last === undefined ? FIRST_WINDOW_MS : WINDOW_MS) || this.windowWire < WINDOW_BYTES || this.rawBytes === 0) {
			return;
		}
		if (this.waitingSince !== undefined) {
			this.waitingMs += now - this.waitingSince;
			this.waitingSince = now;
		}
		const figures: AutoFigures = {
			ratio: this.outBytes / this.rawBytes,
			compressRate: this.compressMs > 0 ? this.rawBytes * 1000 / this.compressMs : Number.POSITIVE_INFINITY,
			linkRate: this.windowWire * 1000 / span,
			waiting: this.waitingMs / span,
		};
		this.last = figures;
		this.rate = figures.linkRate;
		const compressing = this.windowCompressMs / span;
		if (figures.ratio >= WORTH) {
			this.on = false;
			this.level = this.baseLevel;
		} else if (figures.waiting >= LINK_BOUND) {
			this.capacity = figures.linkRate;
			this.on = compressionPays(figures);
			if (this.on && compressing < CHEAP) {
				// The link holds SOURCE back and compressing is a small part of its time: fewer bytes for more CPU.
				this.level = Math.min(Math.max(MAX_AUTO_LEVEL, this.baseLevel), this.level + 1);
			}
		} else if (this.on && compressing > COSTLY) {
			if (this.level > this.baseLevel) {
				this.level -= 1;
			} else if (!(this.capacity > 0 && this.capacity < figures.linkRate / figures.ratio)) {
				// SOURCE is the bottleneck and compressing is much of its work: try without (the next window measures the
				// link), unless the link was measured slower than the raw bytes SOURCE moves now (it would only wait for it).
				this.on = false;
			}
		}
		this.rawBytes /= 2;
		this.outBytes /= 2;
		this.compressMs /= 2;
		this.windowStart = now;
		this.windowWire = 0;
		this.waitingMs = 0;
		this.windowCompressMs = 0;
	}
}
