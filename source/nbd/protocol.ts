// The NBD wire format (NetworkBlockDevice/nbd doc/proto.md), as a pure codec: encoders for the client's
// messages and incremental decoders for the server's, fed chunks of any size. No sockets here.

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags. */
export const TFLAG = {
	HAS_FLAGS: 1 << 0,
	READ_ONLY: 1 << 1,
	SEND_FLUSH: 1 << 2,
	SEND_FUA: 1 << 3,
	ROTATIONAL: 1 << 4,
	SEND_TRIM: 1 << 5,
	SEND_WRITE_ZEROES: 1 << 6,
	SEND_DF: 1 << 7,
	CAN_MULTI_CONN: 1 << 8,
	SEND_CACHE: 1 << 10,
	SEND_FAST_ZERO: 1 << 11,
} as const;

export const OPT = {
	EXPORT_NAME: 1,
	ABORT: 2,
	LIST: 3,
	STARTTLS: 5,
	INFO: 6,
	GO: 7,
	STRUCTURED_REPLY: 8,
	LIST_META_CONTEXT: 9,
	SET_META_CONTEXT: 10,
} as const;

export const REP = {
	ACK: 1,
	SERVER: 2,
	INFO: 3,
	META_CONTEXT: 4,
	ERR_UNSUP: 0x80000001,
	ERR_POLICY: 0x80000002,
	ERR_INVALID: 0x80000003,
	ERR_PLATFORM: 0x80000004,
	ERR_TLS_REQD: 0x80000005,
	ERR_UNKNOWN: 0x80000006,
	ERR_SHUTDOWN: 0x80000007,
	ERR_BLOCK_SIZE_REQD: 0x80000008,
	ERR_TOO_BIG: 0x80000009,
} as const;

export const INFO = {EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3} as const;

export const CMD = {READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7} as const;

export const CMD_FLAG = {FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4} as const;

export const REPLY_FLAG_DONE = 1 << 0;

export const REPLY_TYPE = {
	NONE: 0,
	OFFSET_DATA: 1,
	OFFSET_HOLE: 2,
	BLOCK_STATUS: 5,
	ERROR: 0x8001,
	ERROR_OFFSET: 0x8002,
} as const;

/** base:allocation extent flags. */
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;

/** The metadata context of allocation (holes and zeros), which every server with block status offers. */
export const BASE_ALLOCATION = 'base:allocation';

/** The context name under which qemu-nbd (`-B NAME`) exports a dirty bitmap. */
export function dirtyBitmapContext(bitmap: string): string {
	return `qemu:dirty-bitmap:${bitmap}`;
}

/** NBD error values and the errno codes they stand for (anything else is treated as EINVAL, as the spec says). */
const ERRNO: Record<number, string> = {1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN'};

/** The errno code of an NBD error value. */
export function errnoCode(error: number): string {
	return ERRNO[error] ?? 'EINVAL';
}

/** Names of option reply errors, for messages. */
export function optionReplyName(type: number): string {
	const found = Object.entries(REP).find(([, value]) => value === type);
	return found ? `NBD_REP_${found[0]}` : `reply type 0x${type.toString(16)}`;
}

/** Largest payload (after the header) a decoder accepts: 32 MiB of data plus slack, or 8 MiB of extents. */
export const MAX_REPLY_PAYLOAD = 32 * 1024 * 1024 + 4096;

/** The server broke the protocol: the connection cannot continue (a hard disconnect). */
export class NbdProtocolError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'NbdProtocolError';
	}
}

/** Strings are UTF-8 and at most 4096 bytes (spec, Conventions). */
function encodeString(text: string, what: string): Buffer {
	const bytes = Buffer.from(text, 'utf8');
	if (bytes.length > 4096 || bytes.includes(0)) {
		throw new RangeError(`${what} must be at most 4096 bytes of UTF-8 without NUL`);
	}
	return bytes;
}

/** The client flags, sent after the server's greeting. */
export function encodeClientFlags(flags: number): Buffer {
	const bytes = Buffer.alloc(4);
	bytes.writeUInt32BE(flags >>> 0);
	return bytes;
}

/** One option request: IHAVEOPT, option, length, data. */
export function encodeOption(option: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
	const bytes = Buffer.alloc(16 + data.length);
	bytes.writeBigUInt64BE(IHAVEOPT, 0);
	bytes.writeUInt32BE(option, 8);
	bytes.writeUInt32BE(data.length, 12);
	bytes.set(data, 16);
	return bytes;
}

/** NBD_OPT_GO (or NBD_OPT_INFO) for `exportName`, asking for the listed NBD_INFO items. */
export function encodeGo(exportName: string, infos: readonly number[], option: number = OPT.GO): Buffer {
	const name = encodeString(exportName, 'an export name');
	const data = Buffer.alloc(4 + name.length + 2 + 2 * infos.length);
	data.writeUInt32BE(name.length, 0);
	name.copy(data, 4);
	data.writeUInt16BE(infos.length, 4 + name.length);
	infos.forEach((info, i) => data.writeUInt16BE(info, 6 + name.length + 2 * i));
	return encodeOption(option, data);
}

/** NBD_OPT_SET_META_CONTEXT (or LIST) for `exportName` with these queries. */
export function encodeMetaContext(exportName: string, queries: readonly string[], option: number = OPT.SET_META_CONTEXT): Buffer {
	const parts = [encodeString(exportName, 'an export name'), ...queries.map(query => encodeString(query, 'a metadata context query'))];
	const data = Buffer.alloc(8 + parts.reduce((sum, part) => sum + 4 + part.length, 0) - 4);
	let at = 0;
	parts.forEach((part, i) => {
		data.writeUInt32BE(part.length, at);
		part.copy(data, at + 4);
		at += 4 + part.length;
		if (i === 0) {
			data.writeUInt32BE(queries.length, at);
			at += 4;
		}
	});
	return encodeOption(option, data);
}

/** NBD_OPT_EXPORT_NAME: the fallback for a server without NBD_OPT_GO. */
export function encodeExportName(exportName: string): Buffer {
	return encodeOption(OPT.EXPORT_NAME, encodeString(exportName, 'an export name'));
}

export type Request = {readonly type: number; readonly flags?: number; readonly cookie: number; readonly offset?: number; readonly length?: number};

/** A request header (28 bytes); a WRITE's data follows it on the wire, sent separately to avoid a copy. */
export function encodeRequest(request: Request): Buffer {
	const bytes = Buffer.alloc(28);
	bytes.writeUInt32BE(REQUEST_MAGIC, 0);
	bytes.writeUInt16BE(request.flags ?? 0, 4);
	bytes.writeUInt16BE(request.type, 6);
	bytes.writeBigUInt64BE(BigInt(request.cookie), 8);
	bytes.writeBigUInt64BE(BigInt(request.offset ?? 0), 16);
	bytes.writeUInt32BE(request.length ?? 0, 24);
	return bytes;
}

/** What the server sends before option haggling, an option reply, or the reply to NBD_OPT_EXPORT_NAME. */
export type HandshakeMessage =
	| {readonly kind: 'greeting'; readonly flags: number}
	| {readonly kind: 'option-reply'; readonly option: number; readonly type: number; readonly data: Buffer}
	| {readonly kind: 'export'; readonly size: number; readonly flags: number};

/** Largest option reply accepted (a string of 4096 bytes plus headers is the most any reply we ask for needs). */
export const MAX_OPTION_REPLY = 64 * 1024;

/** Pending bytes as one list, taken from the front. */
class ByteQueue {
	private chunks: Buffer[] = [];
	length = 0;

	push(chunk: Buffer): void {
		if (chunk.length > 0) {
			this.chunks.push(chunk);
			this.length += chunk.length;
		}
	}

	/** The first `count` bytes without consuming them (a copy only when they span chunks). */
	peek(count: number): Buffer {
		const first = this.chunks[0]!;
		return first.length >= count ? first.subarray(0, count) : Buffer.concat(this.chunks, count).subarray(0, count);
	}

	take(count: number): Buffer {
		const first = this.chunks[0];
		if (count === 0) {
			return Buffer.alloc(0);
		}
		let bytes: Buffer;
		if (first!.length >= count) {
			bytes = first!.subarray(0, count);
			if (first!.length === count) {
				this.chunks.shift();
			} else {
				this.chunks[0] = first!.subarray(count);
			}
		} else {
			const all = Buffer.concat(this.chunks, this.length);
			bytes = all.subarray(0, count);
			this.chunks = all.length > count ? [all.subarray(count)] : [];
		}
		this.length -= count;
		return bytes;
	}

	/** Everything pending, consumed. */
	rest(): Buffer {
		return this.take(this.length);
	}
}

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

function expectLength(data: Buffer, length: number, what: string): void {
	if (data.length !== length) {
		throw new NbdProtocolError(`${what} of ${data.length} bytes (must be ${length})`);
	}
}

function safeNumber(value: bigint, what: string): number {
	if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
		throw new NbdProtocolError(`NBD ${what} ${value} is beyond 2^53`);
	}
	return Number(value);
}
