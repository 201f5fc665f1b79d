// DEST's digest cache, the byte layout only (doc/protocol.md, "DEST's digest cache"): a header binding the
// digests to DST's identity, then one fixed-size record per chunk. Never opens a file: callers pass buffers.
import {DIGEST_SIZE, type Hasher, type HashName} from './hash.js';
import {type Geometry, geometryFor} from './chunks.js';
import {SHORT_DIGEST} from '../protocol/messages.js';
import {KEY_SIZE, type KeyedDigests} from './keyed.js';

/** The cache may take at most this share of the image's size on disk (issue 9). */
export const CACHE_BUDGET = 0.0025;
/** Bytes before the first record: the header, zero-padded (records start page-aligned). */
export const HEADER_SIZE = 4096;
const MAGIC = Buffer.from('RBSDIGC1', 'latin1');
const FORMAT_VERSION = 2;
/** Where the cache's key sits in the header (its last KEY_SIZE bytes). */
export const KEY_OFFSET = HEADER_SIZE - KEY_SIZE;
const HASH_CODE: Record<HashName, number> = {blake3: 1, sha256: 2};

/** What a cache is about: the image it describes and who it belongs to. */
export type CacheHeader = {
	readonly hash: HashName;
	readonly blockSize: number;
	/** Bytes of DST the records cover (SRC's size in the run that wrote them). */
	readonly size: number;
	/** DST's identity after that run's final fdatasync (file: dev:ino:size:mtime:ctime in ns; device: its stable ids). */
	readonly dstIdentity: string;
	/** SRC's quick-check stamp in that run (file: dev:ino:size:mtime:ctime in ns), empty when SRC was not a file. */
	readonly srcStamp: string;
	/** The cache's secret: its block and sub-chunk digests are keyed with it (delta/keyed.ts). */
	readonly key: Buffer;
};

/** A header as a run asks for it (the key comes from the cache file). */
export type WantedHeader = Omit<CacheHeader, 'key'>;

/** Where each chunk's record lives, for an image size and block size. */
export type CacheLayout = {
	readonly geometry: Geometry;
	readonly size: number;
	readonly chunks: number;
	/** Sub-chunks and blocks of a whole chunk. */
	readonly subsPerChunk: number;
	readonly blocksPerChunk: number;
	/** chunk digest (32) + 8 per sub-chunk + 8 per block. */
	readonly recordSize: number;
	readonly fileSize: number;
};

/** One chunk as the cache knows it: its digest (null: not known, the chunk is compared below it) and truncated digests. */
export type CachedChunk = {
	chunkDigest: Buffer | null;
	/** SHORT_DIGEST bytes per sub-chunk: the keyed digest of its blocks' keyed digests. */
	readonly subs: Buffer;
	/** SHORT_DIGEST bytes per block: the keyed digest of the full block digest. */
	readonly blocks: Buffer;
};

const UNKNOWN_CHUNK = Buffer.alloc(DIGEST_SIZE);

/** A header or record that cannot be used, with the reason the summary gives ("stale: <reason>"). */
export class CacheFormatError extends Error {}

/** The layout for `size` bytes at `blockSize`, or a reason when the cache would exceed CACHE_BUDGET (blocks under 4 KiB). */
export function cacheLayout(size: number, blockSize: number): CacheLayout | string {
	const geometry = geometryFor(blockSize);
	const subsPerChunk = geometry.chunkSize / geometry.subSize;
	const blocksPerChunk = geometry.chunkSize / geometry.blockSize;
	const recordSize = DIGEST_SIZE + SHORT_DIGEST * (subsPerChunk + blocksPerChunk);
	if (recordSize > geometry.chunkSize * CACHE_BUDGET) {
		return `block size ${blockSize} needs ${(recordSize / geometry.chunkSize * 100).toFixed(2)}% of the image, more than 0.25%`;
	}
	const chunks = Math.ceil(size / geometry.chunkSize);
	return {geometry, size, chunks, subsPerChunk, blocksPerChunk, recordSize, fileSize: HEADER_SIZE + chunks * recordSize};
}

/** The byte position of the record of the chunk starting at `offset` (a multiple of the chunk size). */
export function recordPosition(layout: CacheLayout, offset: number): number {
	if (offset % layout.geometry.chunkSize !== 0 || offset < 0 || offset >= layout.size) {
		throw new RangeError(`offset ${offset} does not start a chunk of a ${layout.size}-byte image`);
	}
	return HEADER_SIZE + (offset / layout.geometry.chunkSize) * layout.recordSize;
}

/** The records of the chunks overlapping [start, end) as [position, length] in the file: what one worker reads or writes. */
export function recordSpan(layout: CacheLayout, start: number, end: number): {position: number; length: number; firstChunk: number} {
	const {chunkSize} = layout.geometry;
	const firstChunk = Math.floor(start / chunkSize);
	const lastChunk = Math.min(layout.chunks, Math.ceil(Math.min(end, layout.size) / chunkSize));
	const count = Math.max(0, lastChunk - firstChunk);
	return {position: HEADER_SIZE + firstChunk * layout.recordSize, length: count * layout.recordSize, firstChunk};
}

/** The header bytes (HEADER_SIZE). */
export function encodeHeader(header: CacheHeader): Buffer {
	const out = Buffer.alloc(HEADER_SIZE);
	MAGIC.copy(out, 0);
	out.writeUInt16BE(FORMAT_VERSION, 8);
	out.writeUInt8(HASH_CODE[header.hash], 10);
	out.writeUInt32BE(header.blockSize, 12);
	out.writeBigUInt64BE(BigInt(header.size), 16);
	let at = 24;
	for (const text of [header.dstIdentity, header.srcStamp]) {
		const bytes = Buffer.from(text, 'utf8');
		if (at + 2 + bytes.length > HEADER_SIZE) {
			throw new RangeError('cache header strings are too long');
		}
		out.writeUInt16BE(bytes.length, at);
		bytes.copy(out, at + 2);
		at += 2 + bytes.length;
	}
	if (at > KEY_OFFSET) {
		throw new RangeError('cache header strings are too long');
	}
	header.key.copy(out, KEY_OFFSET);
	return out;
}

/** The header in the first HEADER_SIZE bytes; throws CacheFormatError naming what is wrong. */
export function decodeHeader(bytes: Buffer): CacheHeader {
	if (bytes.length < HEADER_SIZE || !bytes.subarray(0, 8).equals(MAGIC)) {
		throw new CacheFormatError('not a digest cache');
	}
	const version = bytes.readUInt16BE(8);
	if (version !== FORMAT_VERSION) {
		throw new CacheFormatError(`cache format ${version}, not ${FORMAT_VERSION}`);
	}
	const code = bytes.readUInt8(10);
	const hash = (Object.keys(HASH_CODE) as HashName[]).find(name => HASH_CODE[name] === code);
	if (!hash) {
		throw new CacheFormatError(`unknown hash code ${code}`);
	}
	const blockSize = bytes.readUInt32BE(12);
	const size = Number(bytes.readBigUInt64BE(16));
	const strings: string[] = [];
	let at = 24;
	for (let i = 0; i < 2; i++) {
		const length = bytes.readUInt16BE(at);
		if (at + 2 + length > KEY_OFFSET) {
			throw new CacheFormatError('damaged header');
		}
		strings.push(bytes.toString('utf8', at + 2, at + 2 + length));
		at += 2 + length;
	}
	return {hash, blockSize, size, dstIdentity: strings[0]!, srcStamp: strings[1]!, key: Buffer.from(bytes.subarray(KEY_OFFSET, HEADER_SIZE))};
}

/**
 * Why a cache with `found` header cannot stand for DST now (`wanted`), or undefined when it can. The reasons
 * end up in the summary as "stale: <reason>".
 */
export function staleReason(found: CacheHeader, wanted: WantedHeader, fileSize: number): string | undefined {
	if (found.hash !== wanted.hash) {
		return `made with ${found.hash}, this run uses ${wanted.hash}`;
	}
	if (found.blockSize !== wanted.blockSize) {
		return `made with block size ${found.blockSize}, this run uses ${wanted.blockSize}`;
	}
	if (found.size !== wanted.size) {
		return `made for ${found.size} bytes, SRC has ${wanted.size}`;
	}
	if (found.dstIdentity !== wanted.dstIdentity) {
		return 'DST changed since the cache was made (another file, or written by someone else)';
	}
	const layout = cacheLayout(found.size, found.blockSize);
	if (typeof layout === 'string' || layout.fileSize !== fileSize) {
		return 'the cache file is truncated or damaged';
	}
	return undefined;
}

/** The record of the chunk at `index` of `records` (records of consecutive chunks, from recordSpan). */
export function readRecord(layout: CacheLayout, records: Buffer, index: number, length: number): CachedChunk {
	const {geometry} = layout;
	const base = index * layout.recordSize;
	const subs = Math.ceil(length / geometry.subSize);
	const blocks = Math.ceil(length / geometry.blockSize);
	const digest = records.subarray(base, base + DIGEST_SIZE);
	const subsAt = base + DIGEST_SIZE;
	const blocksAt = subsAt + layout.subsPerChunk * SHORT_DIGEST;
	return {
		chunkDigest: digest.equals(UNKNOWN_CHUNK) ? null : Buffer.from(digest),
		subs: Buffer.from(records.subarray(subsAt, subsAt + subs * SHORT_DIGEST)),
		blocks: Buffer.from(records.subarray(blocksAt, blocksAt + blocks * SHORT_DIGEST)),
	};
}

/** Writes `chunk` as the record at `index` of `records`; unused slots of a short last chunk are zero. */
export function writeRecord(layout: CacheLayout, records: Buffer, index: number, chunk: CachedChunk): void {
	const base = index * layout.recordSize;
	records.fill(0, base, base + layout.recordSize);
	(chunk.chunkDigest ?? UNKNOWN_CHUNK).copy(records, base);
	chunk.subs.copy(records, base + DIGEST_SIZE);
	chunk.blocks.copy(records, base + DIGEST_SIZE + layout.subsPerChunk * SHORT_DIGEST);
}

/** The record of a chunk whose full block digests are known (`digests`: 32 bytes per block): everything in it is exact. */
export function chunkFromDigests(keyed: KeyedDigests, hasher: Hasher, geometry: Geometry, length: number, digests: Buffer): CachedChunk {
	const blocks = Math.ceil(length / geometry.blockSize);
	const chunkDigest = Buffer.allocUnsafe(DIGEST_SIZE);
	hasher.digest(digests, blocks * DIGEST_SIZE, chunkDigest, 0);
	return {chunkDigest, ...keyed.chunk(digests, blocks)};
}

/** DEST's digest cache for one worker's range, asked chunk by chunk in the order of the image (so a file can be streamed). */
export interface RangeCache {
	/** The cache's key: every record is keyed with it. */
	readonly key: Buffer;
	/** What the cache says DST holds at the chunk; undefined: no usable cache there, DST is read. */
	known(offset: number, length: number): CachedChunk | undefined;
	/** What DST holds at the chunk now that the session is done with it (kept only if the whole run succeeds). */
	record(offset: number, length: number, chunk: CachedChunk): void;
}

/** A RangeCache over records in memory (`records`: the consecutive records of recordSpan, or undefined to only build). */
export class MemoryRangeCache implements RangeCache {
	readonly records: Buffer;
	private readonly firstChunk: number;

	constructor(private readonly layout: CacheLayout, start: number, end: number, private readonly usable: Buffer | undefined, readonly key: Buffer) {
		const span = recordSpan(layout, start, end);
		this.firstChunk = span.firstChunk;
		this.records = Buffer.alloc(span.length);
	}

	known(offset: number, length: number): CachedChunk | undefined {
		return this.usable && readRecord(this.layout, this.usable, this.indexOf(offset), length);
	}

	record(offset: number, _length: number, chunk: CachedChunk): void {
		writeRecord(this.layout, this.records, this.indexOf(offset), chunk);
	}

	private indexOf(offset: number): number {
		return (recordPosition(this.layout, offset) - HEADER_SIZE) / this.layout.recordSize - this.firstChunk;
	}
}
