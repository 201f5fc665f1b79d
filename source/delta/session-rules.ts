// The session rules of doc/protocol.md, one checker per role: every frame the peer sends is held against the
// worker's range and what both sides said so far, before the role acts on it. Pure: no image, no I/O.
import {inflateRawSync} from 'node:zlib';
import {nativeOps} from '../native/native.js';
import {ProtocolError} from '../protocol/frame.js';
import {CREDIT_WINDOW, FRAME_NAME, type Message, SHORT_DIGEST, WIDE_CREDIT_WINDOW} from '../protocol/messages.js';
import type {Geometry} from './chunks.js';

/** A frame the peer may not send at this point: the session ends and nothing of that frame was applied. */
export class ProtocolViolation extends ProtocolError {
	constructor(message: string) {
		super(message);
		this.name = 'ProtocolViolation';
	}
}

/** What one worker's session was given: its range of SRC, SRC's size, the geometry and the OPEN flags. */
export type SessionShape = {
	readonly start: number;
	readonly end: number;
	readonly srcSize: number;
	readonly geometry: Geometry;
	readonly dryRun: boolean;
	readonly copy: boolean;
	/**
	 * A wide session (the driver's HELLO had Capability.wideSession): SOURCE sends CHUNK_SUBS (never CHUNK), DEST answers
	 * a differing one with BLOCKS unasked (never SUBS), and grants up to WIDE_CREDIT_WINDOW (CREDIT_WINDOW without digests).
	 */
	readonly wide?: boolean;
};

/** Chunk boundaries, lengths and sub-chunks of [start, min(end, srcSize)): what both checkers share. */
abstract class Rules {
	protected readonly start: number;
	/** The end of what this worker may touch: its range, cut at SRC's size. */
	protected readonly limit: number;
	protected readonly chunkSize: number;
	protected readonly blockSize: number;
	protected readonly subSize: number;
	protected readonly chunks: number;
	/** One state byte per chunk of the range (a 256 GiB range: 256 KiB). */
	protected readonly state: Uint8Array;
	protected copy: boolean;
	protected readonly dryRun: boolean;
	protected readonly wide: boolean;

	constructor(shape: SessionShape) {
		this.start = shape.start;
		this.limit = Math.max(shape.start, Math.min(shape.end, shape.srcSize));
		this.chunkSize = shape.geometry.chunkSize;
		this.blockSize = shape.geometry.blockSize;
		this.subSize = shape.geometry.subSize;
		this.chunks = Math.ceil((this.limit - this.start) / this.chunkSize);
		this.state = new Uint8Array(this.chunks);
		this.copy = shape.copy;
		this.dryRun = shape.dryRun;
		this.wide = shape.wide === true;
	}

	/** The credit window: WIDE_CREDIT_WINDOW in a wide session with digests; CREDIT_WINDOW otherwise (every chunk in flight may be a whole chunk of data). */
	protected window(): number {
		return this.wide && !this.copy ? WIDE_CREDIT_WINDOW : CREDIT_WINDOW;
	}

	/** One frame in a wide session, the other in a narrow one. */
	protected inMode(name: string, offset: number, wide: boolean): void {
		if (this.wide !== wide) {
			throw new ProtocolViolation(`${name} at offset ${offset} in a ${this.wide ? 'wide' : 'narrow'} session (${this.wide ? 'CHUNK_SUBS and unasked BLOCKS' : 'CHUNK, SUBS and WANT'})`);
		}
	}

	protected range(): string {
		return `[${this.start}, ${this.limit})`;
	}

	protected chunkStart(index: number): number {
		return this.start + index * this.chunkSize;
	}

	protected chunkLength(index: number): number {
		return Math.min(this.chunkSize, this.limit - this.chunkStart(index));
	}

	/** Sub-chunks of chunk `index` (1 to 16). */
	protected subsOf(index: number): number {
		return Math.ceil(this.chunkLength(index) / this.subSize);
	}

	/** Blocks of chunk `index` inside the sub-chunks of `mask`. */
	protected blocksIn(index: number, mask: number): number {
		const length = this.chunkLength(index);
		let blocks = 0;
		for (let sub = 0; sub < this.subsOf(index); sub++) {
			if (mask & (1 << sub)) {
				blocks += Math.ceil((Math.min(length, (sub + 1) * this.subSize) - sub * this.subSize) / this.blockSize);
			}
		}
		return blocks;
	}

	/** The index of the chunk that starts at `offset`; a violation when no chunk of the range starts there. */
	protected chunkAt(name: string, offset: number): number {
		const index = (offset - this.start) / this.chunkSize;
		if (offset < this.start || offset >= this.limit || !Number.isInteger(index)) {
			throw new ProtocolViolation(`${name} at offset ${offset} is not a chunk of this worker's range ${this.range()}`);
		}
		return index;
	}

	/** A frame type this role never receives. */
	protected never(message: Message, from: string): ProtocolViolation {
		return new ProtocolViolation(`${FRAME_NAME[message.type]} frame: ${from} never sends one here`);
	}
}

// DestRules' chunk states: what SOURCE may still send about that chunk.
const CLOSED = 1; // a CHUNK that DEST found equal, a CHUNK_END, or whole-chunk ZERO: nothing (until DEST says FULL)
const SUBS = 2; // DEST sent SUBS: ZERO of sub-chunks, one WANT, or CHUNK_END
const BLOCKS = 3; // DEST answered WANT: DATA/DATAZ/DIFF/ZERO inside the sub-chunks asked for, CHUNK_END
const FULL = 4; // DEST sent FULL: DATA/DATAZ/ZERO anywhere in the chunk, CHUNK_END

/**
 * DEST's side: checks each frame from SOURCE (`received`, before DEST acts on it) against the session, and
 * follows DEST's own frames (`sent`). DEST never writes or zeroes outside [start, end) ∩ [0, srcSize), nor
 * outside a chunk that is in progress (or, for whole-chunk ZERO, the next chunks not yet covered).
 */
export class DestRules extends Rules {
	/** Chunks [0, next) were announced (CHUNK, ZERO, or a --copy chunk begun): the next one must be `next`. */
	private next = 0;
	/** CHUNK frames and --copy chunks begun, against DEST's credit. */
	private announced = 0;
	private granted = 0;
	private sourceEnded = false;
	/** With --copy or after EMPTY: the chunk whose runs are arriving (-1: none), and where its next run may start. */
	private current = -1;
	private runEnd = 0;
	/** The sub-chunks asked for, per chunk in state BLOCKS. */
	private readonly masks = new Map<number, number>();

	/** Throws ProtocolViolation when SOURCE may not send this frame now. */
	received(message: Message): void {
		switch (message.type) {
			case 'chunk':
				this.inMode('CHUNK', message.offset, false);
				return this.onChunk('CHUNK', message.offset, message.length);
			case 'chunkSubs': {
				// Checked before onChunk takes the chunk: nothing of a refused frame is applied.
				this.inMode('CHUNK_SUBS', message.offset, true);
				const index = this.chunkAt('CHUNK_SUBS', message.offset);
				const count = message.subs.length / SHORT_DIGEST;
				if (count !== this.subsOf(index)) {
					throw new ProtocolViolation(`CHUNK_SUBS at offset ${message.offset} has ${count} sub-chunk digests; that chunk has ${this.subsOf(index)} sub-chunks`);
				}
				return this.onChunk('CHUNK_SUBS', message.offset, message.length);
			}
			case 'zero': return this.onZero(message.offset, message.length);
			case 'skip': return this.onSkip(message.offset, message.length);
			case 'want': return this.onWant(message.offset, message.mask);
			case 'data': return this.onRun('DATA', message.offset, message.data.length);
			case 'dataz': return this.onRun('DATAZ', message.offset, message.length);
			case 'datazs': return this.onRun('DATAZS', message.offset, message.length);
			case 'diff': return this.onRun('DIFF', message.offset, message.length);
			case 'chunkEnd': return this.onChunkEnd(message.offset);
			case 'sourceEnd': return this.onSourceEnd(message.blocksZero);
			default: throw this.never(message, 'SOURCE');
		}
	}

	/** Follows a frame DEST sends (CREDIT, EMPTY, SUBS and FULL open what SOURCE may send next). */
	sent(message: Message): void {
		switch (message.type) {
			case 'credit': this.granted = Math.max(this.granted, message.granted); break;
			case 'empty': this.copy = true; break;
			case 'subs': this.state[(message.offset - this.start) / this.chunkSize] = SUBS; break;
			case 'full': this.state[(message.offset - this.start) / this.chunkSize] = FULL; break;
			case 'blocks':
				// Unasked, for a CHUNK_SUBS that differs: SOURCE may send the sub-chunks of its mask, as after a WANT.
				if (this.wide) {
					this.state[(message.offset - this.start) / this.chunkSize] = BLOCKS;
					this.masks.set((message.offset - this.start) / this.chunkSize, message.mask);
				}
				break;
			default: break;
		}
	}

	/** DATAZS's bytes, decoded: exactly its length, else a ProtocolViolation (call after received()). */
	unzstd(message: Extract<Message, {type: 'datazs'}>): Buffer {
		const zstd = nativeOps()?.zstd;
		if (!zstd) {
			throw new ProtocolViolation(`DATAZS at offset ${message.offset}, but this agent has no zstd (its HELLO did not offer it)`);
		}
		const data = Buffer.allocUnsafe(message.length);
		try {
			zstd.decompress(message.compressed, message.compressed.length, data, message.length);
		} catch (error) {
			throw new ProtocolViolation(`DATAZS at offset ${message.offset} length ${message.length} does not decode: ${error instanceof Error ? error.message : String(error)}`);
		}
		return data;
	}

	/** DATAZ's bytes, inflated: exactly its length, else a ProtocolViolation (call after received()). */
	inflate(message: Extract<Message, {type: 'dataz'}>): Buffer {
		let data: Buffer;
		try {
			data = inflateRawSync(message.deflated, {info: false, maxOutputLength: message.length});
		} catch (error) {
			throw new ProtocolViolation(`DATAZ at offset ${message.offset} length ${message.length} does not inflate: ${error instanceof Error ? error.message : String(error)}`);
		}
		if (data.length !== message.length) {
			throw new ProtocolViolation(`DATAZ at offset ${message.offset} inflates to ${data.length} bytes, not its length ${message.length}`);
		}
		return data;
	}

	private onChunk(name: 'CHUNK' | 'CHUNK_SUBS', offset: number, length: number): void {
		if (this.copy) {
			throw new ProtocolViolation(`${name} at offset ${offset} in a session without digests (--copy or EMPTY)`);
		}
		const index = this.chunkAt(name, offset);
		this.inOrder(`${name} at offset ${offset}`, index);
		if (length !== this.chunkLength(index)) {
			throw new ProtocolViolation(`${name} at offset ${offset} has length ${length}; that chunk of this worker's range ${this.range()} is ${this.chunkLength(index)} bytes`);
		}
		this.takeCredit(`${name} at offset ${offset}`);
		this.state[index] = CLOSED;
		this.next = index + 1;
	}

	private onWant(offset: number, mask: number): void {
		const index = this.chunkAt('WANT', offset);
		if (this.state[index] !== SUBS) {
			throw new ProtocolViolation(`WANT at offset ${offset} for a chunk that awaits no WANT (DEST sent it no SUBS, or it was answered)`);
		}
		const subs = this.subsOf(index);
		if (mask === 0 || mask >= 2 ** subs) {
			throw new ProtocolViolation(`WANT at offset ${offset} has mask 0x${mask.toString(16)}; that chunk has ${subs} sub-chunks`);
		}
		this.state[index] = BLOCKS;
		this.masks.set(index, mask);
	}

	private onChunkEnd(offset: number): void {
		const index = this.chunkAt('CHUNK_END', offset);
		if (this.copy ? this.current !== index : !inProgress(this.state[index]!)) {
			throw new ProtocolViolation(`CHUNK_END at offset ${offset} for a chunk that is not in progress (never announced, or already ended)`);
		}
		this.current = this.copy ? -1 : this.current;
		this.state[index] = CLOSED;
		this.masks.delete(index);
	}

	private onSourceEnd(blocksZero: number): void {
		if (this.sourceEnded) {
			throw new ProtocolViolation('a second SOURCE_END');
		}
		if (this.current >= 0) {
			throw new ProtocolViolation(`SOURCE_END before the CHUNK_END of the chunk at offset ${this.chunkStart(this.current)}`);
		}
		if (this.next < this.chunks) {
			throw new ProtocolViolation(`SOURCE_END before the chunk at offset ${this.chunkStart(this.next)} of this worker's range ${this.range()} was sent`);
		}
		const blocks = Math.ceil((this.limit - this.start) / this.blockSize);
		if (blocksZero > blocks) {
			throw new ProtocolViolation(`SOURCE_END counts ${blocksZero} zero blocks; this worker's range ${this.range()} has ${blocks}`);
		}
		this.sourceEnded = true;
	}

	/** SKIP: whole chunks, the next ones not yet covered (SRC's bitmap says they did not change since the last pass). */
	private onSkip(offset: number, length: number): void {
		this.inRange('SKIP', offset, length);
		const end = offset + length;
		const index = Math.floor((offset - this.start) / this.chunkSize);
		if (offset !== this.chunkStart(index) || (end !== this.limit && (end - this.start) % this.chunkSize !== 0)) {
			throw new ProtocolViolation(`SKIP at offset ${offset} length ${length} is not whole chunks`);
		}
		this.coverChunks(`SKIP at offset ${offset} length ${length}`, index, end);
	}

	/** Whole chunks [index, the chunk ending at `end`) covered at once (whole-chunk ZERO, SKIP): the next ones, outside any chunk in progress. */
	private coverChunks(what: string, index: number, end: number): void {
		if (this.current >= 0) {
			throw new ProtocolViolation(`${what} comes before the CHUNK_END of the chunk at offset ${this.chunkStart(this.current)}`);
		}
		this.inOrder(what, index);
		this.next = Math.ceil((end - this.start) / this.chunkSize);
		for (let chunk = index; chunk < this.next; chunk++) {
			this.state[chunk] = CLOSED;
		}
	}

	/** ZERO: whole chunks, the next ones not yet covered; or blocks of a chunk in progress. */
	private onZero(offset: number, length: number): void {
		this.inRange('ZERO', offset, length);
		const end = offset + length;
		const index = Math.floor((offset - this.start) / this.chunkSize);
		if (!this.copy && inProgress(this.state[index]!)) {
			this.inChunk('ZERO', offset, length, index);
			return;
		}
		if (this.copy && this.current === index) {
			this.inChunk('ZERO', offset, length, index);
			return;
		}
		const wholeChunks = offset === this.chunkStart(index) && (end === this.limit || (end - this.start) % this.chunkSize === 0);
		if (wholeChunks) {
			this.coverChunks(`ZERO at offset ${offset} length ${length}`, index, end);
			return;
		}
		if (!this.copy) {
			throw new ProtocolViolation(`ZERO at offset ${offset} length ${length} is neither whole chunks from the next one nor inside a chunk in progress`);
		}
		this.inChunk('ZERO', offset, length, index);
	}

	/** DATA, DATAZ, DIFF: blocks of one chunk in progress (with --copy: the current chunk, or the next one). */
	private onRun(name: 'DATA' | 'DATAZ' | 'DATAZS' | 'DIFF', offset: number, length: number): void {
		this.inRange(name, offset, length);
		if ((name === 'DIFF') !== this.dryRun) {
			throw new ProtocolViolation(this.dryRun ? `${name} at offset ${offset} in a dry run` : `DIFF at offset ${offset} outside a dry run`);
		}
		const index = Math.floor((offset - this.start) / this.chunkSize);
		if (length > this.chunkSize) {
			throw new ProtocolViolation(`${name} at offset ${offset} length ${length} is longer than a chunk (${this.chunkSize} bytes)`);
		}
		this.inChunk(name, offset, length, index);
	}

	/** [offset, offset+length) inside the worker's range, non-empty and block-aligned. */
	private inRange(name: string, offset: number, length: number): void {
		const end = offset + length;
		if (length <= 0 || offset < this.start || end > this.limit) {
			throw new ProtocolViolation(`${name} at offset ${offset} length ${length} is outside this worker's range ${this.range()}`);
		}
		if ((offset - this.start) % this.blockSize !== 0 || (end !== this.limit && (end - this.start) % this.blockSize !== 0)) {
			throw new ProtocolViolation(`${name} at offset ${offset} length ${length} is not block-aligned (block size ${this.blockSize})`);
		}
	}

	/** Blocks inside chunk `index`, which must be in progress; with --copy it may be begun here. */
	private inChunk(name: string, offset: number, length: number, index: number): void {
		const what = `${name} at offset ${offset} length ${length}`;
		const chunkStart = this.chunkStart(index);
		if (offset + length > chunkStart + this.chunkLength(index)) {
			throw new ProtocolViolation(`${what} crosses the end of the chunk at offset ${chunkStart}`);
		}
		if (this.copy) {
			if (this.current !== index) {
				if (this.current >= 0) {
					throw new ProtocolViolation(`${what} comes before the CHUNK_END of the chunk at offset ${this.chunkStart(this.current)}`);
				}
				this.inOrder(what, index);
				this.takeCredit(what);
				this.current = index;
				this.next = index + 1;
				this.runEnd = chunkStart;
			}
			if (offset < this.runEnd) {
				throw new ProtocolViolation(`${what} overlaps what SOURCE already sent of the chunk at offset ${chunkStart}`);
			}
			this.runEnd = offset + length;
			return;
		}
		const state = this.state[index]!;
		if (state === FULL || (state === SUBS && name === 'ZERO')) {
			return;
		}
		if (state !== BLOCKS) {
			throw new ProtocolViolation(`${what} is not inside a chunk in progress`);
		}
		const mask = this.masks.get(index)!;
		const first = Math.floor((offset - chunkStart) / this.subSize);
		const last = Math.floor((offset + length - 1 - chunkStart) / this.subSize);
		for (let sub = first; sub <= last; sub++) {
			if (!(mask & (1 << sub))) {
				throw new ProtocolViolation(`${what} is outside the sub-chunks asked for (WANT mask 0x${mask.toString(16)}) of the chunk at offset ${chunkStart}`);
			}
		}
	}

	/** Chunks are announced in order, each once: `index` must be the next one. */
	private inOrder(what: string, index: number): void {
		if (index !== this.next) {
			throw new ProtocolViolation(this.next >= this.chunks
				? `${what} after the last chunk of this worker's range ${this.range()} was sent`
				: `${what} out of order: the next chunk is at offset ${this.chunkStart(this.next)}`);
		}
	}

	private takeCredit(what: string): void {
		if (this.announced >= this.granted) {
			throw new ProtocolViolation(`${what} exceeds DEST's credit of ${this.granted} chunks`);
		}
		this.announced += 1;
	}
}

function inProgress(state: number): boolean {
	return state === SUBS || state === BLOCKS || state === FULL;
}

// SourceRules' chunk states.
const SENT = 1; // CHUNK sent: DEST may answer SUBS or FULL (or nothing: equal)
const ANSWERING = 2; // SUBS or BLOCKS received: SOURCE answers (WANT or CHUNK_END)
const WANTED = 3; // WANT sent: DEST answers BLOCKS with that mask
const ENDED = 4; // CHUNK_END sent: DEST may ask FULL once
const FULLED = 5; // FULL received: SOURCE sends the chunk and CHUNK_END
const FINAL = 6; // CHUNK_END after FULL: nothing more

/** SOURCE's side: checks each frame from DEST (`received`) against the session, and follows SOURCE's own (`sent`). */
export class SourceRules extends Rules {
	private granted = 0;
	private credited = false;
	private keyed = false;
	/** CHUNK frames and --copy chunks sent: DEST cannot have completed more. */
	private announced = 0;
	private readonly masks = new Map<number, number>();

	/** Throws ProtocolViolation when DEST may not send this frame now. */
	received(message: Message): void {
		switch (message.type) {
			case 'empty':
				if (this.credited || this.copy || this.dryRun) {
					throw new ProtocolViolation(`EMPTY ${this.credited ? 'after CREDIT' : this.dryRun ? 'in a dry run' : 'with --copy'}`);
				}
				this.copy = true;
				return;
			case 'key':
				if (this.credited || this.copy || this.dryRun || this.keyed) {
					throw new ProtocolViolation(`KEY ${this.keyed ? 'twice' : this.credited ? 'after CREDIT' : this.dryRun ? 'in a dry run' : 'in a session without digests'}`);
				}
				this.keyed = true;
				return;
			case 'credit':
				if (message.granted < this.granted) {
					throw new ProtocolViolation(`CREDIT of ${message.granted} chunks after one of ${this.granted}`);
				}
				if (message.granted > this.window() + this.announced) {
					throw new ProtocolViolation(`CREDIT of ${message.granted} chunks, more than the window of ${this.window()} past the ${this.announced} chunks sent`);
				}
				this.credited = true;
				this.granted = message.granted;
				return;
			case 'subs': {
				this.inMode('SUBS', message.offset, false);
				const index = this.answerable('SUBS', message.offset, SENT);
				const count = message.digests.length / SHORT_DIGEST;
				if (count !== this.subsOf(index)) {
					throw new ProtocolViolation(`SUBS at offset ${message.offset} has ${count} sub-chunk digests; that chunk has ${this.subsOf(index)} sub-chunks`);
				}
				this.state[index] = ANSWERING;
				return;
			}
			case 'blocks': {
				// Narrow: the answer to SOURCE's WANT, with its mask. Wide: unasked, for a CHUNK_SUBS not yet answered.
				const index = this.answerable('BLOCKS', message.offset, this.wide ? SENT : WANTED);
				const mask = this.wide ? message.mask : this.masks.get(index)!;
				if (this.wide && (mask === 0 || mask >= 2 ** this.subsOf(index))) {
					throw new ProtocolViolation(`BLOCKS at offset ${message.offset} has mask 0x${mask.toString(16)}; that chunk has ${this.subsOf(index)} sub-chunks`);
				}
				if (message.mask !== mask) {
					throw new ProtocolViolation(`BLOCKS at offset ${message.offset} has mask 0x${message.mask.toString(16)}; SOURCE asked for 0x${mask.toString(16)}`);
				}
				const count = message.digests.length / SHORT_DIGEST;
				if (count !== this.blocksIn(index, mask)) {
					throw new ProtocolViolation(`BLOCKS at offset ${message.offset} has ${count} block digests; mask 0x${mask.toString(16)} covers ${this.blocksIn(index, mask)} blocks`);
				}
				this.masks.delete(index);
				this.state[index] = ANSWERING;
				return;
			}
			case 'full': {
				if (this.dryRun) {
					throw new ProtocolViolation(`FULL at offset ${message.offset} in a dry run`);
				}
				const index = this.chunkAt('FULL', message.offset);
				if (this.copy || (this.state[index] !== SENT && this.state[index] !== ENDED)) {
					throw new ProtocolViolation(`FULL at offset ${message.offset} for a chunk that is not awaiting an answer (not sent, in progress, or already sent in full)`);
				}
				this.state[index] = FULLED;
				return;
			}
			case 'done':
				return;
			default:
				throw this.never(message, 'DEST');
		}
	}

	/** Follows a frame SOURCE sends. */
	sent(message: Message): void {
		switch (message.type) {
			case 'chunk':
			case 'chunkSubs':
				this.state[(message.offset - this.start) / this.chunkSize] = SENT;
				this.announced += 1;
				break;
			case 'want':
				this.state[(message.offset - this.start) / this.chunkSize] = WANTED;
				this.masks.set((message.offset - this.start) / this.chunkSize, message.mask);
				break;
			case 'chunkEnd': {
				const index = (message.offset - this.start) / this.chunkSize;
				if (this.copy) {
					this.announced += 1;
				} else {
					this.state[index] = this.state[index] === FULLED ? FINAL : ENDED;
				}
				break;
			}
			default:
				break;
		}
	}

	/** The chunk at `offset`, which must be in `state` (and digests are in use). */
	private answerable(name: string, offset: number, state: number): number {
		const index = this.chunkAt(name, offset);
		if (this.copy || this.state[index] !== state) {
			throw new ProtocolViolation(`${name} at offset ${offset} for a chunk that awaits no ${name}${this.copy ? ' (a session without digests)' : ''}`);
		}
		return index;
	}
}

/**
 * The driver's check of DEST's CHECKPOINT (doc/protocol.md, "Reconnecting"): a chunk boundary of the session's range
 * [start, limit) (or its end), past the last one. Returns what is wrong, or undefined.
 */
export function checkpointProblem(start: number, limit: number, chunkSize: number, last: number, offset: number): string | undefined {
	if (offset <= last || offset > limit) {
		return `CHECKPOINT at offset ${offset} is not past the last one (${last}) inside this worker's range [${start}, ${limit})`;
	}
	if (offset !== limit && (offset - start) % chunkSize !== 0) {
		return `CHECKPOINT at offset ${offset} is not at a chunk boundary of this worker's range [${start}, ${limit})`;
	}
	return undefined;
}
