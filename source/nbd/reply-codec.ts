// The server's side of NBD transmission, decoded incrementally into whole simple replies and structured reply
// chunks, and the payload decoders of each chunk type. Pure: fed chunks of any size.
import {ByteQueue} from './byte-queue.js';
import {expectLength, MAX_REPLY_PAYLOAD, NbdProtocolError, REPLY_TYPE, safeNumber, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC} from './protocol.js';

/** A transmission-phase message: a simple reply (with a READ's data when `data` is set) or one structured reply chunk. */
export type Reply =
	| {readonly kind: 'simple'; readonly cookie: number; readonly error: number; readonly data?: Buffer}
	| {readonly kind: 'chunk'; readonly cookie: number; readonly flags: number; readonly type: number; readonly payload: Buffer};

/**
 * The server's side of transmission. `simpleDataLength(cookie)` says how many data bytes follow a
 * successful simple reply (a READ without structured replies; 0 for everything else).
 */
export class ReplyDecoder {
	private readonly queue = new ByteQueue();

	constructor(private readonly simpleDataLength: (cookie: number) => number = () => 0, private readonly maxPayload = MAX_REPLY_PAYLOAD) {}

	get buffered(): number {
		return this.queue.length;
	}

	/** Throws NbdProtocolError on a bad magic or a payload above the limit; after that the decoder is unusable. */
	push(chunk: Buffer): Reply[] {
		this.queue.push(chunk);
		const out: Reply[] = [];
		while (this.queue.length >= 4) {
			const magic = this.queue.peek(4).readUInt32BE(0);
			if (magic === STRUCTURED_REPLY_MAGIC) {
				if (this.queue.length < 20) {
					break;
				}
				const head = this.queue.peek(20);
				const length = head.readUInt32BE(16);
				if (length > this.maxPayload) {
					throw new NbdProtocolError(`NBD reply chunk of ${length} bytes exceeds the ${this.maxPayload}-byte limit`);
				}
				if (this.queue.length < 20 + length) {
					break;
				}
				this.queue.take(20);
				const cookie = safeNumber(head.readBigUInt64BE(8), 'cookie');
				out.push({kind: 'chunk', cookie, flags: head.readUInt16BE(4), type: head.readUInt16BE(6), payload: this.queue.take(length)});
			} else if (magic === SIMPLE_REPLY_MAGIC) {
				if (this.queue.length < 16) {
					break;
				}
				const head = this.queue.peek(16);
				const error = head.readUInt32BE(4);
				const cookie = safeNumber(head.readBigUInt64BE(8), 'cookie');
				const length = error === 0 ? this.simpleDataLength(cookie) : 0;
				if (this.queue.length < 16 + length) {
					break;
				}
				this.queue.take(16);
				out.push(length > 0 ? {kind: 'simple', cookie, error, data: this.queue.take(length)} : {kind: 'simple', cookie, error});
			} else {
				throw new NbdProtocolError(`bad magic 0x${magic.toString(16).padStart(8, '0')} in an NBD reply`);
			}
		}
		return out;
	}

	/** Call at end of stream: throws if it ended inside a message. */
	end(): void {
		if (this.queue.length > 0) {
			throw new NbdProtocolError(`the NBD connection ended inside a reply (${this.queue.length} bytes pending)`);
		}
	}
}

export type Extent = {readonly length: number; readonly flags: number};

/** Payload decoders of the structured chunk types; each checks the lengths the spec fixes. */
export function decodeOffsetData(payload: Buffer): {offset: number; data: Buffer} {
	if (payload.length < 9) {
		throw new NbdProtocolError(`NBD_REPLY_TYPE_OFFSET_DATA of ${payload.length} bytes (at least 9)`);
	}
	return {offset: safeNumber(payload.readBigUInt64BE(0), 'offset'), data: payload.subarray(8)};
}

export function decodeOffsetHole(payload: Buffer): {offset: number; length: number} {
	expectLength(payload, 12, 'NBD_REPLY_TYPE_OFFSET_HOLE');
	const length = payload.readUInt32BE(8);
	if (length === 0) {
		throw new NbdProtocolError('NBD_REPLY_TYPE_OFFSET_HOLE of length 0');
	}
	return {offset: safeNumber(payload.readBigUInt64BE(0), 'offset'), length};
}

export function decodeBlockStatus(payload: Buffer): {contextId: number; extents: Extent[]} {
	if (payload.length < 12 || (payload.length - 4) % 8 !== 0) {
		throw new NbdProtocolError(`NBD_REPLY_TYPE_BLOCK_STATUS of ${payload.length} bytes (4 + a positive multiple of 8)`);
	}
	const extents: Extent[] = [];
	for (let at = 4; at < payload.length; at += 8) {
		const length = payload.readUInt32BE(at);
		if (length === 0) {
			throw new NbdProtocolError('NBD block status extent of length 0');
		}
		extents.push({length, flags: payload.readUInt32BE(at + 4)});
	}
	return {contextId: payload.readUInt32BE(0), extents};
}

/** True for every error chunk type (bit 15), known or not. */
export function isErrorChunk(type: number): boolean {
	return (type & 0x8000) !== 0;
}

/** An error chunk (any type with bit 15): the error value, the server's message, and the offset of ERROR_OFFSET. */
export function decodeError(type: number, payload: Buffer): {error: number; message: string; offset?: number} {
	if (payload.length < 6) {
		throw new NbdProtocolError(`NBD error chunk of ${payload.length} bytes (at least 6)`);
	}
	const error = payload.readUInt32BE(0);
	const length = payload.readUInt16BE(4);
	if (6 + length > payload.length) {
		throw new NbdProtocolError('NBD error chunk whose message overruns it');
	}
	const message = payload.subarray(6, 6 + length).toString('utf8');
	if (type === REPLY_TYPE.ERROR_OFFSET) {
		if (payload.length !== 6 + length + 8) {
			throw new NbdProtocolError('NBD_REPLY_TYPE_ERROR_OFFSET without its offset');
		}
		return {error, message, offset: safeNumber(payload.readBigUInt64BE(6 + length), 'offset')};
	}
	return {error, message};
}
