// Every protocol message as a typed object, and the pure mapping to and from frames (doc/protocol.md).
import type {Counters} from '../blocks/counters.js';
import {encodeFrameParts, type Frame, ProtocolError} from './frame.js';

/** Bumped on any incompatible change of doc/protocol.md; HELLO carries it. */
export const PROTOCOL_VERSION = 1;

/** OPEN's role byte. */
export const Role = {source: 1, dest: 2} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** OPEN flags. */
export const OpenFlag = {truncate: 1, dryRun: 2, copy: 4, force: 8, prepare: 16, dropCache: 32, cache: 64, keyed: 128} as const;
/**
 * HELLO capability bits: holes: the native helper is loaded; keyed: SOURCE takes KEY (keyed truncated digests);
 * readCounters: this side knows STATS and DONE with the two read counters (ten u64, not eight) and SOURCE's STATS;
 * a side sends them only when the other's HELLO has the bit (doc/protocol.md, STATS);
 * quickCheck: DEST's preparing agent takes SRC's stamp in a CACHE frame before its OPEN (SRC's quick check);
 * compressAuto: OPEN's compress byte may carry the codec and auto bits (CompressBits); zstd: the agent compresses
 * and decompresses zstd (DATAZS), libzstd being loaded; wideSession: the agent runs a worker session wide
 * (WIDE_CREDIT_WINDOW, credit per chunk, CHUNK_SUBS) when its OPEN says WIDE_SESSION, which the driver sends only
 * where both preparing agents offered the bit; tree: the agent answers LIST and FSOP and takes RESET (runs over many
 * files: a driver refuses, in one line, an agent without it).
 */
export const Capability = {holes: 1, keyed: 2, readCounters: 4, quickCheck: 8, compressAuto: 16, zstd: 32, checkpoints: 64, wideSession: 128, tree: 256} as const;

/** DEST's CACHE status when SRC's stamp and DST match the cache: the run reads and writes nothing. */
export const CACHE_UNCHANGED = 'used: SRC and DST unchanged since the last run (quick check)';
/** Before SRC's stamp in the driver's CACHE to DEST: record the stamp at commit, but do not answer this run by it. */
export const RECORD_ONLY = 'record:';

/**
 * OPEN's compress byte: 0 off; 1-9 alone a zlib level (what every agent reads); with `zstd` the low five bits are a
 * zstd level (1-19); with `auto` SOURCE compresses only while it pays, measured as it runs (delta/auto-compress.ts).
 * The driver sets `zstd` and `auto` only for a SOURCE whose HELLO offers compressAuto (and zstd for both roles).
 */
export const CompressBits = {levelMask: 0x1f, zstd: 0x20, auto: 0x40} as const;

export type CompressSpec = {readonly codec: 'zlib' | 'zstd'; readonly level: number; readonly auto: boolean} | undefined;

/** OPEN's compress byte of a spec (undefined: off). */
export function compressByte(spec: CompressSpec): number {
	return spec === undefined ? 0 : (spec.level & CompressBits.levelMask) | (spec.codec === 'zstd' ? CompressBits.zstd : 0) | (spec.auto ? CompressBits.auto : 0);
}

/** The spec an OPEN's compress byte says (undefined: off). */
export function compressSpec(byte: number): CompressSpec {
	const level = byte & CompressBits.levelMask;
	return level === 0 ? undefined : {codec: (byte & CompressBits.zstd) !== 0 ? 'zstd' : 'zlib', level, auto: (byte & CompressBits.auto) !== 0};
}

export const ImageKindCode = {file: 1, block: 2, memory: 3} as const;
/** ERROR's kind: `protocol` says the sender's peer broke the session rules (doc/protocol.md); the driver names that peer. */
export const ErrorKind = {precondition: 1, io: 2, protocol: 3} as const;

/** Decodes OPEN's flag bits: the one place they are read. */
export function openFlags(bits: number): {truncate: boolean; dryRun: boolean; copy: boolean; force: boolean; prepare: boolean; dropCache: boolean; cache: boolean; keyed: boolean} {
	return {
		truncate: (bits & OpenFlag.truncate) !== 0,
		dryRun: (bits & OpenFlag.dryRun) !== 0,
		copy: (bits & OpenFlag.copy) !== 0,
		force: (bits & OpenFlag.force) !== 0,
		prepare: (bits & OpenFlag.prepare) !== 0,
		dropCache: (bits & OpenFlag.dropCache) !== 0,
		cache: (bits & OpenFlag.cache) !== 0,
		keyed: (bits & OpenFlag.keyed) !== 0,
	};
}

/** The inverse of openFlags. */
export function openFlagBits(flags: {truncate: boolean; dryRun: boolean; copy: boolean; force: boolean; prepare: boolean; dropCache?: boolean; cache?: boolean; keyed?: boolean}): number {
	return (flags.truncate ? OpenFlag.truncate : 0) | (flags.dryRun ? OpenFlag.dryRun : 0) | (flags.copy ? OpenFlag.copy : 0)
		| (flags.force ? OpenFlag.force : 0) | (flags.prepare ? OpenFlag.prepare : 0) | (flags.dropCache ? OpenFlag.dropCache : 0)
		| (flags.cache ? OpenFlag.cache : 0) | (flags.keyed ? OpenFlag.keyed : 0);
}

/** STATS and DONE's counters in wire order: the eight of protocol 1, then srcBytesRead and dstBytesRead when both sides count reads. */
export type CountersTuple = readonly number[];

/** Counters on the wire: the eight every peer knows, and the two read counters after them. */
const BASE_COUNTERS = 8;
const ALL_COUNTERS = 10;

/** Every frame of doc/protocol.md as a tagged object; `type` names the frame. */
export type Message =
	| {type: 'hello'; protocol: number; caps: number; program: string; hashes: string}
	// holder: a DEST worker's link to the agent holding DST's lock (DEST's prepare OPENED identity); absent on the wire when unset.
	// format: the image's format (--src-format/--dst-format; absent: not given, "raw": the bytes as they are, else served by qemu-nbd);
	// with a format, holder is always on the wire (empty when unset), and a worker's holder is its preparing agent's NBD socket (OPENED's server).
	// bitmap: SOURCE's --bitmap NAME (a prepare OPEN: SRC's preparing agent manages it; a worker's: read only what it marks dirty);
	// pass: a commit OPEN's record of the pass to keep with the bitmap (doc/protocol.md, Dirty bitmaps).
	// qmp: SOURCE's --qmp SOCKET, the monitor of the running VM whose disk SRC is (its QEMU exports it);
	// locking: "off" for --force-share (a formatted SRC read past the lock of the QEMU that holds it).
	// session: a worker's "wide" (WIDE_SESSION): both preparing agents' HELLO offered Capability.wideSession (doc/protocol.md).
	| {type: 'open'; role: Role; flags: number; blockSize: number; compress: number; srcSize: number; start: number; end: number; hash: string; path: string; srcIdentity: string; holder?: string; format?: string; bitmap?: string; pass?: string; qmp?: string; locking?: string; cacheDir?: string; trustCache?: string; session?: string; version?: string}
	// server: the NBD socket a preparing agent serves a formatted image on, for the run's workers; absent on the wire when unset.
	// pass: SOURCE's prepare: the pass recorded with its bitmap; DEST's prepare and commit: DST's stamp (doc/protocol.md, Dirty bitmaps).
	| {type: 'opened'; size: number; kind: number; dstExtraBytes: number; identity: string; server?: string; pass?: string; version?: string}
	| {type: 'error'; kind: number; message: string}
	// DEST's preparing agent, asked for its digest cache (OPEN's cache flag), before OPENED: "used", "built", "stale: <reason>", "off: <reason>".
	// SOURCE's preparing agent (cache flag): SRC's quick-check stamp, before OPENED. The driver to DEST's preparing agent: that stamp, before OPEN.
	// bytesRead: DST bytes its preparing agent read to check the cache (a trusted device's sample); absent on the wire when 0.
	| {type: 'cache'; status: string; bytesRead?: number}
	| {type: 'warn'; message: string}
	// A run over a directory tree, after HELLO instead of OPEN (doc/protocol.md, "Trees"): LIST, its ENTRY frames and LISTED;
	// FSOP (create directories, remove a file, set a file's attributes under a root) and its ACK (error: '' when done).
	| {type: 'list'; path: string}
	| {type: 'entry'; kind: number; size: number; mode: number; uid: number; gid: number; mtimeSec: number; mtimeNsec: number; changedMs: number; stamp: string; path: string}
	| {type: 'listed'; count: number; missing: boolean; nowMs: number}
	| {type: 'fsop'; op: number; root: string; path: string; mode: number; uid: number; gid: number; mtimeSec: number; mtimeNsec: number}
	| {type: 'ack'; error: string; stamp: string}
	// The driver, to an agent whose worker session ended or that holds a prepare OPEN's image: let it go, wait for the next OPEN (ACK).
	| {type: 'reset'}
	| {type: 'credit'; granted: number}
	| {type: 'chunk'; offset: number; length: number; digest: Buffer}
	// A wide session's CHUNK: with SOURCE's sub-chunk digests (keyed after KEY); DEST answers BLOCKS for those that differ, unasked.
	| {type: 'chunkSubs'; offset: number; length: number; digest: Buffer; subs: Buffer}
	| {type: 'zero'; offset: number; length: number}
	| {type: 'skip'; offset: number; length: number}
	| {type: 'subs'; offset: number; digests: Buffer}
	| {type: 'want'; offset: number; mask: number}
	| {type: 'blocks'; offset: number; mask: number; digests: Buffer}
	| {type: 'data'; offset: number; data: Buffer}
	| {type: 'dataz'; offset: number; length: number; deflated: Buffer}
	// A run compressed with zstd: one zstd frame that decodes to exactly `length` bytes.
	| {type: 'datazs'; offset: number; length: number; compressed: Buffer}
	| {type: 'diff'; offset: number; length: number}
	| {type: 'chunkEnd'; offset: number}
	| {type: 'full'; offset: number}
	| {type: 'sourceEnd'; blocksZero: number}
	| {type: 'empty'}
	// DEST's digest cache key (32 bytes), before the first CREDIT: SUBS and BLOCKS then carry keyed digests (delta/keyed.ts).
	| {type: 'key'; key: Buffer}
	| {type: 'stats'; counters: CountersTuple}
	| {type: 'done'; counters: CountersTuple}
	// DEST to the driver (both HELLOs with Capability.checkpoints): [start, offset) of the range is written and synced.
	| {type: 'checkpoint'; offset: number};

export type MessageType = Message['type'];

/** Frame type byte of each message. */
export const TYPE_CODE: Record<MessageType, number> = {
	hello: 0x01, open: 0x02, opened: 0x03, error: 0x04, warn: 0x05, cache: 0x06,
	list: 0x07, entry: 0x08, listed: 0x09, fsop: 0x0a, ack: 0x0b, reset: 0x0c,
	credit: 0x10, chunk: 0x11, zero: 0x12, subs: 0x13, want: 0x14, blocks: 0x15, data: 0x16,
	dataz: 0x17, diff: 0x18, chunkEnd: 0x19, full: 0x1a, sourceEnd: 0x1b, stats: 0x1c, done: 0x1d, empty: 0x1e, key: 0x1f, skip: 0x20, datazs: 0x21, checkpoint: 0x22, chunkSubs: 0x23,
};
const TYPE_NAME = new Map<number, MessageType>(Object.entries(TYPE_CODE).map(([name, code]) => [code, name as MessageType]));

/** Each frame's name in doc/protocol.md (CHUNK_END), for messages about it. */
export const FRAME_NAME: Record<MessageType, string> = {
	hello: 'HELLO', open: 'OPEN', opened: 'OPENED', error: 'ERROR', warn: 'WARN', cache: 'CACHE',
	list: 'LIST', entry: 'ENTRY', listed: 'LISTED', fsop: 'FSOP', ack: 'ACK', reset: 'RESET',
	credit: 'CREDIT', chunk: 'CHUNK', zero: 'ZERO', subs: 'SUBS', want: 'WANT', blocks: 'BLOCKS', data: 'DATA',
	dataz: 'DATAZ', diff: 'DIFF', chunkEnd: 'CHUNK_END', full: 'FULL', sourceEnd: 'SOURCE_END', stats: 'STATS', done: 'DONE', empty: 'EMPTY', key: 'KEY', skip: 'SKIP', datazs: 'DATAZS', checkpoint: 'CHECKPOINT', chunkSubs: 'CHUNK_SUBS',
};

/** The name of a frame type byte (FRAME_NAME's); undefined for a byte no frame has. */
export function frameName(type: number): string | undefined {
	const name = TYPE_NAME.get(type);
	return name === undefined ? undefined : FRAME_NAME[name];
}

/** The session frames each role may send once OPENED (the table's direction column; ERROR and WARN go to the driver). */
export const SESSION_FRAMES: Record<'source' | 'dest', ReadonlySet<MessageType>> = {
	source: new Set<MessageType>(['chunk', 'chunkSubs', 'zero', 'skip', 'want', 'data', 'dataz', 'datazs', 'diff', 'chunkEnd', 'sourceEnd', 'stats', 'error', 'warn']),
	dest: new Set<MessageType>(['credit', 'subs', 'blocks', 'full', 'empty', 'key', 'stats', 'done', 'checkpoint', 'error', 'warn']),
};

/** Whether `role` may send a frame of this type byte during a session. */
export function sessionFrameAllowed(role: 'source' | 'dest', type: number): boolean {
	const name = TYPE_NAME.get(type);
	return name !== undefined && SESSION_FRAMES[role].has(name);
}

/** ENTRY's kind byte. */
export const EntryKindCode = {file: 1, dir: 2, symlink: 3, device: 4, fifo: 5, socket: 6, other: 7} as const;
/** FSOP's op byte: create the directories of path below root, remove the regular file path, set its mode, owner and mtime. */
export const FsOp = {mkdir: 1, remove: 2, attrs: 3} as const;

/** CHUNK frames SOURCE may have in flight: bounds memory on both sides (32 MiB of image per worker); 16 was latency-bound. */
export const CREDIT_WINDOW = 32;

/**
 * The window of a wide session (Capability.wideSession): an unchanged chunk in flight costs its CHUNK_SUBS (177 bytes),
 * so 512 of them (512 MiB of image) cover a long RTT; the data DEST asks for stays bounded by DATA_BUDGET instead.
 */
export const WIDE_CREDIT_WINDOW = 512;

/** A wide session: the most image bytes DEST may have asked for (BLOCKS, FULL) and not yet received, per worker. */
export const DATA_BUDGET = 32 * 1024 * 1024;

/** OPEN's session string of a worker whose session runs wide (sent only where both preparing agents offered Capability.wideSession). */
export const WIDE_SESSION = 'wide';

/** Bytes of a truncated sub-chunk or block digest. */
export const SHORT_DIGEST = 8;

/** Writes fields in order; one allocation for the finished frame. */
class Writer {
	private parts: Buffer[] = [];
	u8(value: number): this {
		return this.push(1, b => b.writeUInt8(value));
	}
	u16(value: number): this {
		return this.push(2, b => b.writeUInt16BE(value));
	}
	u32(value: number): this {
		return this.push(4, b => b.writeUInt32BE(value >>> 0));
	}
	u64(value: number): this {
		if (!Number.isSafeInteger(value) || value < 0) {
			throw new ProtocolError(`cannot encode ${value} as u64`);
		}
		return this.push(8, b => b.writeBigUInt64BE(BigInt(value)));
	}
	string(value: string): this {
		const bytes = Buffer.from(value, 'utf8');
		if (bytes.length > 0xffff) {
			throw new ProtocolError('string longer than 65535 bytes');
		}
		this.u16(bytes.length);
		this.parts.push(bytes);
		return this;
	}
	bytes(value: Buffer): this {
		this.parts.push(value);
		return this;
	}
	frame(type: number): Buffer {
		// Straight into the frame: DATA's block bytes are copied once, not concatenated first.
		return encodeFrameParts(type, this.parts);
	}
	private push(size: number, write: (b: Buffer) => void): this {
		const b = Buffer.allocUnsafe(size);
		write(b);
		this.parts.push(b);
		return this;
	}
}

/** Reads fields in order; any overrun or leftover byte is a ProtocolError naming the message. */
class Reader {
	private position = 0;
	constructor(private readonly buffer: Buffer, private readonly name: string) {}
	u8(): number {
		return this.need(1).readUInt8(this.position++);
	}
	u16(): number {
		const value = this.need(2).readUInt16BE(this.position);
		this.position += 2;
		return value;
	}
	u32(): number {
		const value = this.need(4).readUInt32BE(this.position);
		this.position += 4;
		return value;
	}
	u64(): number {
		const value = this.need(8).readBigUInt64BE(this.position);
		this.position += 8;
		if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
			throw new ProtocolError(`${this.name}: u64 field out of range`);
		}
		return Number(value);
	}
	string(): string {
		const length = this.u16();
		return this.bytes(length).toString('utf8');
	}
	bytes(length: number): Buffer {
		this.need(length);
		const value = this.buffer.subarray(this.position, this.position + length);
		this.position += length;
		return value;
	}
	rest(): Buffer {
		return this.bytes(this.buffer.length - this.position);
	}
	remaining(): number {
		return this.buffer.length - this.position;
	}
	end(): void {
		if (this.position !== this.buffer.length) {
			throw new ProtocolError(`${this.name}: ${this.buffer.length - this.position} unexpected trailing bytes`);
		}
	}
	private need(count: number): Buffer {
		if (this.position + count > this.buffer.length) {
			throw new ProtocolError(`${this.name}: truncated payload`);
		}
		return this.buffer;
	}
}

function counters(writer: Writer, values: CountersTuple): Writer {
	for (const value of values) {
		writer.u64(value);
	}
	return writer;
}

/** Eight counters (a peer that does not count reads) or ten; anything else is a protocol error. */
function readCounters(reader: Reader, name: string): CountersTuple {
	const count = reader.remaining() / 8;
	if (count !== BASE_COUNTERS && count !== ALL_COUNTERS) {
		throw new ProtocolError(`${name}: ${reader.remaining()} bytes of counters, not ${BASE_COUNTERS * 8} or ${ALL_COUNTERS * 8}`);
	}
	const values: number[] = [];
	for (let index = 0; index < count; index++) {
		values.push(reader.u64());
	}
	return values;
}

/** The frame bytes of one message. */
export function encode(message: Message): Buffer {
	const w = new Writer();
	switch (message.type) {
		case 'hello': w.u16(message.protocol).u32(message.caps).string(message.program).string(message.hashes); break;
		case 'open': w.u8(message.role).u8(message.flags).u32(message.blockSize).u8(message.compress).u64(message.srcSize)
			.u64(message.start).u64(message.end).string(message.hash).string(message.path).string(message.srcIdentity);
			trailingStrings(w, [message.holder, message.format, message.bitmap, message.pass, message.qmp, message.locking, message.cacheDir, message.trustCache, message.session, message.version]);
			break;
		case 'opened': w.u64(message.size).u8(message.kind).u64(message.dstExtraBytes).string(message.identity);
			trailingStrings(w, [message.server, message.pass, message.version]);
			break;
		case 'error': w.u8(message.kind).string(message.message); break;
		case 'warn': w.string(message.message); break;
		case 'cache': w.string(message.status);
			if (message.bytesRead) {
				w.u64(message.bytesRead);
			}
			break;
		case 'list': w.string(message.path); break;
		case 'entry': w.u8(message.kind).u64(message.size).u32(message.mode).u32(message.uid).u32(message.gid).u64(message.mtimeSec).u32(message.mtimeNsec)
			.u64(message.changedMs).string(message.stamp).string(message.path); break;
		case 'listed': w.u32(message.count).u8(message.missing ? 1 : 0).u64(message.nowMs); break;
		case 'fsop': w.u8(message.op).string(message.root).string(message.path).u32(message.mode).u32(message.uid).u32(message.gid).u64(message.mtimeSec).u32(message.mtimeNsec); break;
		case 'ack': w.string(message.error).string(message.stamp); break;
		case 'credit': w.u32(message.granted); break;
		case 'chunk': w.u64(message.offset).u32(message.length).bytes(message.digest); break;
		case 'chunkSubs': w.u64(message.offset).u32(message.length).bytes(message.digest).bytes(message.subs); break;
		case 'zero': case 'skip': case 'diff': w.u64(message.offset).u64(message.length); break;
		case 'subs': w.u64(message.offset).bytes(message.digests); break;
		case 'want': w.u64(message.offset).u32(message.mask); break;
		case 'blocks': w.u64(message.offset).u32(message.mask).bytes(message.digests); break;
		case 'data': w.u64(message.offset).bytes(message.data); break;
		case 'dataz': w.u64(message.offset).u32(message.length).bytes(message.deflated); break;
		case 'datazs': w.u64(message.offset).u32(message.length).bytes(message.compressed); break;
		case 'chunkEnd': case 'full': case 'checkpoint': w.u64(message.offset); break;
		case 'sourceEnd': w.u64(message.blocksZero); break;
		case 'stats': case 'done': counters(w, message.counters); break;
		case 'empty': case 'reset': break;
		case 'key': w.bytes(message.key); break;
	}
	return w.frame(TYPE_CODE[message.type]);
}

/** The message in a frame; throws ProtocolError on an unknown type or a malformed payload. */
export function decode(frame: Frame): Message {
	const type = TYPE_NAME.get(frame.type);
	if (type === undefined) {
		throw new ProtocolError(`unknown frame type 0x${frame.type.toString(16).padStart(2, '0')}`);
	}
	const r = new Reader(frame.payload, type);
	let message: Message;
	switch (type) {
		case 'hello': message = {type, protocol: r.u16(), caps: r.u32(), program: r.string(), hashes: r.string()}; break;
		case 'open': message = {type, role: r.u8() as Role, flags: r.u8(), blockSize: r.u32(), compress: r.u8(), srcSize: r.u64(),
			start: r.u64(), end: r.u64(), hash: r.string(), path: r.string(), srcIdentity: r.string(), ...optionalStrings(r, 'holder', 'format', 'bitmap', 'pass', 'qmp', 'locking', 'cacheDir', 'trustCache', 'session', 'version')}; break;
		case 'opened': message = {type, size: r.u64(), kind: r.u8(), dstExtraBytes: r.u64(), identity: r.string(), ...optionalStrings(r, 'server', 'pass', 'version')}; break;
		case 'error': message = {type, kind: r.u8(), message: r.string()}; break;
		case 'warn': message = {type, message: r.string()}; break;
		case 'cache': message = {type, status: r.string(), ...(r.remaining() > 0 ? {bytesRead: r.u64()} : {})}; break;
		case 'list': message = {type, path: r.string()}; break;
		case 'entry': message = {type, kind: r.u8(), size: r.u64(), mode: r.u32(), uid: r.u32(), gid: r.u32(), mtimeSec: r.u64(), mtimeNsec: r.u32(),
			changedMs: r.u64(), stamp: r.string(), path: r.string()}; break;
		case 'listed': message = {type, count: r.u32(), missing: r.u8() !== 0, nowMs: r.u64()}; break;
		case 'fsop': message = {type, op: r.u8(), root: r.string(), path: r.string(), mode: r.u32(), uid: r.u32(), gid: r.u32(), mtimeSec: r.u64(), mtimeNsec: r.u32()}; break;
		case 'ack': message = {type, error: r.string(), stamp: r.string()}; break;
		case 'credit': message = {type, granted: r.u32()}; break;
		case 'chunk': message = {type, offset: r.u64(), length: r.u32(), digest: r.bytes(32)}; break;
		case 'chunkSubs': message = {type, offset: r.u64(), length: r.u32(), digest: r.bytes(32), subs: digestList(r, type)}; break;
		case 'zero': case 'skip': case 'diff': message = {type, offset: r.u64(), length: r.u64()}; break;
		case 'subs': message = {type, offset: r.u64(), digests: digestList(r, type)}; break;
		case 'want': message = {type, offset: r.u64(), mask: r.u32()}; break;
		case 'blocks': message = {type, offset: r.u64(), mask: r.u32(), digests: digestList(r, type)}; break;
		case 'data': message = {type, offset: r.u64(), data: r.rest()}; break;
		case 'dataz': message = {type, offset: r.u64(), length: r.u32(), deflated: r.rest()}; break;
		case 'datazs': message = {type, offset: r.u64(), length: r.u32(), compressed: r.rest()}; break;
		case 'chunkEnd': case 'full': case 'checkpoint': message = {type, offset: r.u64()}; break;
		case 'sourceEnd': message = {type, blocksZero: r.u64()}; break;
		case 'stats': case 'done': message = {type, counters: readCounters(r, type)}; break;
		case 'empty': case 'reset': message = {type}; break;
		case 'key': message = {type, key: r.bytes(32)}; break;
	}
	r.end();
	if (message.type === 'open' && message.role !== Role.source && message.role !== Role.dest) {
		throw new ProtocolError(`open: unknown role ${String(message.role)}`);
	}
	return message;
}

/**
 * Writes optional trailing strings up to the last one set (the earlier ones empty when unset), so a message
 * without them is byte for byte what older agents read.
 */
function trailingStrings(writer: Writer, values: ReadonlyArray<string | undefined>): void {
	let last = values.length - 1;
	while (last >= 0 && !values[last]) {
		last -= 1;
	}
	for (let i = 0; i <= last; i++) {
		writer.string(values[i] ?? '');
	}
}

/** Trailing optional strings, in order, each present only when bytes remain; an empty one is left out (unset). */
function optionalStrings<K extends string>(reader: Reader, ...names: K[]): Partial<Record<K, string>> {
	const found: Partial<Record<K, string>> = {};
	for (const name of names) {
		if (reader.remaining() === 0) {
			break;
		}
		const value = reader.string();
		if (value !== '') {
			found[name] = value;
		}
	}
	return found;
}

function digestList(reader: Reader, name: string): Buffer {
	const digests = reader.rest();
	if (digests.length % SHORT_DIGEST !== 0) {
		throw new ProtocolError(`${name}: digest list of ${digests.length} bytes is not a multiple of ${SHORT_DIGEST}`);
	}
	return digests;
}

/** Counters in wire order (doc/protocol.md, STATS): all ten. */
export function countersTuple(c: Counters): CountersTuple {
	return [c.bytesScanned, c.blocksChanged, c.blocksZero, c.blocksPunched, c.bytesWritten, c.bytesPunched, c.wireBytesSent, c.wireBytesReceived, c.srcBytesRead, c.dstBytesRead];
}

/** The eight counters a peer without Capability.readCounters decodes. */
export function baseCounters(t: CountersTuple): CountersTuple {
	return t.length > BASE_COUNTERS ? t.slice(0, BASE_COUNTERS) : t;
}

/** The inverse of countersTuple; a peer's eight counters read 0 bytes read. */
export function countersFromTuple(t: CountersTuple): Counters {
	const [bytesScanned = 0, blocksChanged = 0, blocksZero = 0, blocksPunched = 0, bytesWritten = 0, bytesPunched = 0, wireBytesSent = 0, wireBytesReceived = 0, srcBytesRead = 0, dstBytesRead = 0] = t;
	return {bytesScanned, blocksChanged, blocksZero, blocksPunched, bytesWritten, bytesPunched, wireBytesSent, wireBytesReceived, srcBytesRead, dstBytesRead};
}
