// Keyed truncated digests (delta/keyed.ts) against their definition: a block's is the first 8 bytes of
// H(key || its full digest), a sub-chunk's those of H(key || its blocks' keyed digests); a cache written by one
// version is read by the next, so the bytes themselves are pinned here, not only their consistency.
import {randomBytes} from 'node:crypto';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {geometryFor} from '../../source/delta/chunks.js';
import {createHasher, DIGEST_SIZE} from '../../source/delta/hash.js';
import {KeyedDigests, newKey} from '../../source/delta/keyed.js';
import {SHORT_DIGEST} from '../../source/protocol/messages.js';

const keyed = suite('keyed digests');

keyed('should give each block H(key || digest) and each sub-chunk H(key || its blocks\' keyed digests), truncated', async () => {
	for (const name of ['blake3', 'sha256'] as const) {
		const hasher = await createHasher(name);
		const geometry = geometryFor(4096);
		const key = newKey();
		const digests = new KeyedDigests(hasher, key, geometry);
		const blocks = geometry.chunkSize / geometry.blockSize - 3; // a short last chunk: a partial last sub-chunk
		const full = randomBytes(blocks * DIGEST_SIZE);
		const {blocks: keyedBlocks, subs} = digests.chunk(full, blocks);
		const one = Buffer.alloc(DIGEST_SIZE);
		for (let block = 0; block < blocks; block++) {
			hasher.digest(Buffer.concat([key, full.subarray(block * DIGEST_SIZE, (block + 1) * DIGEST_SIZE)]), 2 * DIGEST_SIZE, one, 0);
			assert.ok(keyedBlocks.subarray(block * SHORT_DIGEST, (block + 1) * SHORT_DIGEST).equals(one.subarray(0, SHORT_DIGEST)), `${name}: block ${block}`);
		}
		const perSub = geometry.subSize / geometry.blockSize;
		for (let sub = 0; sub * perSub < blocks; sub++) {
			const input = Buffer.concat([key, keyedBlocks.subarray(sub * perSub * SHORT_DIGEST, Math.min(blocks, (sub + 1) * perSub) * SHORT_DIGEST)]);
			hasher.digest(input, input.length, one, 0);
			assert.ok(subs.subarray(sub * SHORT_DIGEST, (sub + 1) * SHORT_DIGEST).equals(one.subarray(0, SHORT_DIGEST)), `${name}: sub-chunk ${sub}`);
		}
		// From the middle of a digest array, into the middle of an output: the offsets count.
		const out = Buffer.alloc(4 * SHORT_DIGEST + 5);
		digests.blocks(full, 7, 4, out, 5);
		assert.ok(out.subarray(5).equals(keyedBlocks.subarray(7 * SHORT_DIGEST, 11 * SHORT_DIGEST)));
	}
});

keyed.run();
