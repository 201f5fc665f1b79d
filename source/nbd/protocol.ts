// The NBD wire format (NetworkBlockDevice/nbd doc/proto.md): its numbers and the encoders of the client's
// messages. The server's messages are decoded by handshake-codec.ts and reply-codec.ts. No sockets here.

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

/**
 * qemu:dirty-bitmap:NAME extent flag (qemu docs/interop/nbd.txt): bit 0 set when the extent is dirty, that is
 * written since the bitmap was created or last cleared; clear for an extent nobody wrote.
 */
export const STATE_DIRTY = 1 << 0;

/** The metadata context of allocation (holes and zeros), which every server with block status offers. */
export const BASE_ALLOCATION = 'base:allocation';

/** The context name under which qemu-nbd (`-B NAME`) exports a dirty bitmap. */
export function dirtyBitmapContext(bitmap: string): string {
	return `qemu:dirty-bitmap:${bitmap}`;
}

/** The dirty ranges among one dirty-bitmap context's extents (absolute, ascending), adjacent ones merged. Pure. */
export function dirtySpans(extents: ReadonlyArray<{readonly start: number; readonly end: number; readonly flags: number}>): Array<{start: number; end: number}> {
	const out: Array<{start: number; end: number}> = [];
	for (const extent of extents) {
		if (!(extent.flags & STATE_DIRTY) || extent.end <= extent.start) {
			continue;
		}
		const last = out[out.length - 1];
		if (last && last.end >= extent.start) {
			last.end = Math.max(last.end, extent.end);
		} else {
			out.push({start: extent.start, end: extent.end});
		}
	}
	return out;
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

/** Throws unless `data` has exactly the length the spec fixes for `what`. */
export function expectLength(data: Buffer, length: number, what: string): void {
	if (data.length !== length) {
		throw new NbdProtocolError(`${what} of ${data.length} bytes (must be ${length})`);
	}
}

/** A 64-bit field as a number; past 2^53 the server is not describing a disk this client can address. */
export function safeNumber(value: bigint, what: string): number {
	if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
		throw new NbdProtocolError(`NBD ${what} ${value} is beyond 2^53`);
	}
	return Number(value);
}
