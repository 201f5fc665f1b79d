import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {createHasher} from '../../source/delta/hash.js';
import {ChunkState, geometryFor} from '../../source/delta/chunks.js';
import {MemoryImage} from '../../source/image/memory-image.js';
import {KeyedDigests, newKey} from '../../source/delta/keyed.js';
import {
	CACHE_BUDGET, type CacheHeader, cacheLayout, CacheFormatError, chunkFromDigests, decodeHeader, encodeHeader, HEADER_SIZE,
	readRecord, recordPosition, recordSpan, staleReason, writeRecord, type CacheLayout,
} from '../../source/delta/digest-cache.js';

const MiB = 1024 * 1024;
const header: CacheHeader = {hash: 'blake3', blockSize: 4096, size: 5 * MiB + 1234, dstIdentity: 'file:2049:77:5244114:1:2', srcStamp: 'src:1:2:3:4:5', key: newKey()};

function layoutOf(size: number, blockSize: number): CacheLayout {
	const layout = cacheLayout(size, blockSize);
	if (typeof layout === 'string') {
		throw new Error(layout);
	}
	return layout;
}

const format = suite('digest cache format');

format('should stay within 0.25% of the image for every block size from 4 KiB, and refuse smaller ones with the reason', () => {
	for (let blockSize = 4096; blockSize <= 16 * MiB; blockSize *= 2) {
		for (const size of [1, blockSize - 1, MiB + 1, 7 * MiB + 4097, 1024 * MiB]) {
			const layout = layoutOf(size, blockSize);
			const chunkBytes = layout.chunks * layout.geometry.chunkSize;
			assert.ok(layout.chunks * layout.recordSize <= chunkBytes * CACHE_BUDGET, `${blockSize} ${size}`);
			assert.is(layout.fileSize, HEADER_SIZE + layout.chunks * layout.recordSize);
		}
	}
	assert.is(cacheLayout(MiB, 2048), 'block size 2048 needs 0.41% of the image, more than 0.25%');
	assert.type(cacheLayout(MiB, 512), 'string');
});

format('should round-trip a header, and name what is wrong with a damaged one', () => {
	const bytes = encodeHeader(header);
	assert.is(bytes.length, HEADER_SIZE);
	assert.equal(decodeHeader(bytes), header);
	assert.equal(decodeHeader(encodeHeader({...header, hash: 'sha256', srcStamp: ''})), {...header, hash: 'sha256', srcStamp: ''});
	assert.throws(() => decodeHeader(bytes.subarray(0, 100)), (error: unknown) => error instanceof CacheFormatError && error.message === 'not a digest cache');
	const other = Buffer.from(bytes);
	other.writeUInt16BE(9, 8);
	assert.throws(() => decodeHeader(other), /cache format 9, not 2/);
	const badHash = Buffer.from(bytes);
	badHash.writeUInt8(7, 10);
	assert.throws(() => decodeHeader(badHash), /unknown hash code 7/);
});

format('should say why a cache is stale: hash, block size, size, identity, file size', () => {
	const size = layoutOf(header.size, header.blockSize).fileSize;
	assert.is(staleReason(header, header, size), undefined);
	assert.is(staleReason(header, {...header, hash: 'sha256'}, size), 'made with blake3, this run uses sha256');
	assert.is(staleReason(header, {...header, blockSize: 8192}, size), 'made with block size 4096, this run uses 8192');
	assert.is(staleReason(header, {...header, size: 99}, size), `made for ${header.size} bytes, SRC has 99`);
	assert.is(staleReason(header, {...header, dstIdentity: 'file:2049:78:5244114:1:2'}, size), 'DST changed since the cache was made (another file, or written by someone else)');
	assert.is(staleReason(header, header, size - 1), 'the cache file is truncated or damaged');
});

format('should place each chunk record at a fixed position and give each worker range its span', () => {
	const layout = layoutOf(9 * MiB + 3, 4096);
	assert.is(layout.chunks, 10);
	assert.is(recordPosition(layout, 0), HEADER_SIZE);
	assert.is(recordPosition(layout, 4 * MiB), HEADER_SIZE + 4 * layout.recordSize);
	assert.throws(() => recordPosition(layout, 4096), RangeError);
	assert.throws(() => recordPosition(layout, 10 * MiB), RangeError);
	assert.equal(recordSpan(layout, 4 * MiB, 8 * MiB), {position: HEADER_SIZE + 4 * layout.recordSize, length: 4 * layout.recordSize, firstChunk: 4});
	assert.equal(recordSpan(layout, 8 * MiB, 12 * MiB), {position: HEADER_SIZE + 8 * layout.recordSize, length: 2 * layout.recordSize, firstChunk: 8});
	assert.is(recordSpan(layout, 12 * MiB, 16 * MiB).length, 0);
});

format('should round-trip records of whole and short chunks, an unknown chunk digest as null', async () => {
	const hasher = await createHasher('blake3');
	for (const blockSize of [4096, 65536, 2 * MiB]) {
		const geometry = geometryFor(blockSize);
		const keyed = new KeyedDigests(hasher, newKey(), geometry);
		const size = 2 * geometry.chunkSize + blockSize + 517;
		const layout = layoutOf(size, blockSize);
		const content = randomBytes(size);
		const image = MemoryImage.from('dst', content);
		const records = Buffer.alloc(layout.chunks * layout.recordSize);
		const state = new ChunkState(geometry, hasher);
		const expected = [];
		for (let index = 0; index < layout.chunks; index++) {
			const offset = index * geometry.chunkSize;
			const length = Math.min(geometry.chunkSize, size - offset);
			state.load(image, [{start: 0, end: size}], offset, length);
			const chunk = chunkFromDigests(keyed, hasher, geometry, length, state.digests);
			// The record's chunk digest is the protocol's chunk digest; its block and sub-chunk digests are keyed.
			assert.ok(chunk.chunkDigest!.equals(state.chunkDigest()));
			const blocks = Math.ceil(length / blockSize);
			assert.ok(chunk.blocks.equals(keyed.chunk(state.digests, blocks).blocks));
			assert.ok(!chunk.blocks.equals(state.blockDigests(0xffff)), 'keyed block digests are not the plain ones');
			assert.ok(chunk.subs.equals(keyed.subs(chunk.blocks, blocks)));
			assert.ok(!chunk.subs.equals(state.subDigests()));
			if (index === 1) {
				chunk.chunkDigest = null;
			}
			writeRecord(layout, records, index, chunk);
			expected.push({chunk, length});
		}
		expected.forEach(({chunk, length}, index) => {
			assert.equal(readRecord(layout, records, index, length), chunk, `block size ${blockSize} chunk ${index}`);
		});
	}
});

format.run();
