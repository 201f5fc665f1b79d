// The server's side of the NBD handshake, decoded incrementally: the greeting, option replies, the reply to
// NBD_OPT_EXPORT_NAME, and the payloads of NBD_REP_INFO and NBD_REP_META_CONTEXT. Pure: fed chunks of any size.
import {ByteQueue} from './byte-queue.js';
import {expectLength, IHAVEOPT, INFO, NBDMAGIC, NbdProtocolError, OPTION_REPLY_MAGIC, safeNumber} from './protocol.js';

/** What the server sends before option haggling, an option reply, or the reply to NBD_OPT_EXPORT_NAME. */
export type HandshakeMessage =
	| {readonly kind: 'greeting'; readonly flags: number}
	| {readonly kind: 'option-reply'; readonly option: number; readonly type: number; readonly data: Buffer}
	| {readonly kind: 'export'; readonly size: number; readonly flags: number};

/** Largest option reply accepted (a string of 4096 bytes plus headers is the most any reply we ask for needs). */
export const MAX_OPTION_REPLY = 64 * 1024;

/**
 * The server's side of the handshake: the greeting, then option replies; after NBD_OPT_EXPORT_NAME call
 * expectExportReply() first. Throws NbdProtocolError on a bad magic or an oversized reply.
 */
export class HandshakeDecoder {
	private readonly queue = new ByteQueue();
	private state: 'greeting' | 'options' | 'export' = 'greeting';
	private exportReplyLength = 0;

	constructor(private readonly maxReply = MAX_OPTION_REPLY) {}

	get buffered(): number {
		return this.queue.length;
	}

	/** The next bytes are the reply to NBD_OPT_EXPORT_NAME (124 zero bytes follow unless NO_ZEROES was agreed). */
	expectExportReply(noZeroes: boolean): void {
		this.state = 'export';
		this.exportReplyLength = noZeroes ? 10 : 134;
	}

	push(chunk: Buffer): HandshakeMessage[] {
		this.queue.push(chunk);
		const out: HandshakeMessage[] = [];
		for (;;) {
			if (this.state === 'greeting') {
				if (this.queue.length < 18) {
					break;
				}
				const bytes = this.queue.take(18);
				if (bytes.readBigUInt64BE(0) !== NBDMAGIC) {
					throw new NbdProtocolError('not an NBD server (no NBDMAGIC in its greeting)');
				}
				if (bytes.readBigUInt64BE(8) !== IHAVEOPT) {
					throw new NbdProtocolError('the NBD server does not speak the newstyle handshake (oldstyle servers are not supported)');
				}
				out.push({kind: 'greeting', flags: bytes.readUInt16BE(16)});
				this.state = 'options';
			} else if (this.state === 'export') {
				if (this.queue.length < this.exportReplyLength) {
					break;
				}
				const bytes = this.queue.take(this.exportReplyLength);
				out.push({kind: 'export', size: safeNumber(bytes.readBigUInt64BE(0), 'export size'), flags: bytes.readUInt16BE(8)});
				this.state = 'options';
			} else {
				if (this.queue.length < 20) {
					break;
				}
				const head = this.queue.peek(20);
				if (head.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) {
					throw new NbdProtocolError('bad magic in an NBD option reply');
				}
				const length = head.readUInt32BE(16);
				if (length > this.maxReply) {
					throw new NbdProtocolError(`NBD option reply of ${length} bytes exceeds the ${this.maxReply}-byte limit`);
				}
				if (this.queue.length < 20 + length) {
					break;
				}
				this.queue.take(20);
				out.push({kind: 'option-reply', option: head.readUInt32BE(8), type: head.readUInt32BE(12), data: Buffer.from(this.queue.take(length))});
			}
		}
		return out;
	}

	/** Bytes past the last message (handed to the transmission decoder). */
	rest(): Buffer {
		return this.queue.rest();
	}
}

export type ExportInfo = {readonly size: number; readonly flags: number};
export type BlockSizeInfo = {readonly minimum: number; readonly preferred: number; readonly maximum: number};

/** An NBD_REP_INFO payload; undefined for information types this client does not use (the spec says: ignore them). */
export function decodeInfo(data: Buffer): {type: 'export'; export: ExportInfo} | {type: 'block-size'; blockSize: BlockSizeInfo} | {type: 'name' | 'description'; text: string} | undefined {
	if (data.length < 2) {
		throw new NbdProtocolError('NBD_REP_INFO shorter than its type');
	}
	const type = data.readUInt16BE(0);
	switch (type) {
		case INFO.EXPORT:
			expectLength(data, 12, 'NBD_INFO_EXPORT');
			return {type: 'export', export: {size: safeNumber(data.readBigUInt64BE(2), 'export size'), flags: data.readUInt16BE(10)}};
		case INFO.BLOCK_SIZE: {
			expectLength(data, 14, 'NBD_INFO_BLOCK_SIZE');
			const blockSize = {minimum: data.readUInt32BE(2), preferred: data.readUInt32BE(6), maximum: data.readUInt32BE(10)};
			const power = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
			if (!power(blockSize.minimum) || blockSize.minimum > 65_536 || !power(blockSize.preferred) || blockSize.maximum < blockSize.preferred) {
				throw new NbdProtocolError(`invalid NBD block size constraints ${blockSize.minimum}/${blockSize.preferred}/${blockSize.maximum}`);
			}
			return {type: 'block-size', blockSize};
		}
		case INFO.NAME:
		case INFO.DESCRIPTION:
			return {type: type === INFO.NAME ? 'name' : 'description', text: data.subarray(2).toString('utf8')};
		default:
			return undefined;
	}
}

/** An NBD_REP_META_CONTEXT payload: the id the server gave the context, and its name. */
export function decodeMetaContext(data: Buffer): {id: number; name: string} {
	if (data.length < 4) {
		throw new NbdProtocolError('NBD_REP_META_CONTEXT shorter than its id');
	}
	return {id: data.readUInt32BE(0), name: data.subarray(4).toString('utf8')};
}
