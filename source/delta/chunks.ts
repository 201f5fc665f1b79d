// Chunk geometry and the tree digests of doc/protocol.md: block digests, sub-chunk and chunk digests over them.
import {firstRangeEndingAfter} from '../blocks/blocks.js';
import {isZero, zeroBuffer} from '../blocks/zero.js';
import {DIGEST_SIZE, type Hasher} from './hash.js';
import type {Image, Range} from '../image/image.js';
import {SHORT_DIGEST} from '../protocol/messages.js';

export type Geometry = {readonly blockSize: number; readonly subSize: number; readonly chunkSize: number};

/** chunk = max(1 MiB, B), sub-chunk = max(64 KiB, B): at most 16 sub-chunks per chunk. */
export function geometryFor(blockSize: number): Geometry {
	return {blockSize, subSize: Math.max(64 * 1024, blockSize), chunkSize: Math.max(1024 * 1024, blockSize)};
}

/** The digests and zero flags of a chunk, kept while its comparison is in flight (8 KiB per 1 MiB chunk). */
export type ChunkSnapshot = {readonly offset: number; readonly length: number; readonly digests: Buffer; readonly zero: Uint8Array};

/** One chunk read and hashed: its bytes, per-block digests and zero flags. Reused from chunk to chunk. */
export class ChunkState {
	offset = 0;
	length = 0;
	blocks = 0;
	/** False after restore(): `data` does not hold this chunk's bytes. */
	dataValid = false;
	readonly data: Buffer;
	/** 32-byte digest of each block. */
	readonly digests: Buffer;
	/** 1 where the block is all zero. */
	readonly zero: Uint8Array;
	private readonly zeroDigests = new Map<number, Buffer>();

	constructor(readonly geometry: Geometry, private readonly hasher: Hasher) {
		const maxBlocks = geometry.chunkSize / geometry.blockSize;
		this.data = Buffer.allocUnsafe(geometry.chunkSize);
		this.digests = Buffer.allocUnsafe(maxBlocks * DIGEST_SIZE);
		this.zero = new Uint8Array(maxBlocks);
	}

	/** Reads [offset, offset+length) of image (holes in `data` are not read) and hashes every block (unless `hash` is false). */
	load(image: Image, data: readonly Range[], offset: number, length: number, hash = true): void {
		const {blockSize} = this.geometry;
		this.offset = offset;
		this.length = length;
		this.blocks = Math.ceil(length / blockSize);
		this.dataValid = true;
		let any = false;
		let cursor = 0;
		for (let index = firstRangeEndingAfter(data, offset); index < data.length; index++) {
			const range = data[index]!;
			if (range.start >= offset + length) {
				break;
			}
			const start = Math.max(range.start, offset);
			const end = Math.min(range.end, offset + length);
			if (start < end) {
				this.data.fill(0, cursor, start - offset);
				image.read(this.data, start - offset, end - start, start);
				cursor = end - offset;
				any = true;
			}
		}
		this.data.fill(0, cursor, length);
		if (!any) {
			// A hole: every block is zero, no hashing needed.
			this.zero.fill(1, 0, this.blocks);
			for (let block = 0; block < this.blocks; block++) {
				this.zeroDigest(Math.min(blockSize, length - block * blockSize)).copy(this.digests, block * DIGEST_SIZE);
			}
			return;
		}
		for (let block = 0; block < this.blocks; block++) {
			const from = block * blockSize;
			this.zero[block] = isZero(this.data, from, Math.min(length, from + blockSize)) ? 1 : 0;
		}
		if (hash) {
			// One call for the whole chunk; zero blocks (holes read as zeros included) are not hashed but get the cached digest.
			this.hasher.hashBlocks(this.data, length, blockSize, this.digests, 0, this.zero);
			for (let block = 0; block < this.blocks; block++) {
				if (this.zero[block]) {
					this.zeroDigest(Math.min(blockSize, length - block * blockSize)).copy(this.digests, block * DIGEST_SIZE);
				}
			}
		}
	}

	/** A copy of the digests and zero flags (not the data). */
	snapshot(): ChunkSnapshot {
		return {
			offset: this.offset,
			length: this.length,
			digests: Buffer.from(this.digests.subarray(0, this.blocks * DIGEST_SIZE)),
			zero: this.zero.slice(0, this.blocks),
		};
	}

	/** Makes this state describe a snapshot again, without its data. */
	restore(snapshot: ChunkSnapshot): void {
		this.offset = snapshot.offset;
		this.length = snapshot.length;
		this.blocks = Math.ceil(snapshot.length / this.geometry.blockSize);
		snapshot.digests.copy(this.digests);
		this.zero.set(snapshot.zero);
		this.dataValid = false;
	}

	/** Whether every block is zero. */
	allZero(): boolean {
		for (let block = 0; block < this.blocks; block++) {
			if (!this.zero[block]) {
				return false;
			}
		}
		return true;
	}

	zeroBlocks(): number {
		let count = 0;
		for (let block = 0; block < this.blocks; block++) {
			count += this.zero[block]!;
		}
		return count;
	}

	/** Full digest of the chunk: H(block digests). */
	chunkDigest(out: Buffer = Buffer.allocUnsafe(DIGEST_SIZE)): Buffer {
		this.hasher.digest(this.digests, this.blocks * DIGEST_SIZE, out, 0);
		return out;
	}

	/** Number of sub-chunks in this chunk. */
	subs(): number {
		return Math.ceil(this.length / this.geometry.subSize);
	}

	/** Block index range [first, end) of sub-chunk i. */
	subBlocks(sub: number): [number, number] {
		const perSub = this.geometry.subSize / this.geometry.blockSize;
		return [sub * perSub, Math.min(this.blocks, (sub + 1) * perSub)];
	}

	/** Truncated sub-chunk digests, concatenated. */
	subDigests(): Buffer {
		const out = Buffer.allocUnsafe(this.subs() * SHORT_DIGEST);
		const full = Buffer.allocUnsafe(DIGEST_SIZE);
		for (let sub = 0; sub < this.subs(); sub++) {
			const [first, end] = this.subBlocks(sub);
			this.hasher.digest(this.digests.subarray(first * DIGEST_SIZE), (end - first) * DIGEST_SIZE, full, 0);
			full.copy(out, sub * SHORT_DIGEST, 0, SHORT_DIGEST);
		}
		return out;
	}

	/** Truncated block digests of the sub-chunks in mask, in order. */
	blockDigests(mask: number): Buffer {
		const parts: Buffer[] = [];
		for (let sub = 0; sub < this.subs(); sub++) {
			if (mask & (1 << sub)) {
				const [first, end] = this.subBlocks(sub);
				for (let block = first; block < end; block++) {
					parts.push(this.digests.subarray(block * DIGEST_SIZE, block * DIGEST_SIZE + SHORT_DIGEST));
				}
			}
		}
		return Buffer.concat(parts);
	}

	/** Whether sub-chunk i is all zero. */
	subZero(sub: number): boolean {
		const [first, end] = this.subBlocks(sub);
		for (let block = first; block < end; block++) {
			if (!this.zero[block]) {
				return false;
			}
		}
		return true;
	}

	/** The digest of `length` zero bytes (cached). */
	zeroDigest(length: number): Buffer {
		let digest = this.zeroDigests.get(length);
		if (!digest) {
			digest = Buffer.allocUnsafe(DIGEST_SIZE);
			this.hasher.digest(zeroBuffer(length), length, digest, 0);
			this.zeroDigests.set(length, digest);
		}
		return digest;
	}
}
