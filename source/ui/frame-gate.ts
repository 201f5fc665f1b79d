// The terminal as ink sees it: writes pass on at most once per interval, so the screen is redrawn at most
// ~10 times a second however many spinners tick (each ink-spinner has its own timer and ink writes on every commit).
// A frame that a later frame in the same batch erases entirely is dropped, so the bytes sent shrink too.
import {Writable} from 'node:stream';
import {type Clock, createThrottle, systemClock} from './throttle.js';

/** The terminal: process.stderr in the program, a fake in tests. */
export type TerminalStream = NodeJS.WritableStream & {
	columns?: number;
	rows?: number;
	isTTY?: boolean;
};

/** A stream in front of `target` that batches writes: the first at once, then at most one batch per interval. */
export class FrameGate extends Writable {
	readonly isTTY: boolean;
	private pending = '';
	/** Where the text of the last frame in `pending` starts, and how many lines its eraser must cover. */
	private lastFrame: {start: number; lines: number} | undefined;
	private readonly throttle;
	private readonly onResize = (): void => {
		this.emit('resize');
	};

	constructor(private readonly target: TerminalStream, intervalMs = 100, clock: Clock = systemClock) {
		super({decodeStrings: false});
		this.isTTY = target.isTTY === true;
		this.throttle = createThrottle(() => this.pass(), intervalMs, clock);
		target.on('resize', this.onResize);
	}

	get columns(): number | undefined {
		return this.target.columns;
	}

	get rows(): number | undefined {
		return this.target.rows;
	}

	override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
		this.add(String(chunk));
		this.throttle.request();
		callback();
	}

	private add(text: string): void {
		const frame = splitFrame(text);
		if (!frame) {
			this.pending += text;
			this.lastFrame = undefined;
			return;
		}
		if (this.lastFrame && frame.erases === this.lastFrame.lines) {
			// This frame erases exactly the pending one: the terminal would never show it, so drop it.
			this.pending = this.pending.slice(0, this.lastFrame.start) + frame.body;
		} else {
			this.pending += frame.eraser;
			this.lastFrame = {start: this.pending.length, lines: 0};
			this.pending += frame.body;
		}
		this.lastFrame = frame.plain ? {start: this.lastFrame!.start, lines: frame.body.split('\n').length} : undefined;
	}

	/** Writes what is pending now (the end of the run must not wait for the next interval). */
	flushNow(): void {
		this.throttle.cancel();
		this.pass();
	}

	/** Flushes and stops following the target's resize events. */
	close(): void {
		this.flushNow();
		this.target.removeListener('resize', this.onResize);
	}

	private pass(): void {
		this.lastFrame = undefined;
		if (this.pending !== '') {
			const text = this.pending;
			this.pending = '';
			this.target.write(text);
		}
	}
}

// eslint-disable-next-line no-control-regex
const ERASER = /^((?:\u001B\[2K\u001B\[1A)*)\u001B\[2K\u001B\[G/;
// Colours only: any other escape (cursor moves, clears) makes the frame's line count unknowable.
// eslint-disable-next-line no-control-regex
const OTHER_ESCAPE = /\u001B(?!\[[0-9;]*m)/;

/**
 * A log-update write: an eraser of N lines (ESC[2K, then ESC[1A ESC[2K per further line, then ESC[G) and the new
 * frame's text; `plain` when the text holds no escapes but colours, so its line count is what the next eraser covers.
 */
export function splitFrame(text: string): {eraser: string; erases: number; body: string; plain: boolean} | undefined {
	const match = ERASER.exec(text);
	if (!match) {
		return undefined;
	}
	const body = text.slice(match[0].length);
	return {eraser: match[0], erases: match[1]!.length / '\u001B[2K\u001B[1A'.length + 1, body, plain: !OTHER_ESCAPE.test(body)};
}
