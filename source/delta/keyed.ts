// Keyed truncated digests (doc/protocol.md, "DEST's digest cache"): with a secret key of DEST's digest cache, a block's
// 8-byte digest is the first bytes of H(key || its full digest) and a sub-chunk's those of H(key || its blocks' keyed
// digests). Nobody without the key can make two different blocks with equal keyed digests, so a cache that stores only
// these lets DEST trust an equal one without reading the block back.
import {randomBytes} from 'node:crypto';
import {DIGEST_SIZE, type Hasher} from './hash.js';
import type {Geometry} from './chunks.js';
import {SHORT_DIGEST} from '../protocol/messages.js';

/** Bytes of a cache's key (the KEY frame's payload). */
export const KEY_SIZE = 32;

/** A fresh key for a new cache. */
export function newKey(): Buffer {
	return randomBytes(KEY_SIZE);
}

/** Keyed block and sub-chunk digests of one chunk at a time; no allocation per call after the first. */
export class KeyedDigests {
	/** key || digest, one 64-byte message per block, hashed in one call. */
	private readonly pairs: Buffer;
	private readonly full: Buffer;
	/** key || up to one sub-chunk of keyed block digests. */
	private readonly subInput: Buffer;
	private readonly subFull = Buffer.allocUnsafe(DIGEST_SIZE);
	private readonly perSub: number;

	constructor(private readonly hasher: Hasher, readonly key: Buffer, private readonly geometry: Geometry) {
		const maxBlocks = geometry.chunkSize / geometry.blockSize;
		this.perSub = geometry.subSize / geometry.blockSize;
		this.pairs = Buffer.allocUnsafe(maxBlocks * 2 * DIGEST_SIZE);
		for (let block = 0; block < maxBlocks; block++) {
			key.copy(this.pairs, block * 2 * DIGEST_SIZE);
		}
		this.full = Buffer.allocUnsafe(maxBlocks * DIGEST_SIZE);
		this.subInput = Buffer.allocUnsafe(KEY_SIZE + this.perSub * SHORT_DIGEST);
		key.copy(this.subInput, 0);
	}

	/** The keyed 8-byte digests of `count` blocks from their full digests (`digests` from `first`), into `out` at `outAt`. */
	blocks(digests: Buffer, first: number, count: number, out: Buffer, outAt: number): void {
		// Byte loops, not a Buffer.copy per block: 512 calls into the runtime per chunk cost more than the hashing.
		const pairs = this.pairs;
		for (let block = 0; block < count; block++) {
			const from = (first + block) * DIGEST_SIZE;
			const to = block * 2 * DIGEST_SIZE + KEY_SIZE;
			for (let byte = 0; byte < DIGEST_SIZE; byte++) {
				pairs[to + byte] = digests[from + byte]!;
			}
		}
		this.hasher.hashBlocks(pairs, count * 2 * DIGEST_SIZE, 2 * DIGEST_SIZE, this.full, 0);
		const full = this.full;
		for (let block = 0; block < count; block++) {
			const from = block * DIGEST_SIZE;
			const to = outAt + block * SHORT_DIGEST;
			for (let byte = 0; byte < SHORT_DIGEST; byte++) {
				out[to + byte] = full[from + byte]!;
			}
		}
	}

	/** The keyed digest of one block from its full digest. */
	block(digest: Buffer): Buffer {
		const out = Buffer.allocUnsafe(SHORT_DIGEST);
		this.blocks(digest, 0, 1, out, 0);
		return out;
	}

	/** The keyed sub-chunk digests of a chunk of `blocks` blocks from its keyed block digests (`keyedBlocks`), into `out`. */
	subs(keyedBlocks: Buffer, blocks: number, out: Buffer = Buffer.allocUnsafe(Math.ceil(blocks / this.perSub) * SHORT_DIGEST)): Buffer {
		for (let sub = 0; sub * this.perSub < blocks; sub++) {
			this.sub(keyedBlocks, blocks, sub, out);
		}
		return out;
	}

	/** Writes sub-chunk `sub`'s keyed digest into `out` (at sub * 8). */
	sub(keyedBlocks: Buffer, blocks: number, sub: number, out: Buffer): void {
		const first = sub * this.perSub;
		const count = Math.min(blocks, first + this.perSub) - first;
		keyedBlocks.copy(this.subInput, KEY_SIZE, first * SHORT_DIGEST, (first + count) * SHORT_DIGEST);
		this.hasher.digest(this.subInput, KEY_SIZE + count * SHORT_DIGEST, this.subFull, 0);
		this.subFull.copy(out, sub * SHORT_DIGEST, 0, SHORT_DIGEST);
	}

	/** Keyed block digests (all blocks) and sub-chunk digests of a chunk from its full block digests. */
	chunk(digests: Buffer, blocks: number): {blocks: Buffer; subs: Buffer} {
		const keyed = Buffer.allocUnsafe(blocks * SHORT_DIGEST);
		this.blocks(digests, 0, blocks, keyed, 0);
		return {blocks: keyed, subs: this.subs(keyed, blocks)};
	}
}
