import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {MemoryImage} from '../../source/image/memory-image.js';
import {syncPair} from '../helpers/roles-pair.js';
import {chunksOf, intersectRanges} from '../../source/delta/source-role.js';
import type {Hasher} from '../../source/delta/hash.js';
import {DATA_BUDGET, type Message, WIDE_CREDIT_WINDOW} from '../../source/protocol/messages.js';
import {DestRole} from '../../source/delta/dest-role.js';
import {ChunkState, geometryFor} from '../../source/delta/chunks.js';
import {createHasher} from '../../source/delta/hash.js';

const test = suite('SourceRole + DestRole');
const MiB = 1024 * 1024;

/** Random data with zero runs and a hole, of an odd size. */
function sample(size: number): Buffer {
	const data = randomBytes(size);
	data.fill(0, 4096 * 3, 4096 * 40);
	data.fill(0, 2 * MiB, 3 * MiB + 512);
	return data;
}

test('should make DST equal to SRC from an empty DST, keeping zero ranges as holes', async () => {
	const content = sample(5 * MiB + 1234);
	const src = MemoryImage.from('src', content);
	const dst = new MemoryImage('dst', content.length);
	const {counters} = await syncPair(src, dst, dst);
	assert.ok(dst.content.equals(content));
	assert.is(counters.bytesScanned, content.length);
	assert.is(counters.blocksPunched, 0);
	assert.ok(dst.allocatedBytes <= src.allocatedBytes);
});

test('should not hash SOURCE at all for an empty DST or --copy (no digest is used)', async () => {
	const content = sample(5 * MiB + 1234);
	for (const copy of [false, true]) {
		const dst = copy ? MemoryImage.from('dst', randomBytes(content.length)) : new MemoryImage('dst', content.length);
		let hashed = 0;
		const counting = (hasher: Hasher): Hasher => ({
			...hasher,
			hashBlocks(...args: Parameters<Hasher['hashBlocks']>) {
				hashed += 1;
				return hasher.hashBlocks(...args);
			},
			digest(...args: Parameters<Hasher['digest']>) {
				hashed += 1;
				hasher.digest(...args);
			},
		});
		await syncPair(MemoryImage.from('src', content), dst, dst, {copy, sourceHasher: counting});
		assert.ok(dst.content.equals(content), `copy ${copy}`);
		assert.is(hashed, 0, `copy ${copy}: SOURCE hashed ${hashed} times`);
	}
});

test('should cost under 0.1% of the image on the wire when nothing changed', async () => {
	const content = sample(32 * MiB);
	const src = MemoryImage.from('src', content);
	const dst = MemoryImage.from('dst', content);
	const {counters, toDest, toSource} = await syncPair(src, dst, dst);
	assert.is(counters.blocksChanged, 0);
	assert.ok(toDest + toSource < content.length * 0.001, `${toDest + toSource} bytes`);
});

test('should send at most 1.1x the changed bytes plus a constant for scattered changes', async () => {
	const content = sample(32 * MiB);
	const src = MemoryImage.from('src', content);
	const changed = Buffer.from(content);
	let blocks = 0;
	for (let block = 5; block < changed.length / 4096; block += 97) {
		changed.fill(0xaa, block * 4096, block * 4096 + 100);
		blocks += 1;
	}
	const dst = MemoryImage.from('dst', changed);
	const {counters, toDest, toSource} = await syncPair(src, dst, dst);
	assert.ok(dst.content.equals(content));
	assert.is(counters.blocksChanged, blocks);
	const budget = 1.1 * blocks * 4096 + 32 * 64 + 4096;
	assert.ok(toDest + toSource <= budget, `${toDest + toSource} > ${budget}`);
});

test('should punch DST blocks that became zero on SRC, and count them', async () => {
	const content = sample(4 * MiB);
	const dstContent = randomBytes(content.length);
	const src = MemoryImage.from('src', content);
	const dst = MemoryImage.from('dst', dstContent);
	const {counters} = await syncPair(src, dst, dst);
	assert.ok(dst.content.equals(content));
	assert.ok(counters.blocksPunched > 0);
	assert.ok(dst.allocatedBytes < content.length);
});

test('should count without writing in a dry run, and copy with --copy', async () => {
	const content = sample(3 * MiB + 4099);
	const src = MemoryImage.from('src', content);
	const dst = new MemoryImage('dst', content.length);
	dst.write(randomBytes(8192), 0, 8192, 2 * MiB + 4096);
	const before = Buffer.from(dst.content);
	const dry = await syncPair(src, dst, undefined, {dryRun: true});
	assert.ok(dst.content.equals(before));
	assert.ok(dry.counters.blocksChanged > 0);
	const copied = await syncPair(src, new MemoryImage('x', content.length), undefined, {copy: true});
	assert.is(copied.counters.bytesScanned, content.length);
	const fresh = new MemoryImage('fresh', content.length);
	await syncPair(src, fresh, fresh, {copy: true});
	assert.ok(fresh.content.equals(content));
});

test('should sync with sha256, odd block sizes, compression and a sub-range', async () => {
	for (const blockSize of [512, 65_536, 2 * MiB]) {
		const content = sample(5 * MiB + 999);
		const src = MemoryImage.from('src', content);
		const dst = MemoryImage.from('dst', randomBytes(content.length));
		await syncPair(src, dst, dst, {blockSize, hash: 'sha256', compress: 1});
		assert.ok(dst.content.equals(content), `block size ${blockSize}`);
	}
	const content = Buffer.alloc(8 * MiB, 'compressible text ');
	const src = MemoryImage.from('src', content);
	const dst = new MemoryImage('dst', content.length);
	const {toDest} = await syncPair(src, dst, dst, {compress: 6, start: 4 * MiB, end: 8 * MiB});
	assert.ok(dst.content.subarray(4 * MiB).equals(content.subarray(4 * MiB)));
	assert.ok(dst.content.subarray(0, 4 * MiB).every(b => b === 0));
	assert.ok(toDest < MiB, `${toDest}`);
});

test('should ask for the whole chunk when the re-check fails, and give up when SRC keeps changing', async () => {
	const content = sample(4 * MiB);
	const src = MemoryImage.from('src', content);
	const dst = MemoryImage.from('dst', content);
	dst.write(Buffer.alloc(4096, 1), 0, 4096, 8192);
	// SRC changes after its digests were taken: the data sent no longer matches the chunk digest.
	let reads = 0;
	const changing = Object.create(src) as MemoryImage;
	changing.read = (buffer, offset, length, position) => {
		src.read(buffer, offset, length, position);
		if (++reads > 1 && position <= 8202 && position + length > 8202) {
			buffer[offset + 8202 - position]! ^= 0xff;
		}
	};
	try {
		await syncPair(changing, dst, dst);
		assert.unreachable();
	} catch (error) {
		assert.match((error as Error).message, /the chunk at offset 0 still differs from SRC after rewriting it/);
	}
});

test('should sync in a wide session with one answer per changed chunk (BLOCKS unasked, no SUBS or WANT), credit per chunk', async () => {
	const content = sample(32 * MiB);
	const changed = Buffer.from(content);
	let blocks = 0;
	for (let block = 5; block < changed.length / 4096; block += 97) {
		changed.fill(0xaa, block * 4096, block * 4096 + 100);
		blocks += 1;
	}
	// A block SRC holds as zeros: it must be punched, not sent.
	changed.fill(0x11, 2 * MiB + 8192, 2 * MiB + 12_288);
	blocks += 1;
	const seen = new Map<string, number>();
	const dst = MemoryImage.from('dst', changed);
	const {counters, toDest, toSource} = await syncPair(MemoryImage.from('src', content), dst, dst, {wide: true, observe: (from, message) => {
		seen.set(`${from} ${message.type}`, (seen.get(`${from} ${message.type}`) ?? 0) + 1);
	}});
	assert.ok(dst.content.equals(content));
	assert.is(counters.blocksChanged, blocks);
	assert.ok(counters.blocksPunched >= 1);
	assert.is(seen.get('dest subs'), undefined);
	assert.is(seen.get('source want'), undefined);
	assert.is(seen.get('source chunk'), undefined);
	// Every data chunk goes as CHUNK_SUBS; every one of them differs here, and each gets one BLOCKS.
	const chunks = seen.get('source chunkSubs') ?? 0;
	assert.ok(chunks >= 30, `${chunks} CHUNK_SUBS`);
	assert.is(seen.get('dest blocks'), chunks);
	assert.ok((seen.get('dest credit') ?? 0) >= chunks, `${seen.get('dest credit')} CREDIT for ${chunks} chunks`);
	// 128 bytes of sub-chunk digests per chunk more than CHUNK, no SUBS back (141 bytes) nor WANT (17): still about the changed bytes.
	const budget = 1.1 * blocks * 4096 + 32 * 64 + 4096;
	assert.ok(toDest + toSource <= budget, `${toDest + toSource} > ${budget}`);
	// An unchanged image: CHUNK_SUBS and CREDIT only, still under 0.1% of it.
	const same = MemoryImage.from('same', content);
	const unchanged = await syncPair(MemoryImage.from('src', content), same, same, {wide: true});
	assert.is(unchanged.counters.blocksChanged, 0);
	assert.ok(unchanged.toDest + unchanged.toSource < content.length * 0.001, `${unchanged.toDest + unchanged.toSource} bytes`);
});

test('should sync in a wide session with odd block sizes, sha256, a sub-range, a dry run, and the FULL re-check', async () => {
	for (const blockSize of [512, 65_536, 2 * MiB]) {
		const content = sample(5 * MiB + 999);
		const dst = MemoryImage.from('dst', randomBytes(content.length));
		await syncPair(MemoryImage.from('src', content), dst, dst, {blockSize, hash: 'sha256', wide: true, start: blockSize === 512 ? MiB : 0});
		assert.ok(dst.content.subarray(blockSize === 512 ? MiB : 0).equals(content.subarray(blockSize === 512 ? MiB : 0)), `block size ${blockSize}`);
	}
	const content = sample(3 * MiB + 4099);
	const dst = MemoryImage.from('dst', content);
	dst.write(randomBytes(8192), 0, 8192, MiB + 4096);
	const before = Buffer.from(dst.content);
	const dry = await syncPair(MemoryImage.from('src', content), dst, undefined, {dryRun: true, wide: true});
	assert.ok(dst.content.equals(before));
	assert.is(dry.counters.blocksChanged, 2);
	// SRC changing under the sync: the re-check asks FULL, then gives up.
	const src = MemoryImage.from('src', content);
	let reads = 0;
	const changing = Object.create(src) as MemoryImage;
	changing.read = (buffer, offset, length, position) => {
		src.read(buffer, offset, length, position);
		if (position <= MiB + 4106 && position + length > MiB + 4106 && ++reads > 1) {
			buffer[offset + MiB + 4106 - position]! ^= 0xff;
		}
	};
	try {
		await syncPair(changing, MemoryImage.from('dst', before), undefined, {wide: true});
		assert.unreachable();
	} catch (error) {
		assert.match((error as Error).message, /the chunk at offset 1048576 still differs from SRC after rewriting it/, String(error));
	}
});

test('should bound the data DEST asks for in a wide session by DATA_BUDGET, answering later chunks in order as earlier ones complete', async () => {
	// 48 chunks, each wholly different: each BLOCKS asks for a whole chunk, so DEST answers 32 (DATA_BUDGET) and keeps the rest.
	const chunks = 48;
	const content = randomBytes(chunks * MiB);
	const src = MemoryImage.from('src', content);
	const dst = MemoryImage.from('dst', randomBytes(content.length));
	const geometry = geometryFor(4096);
	const hasher = await createHasher('blake3');
	const sent: Message[] = [];
	const dest = new DestRole(dst, dst, geometry, hasher, {start: 0, end: content.length, srcSize: content.length, dryRun: false, copy: false, wide: true}, m => sent.push(m));
	dest.begin();
	assert.equal(sent.shift(), {type: 'credit', granted: WIDE_CREDIT_WINDOW});
	const chunk = new ChunkState(geometry, hasher);
	for (let index = 0; index < chunks; index++) {
		chunk.load(src, [{start: 0, end: content.length}], index * MiB, MiB);
		dest.handle({type: 'chunkSubs', offset: index * MiB, length: MiB, digest: Buffer.from(chunk.chunkDigest()), subs: Buffer.from(chunk.subDigests())});
	}
	const answered = (): number[] => sent.filter(m => m.type === 'blocks').map(m => (m as {offset: number}).offset / MiB);
	assert.equal(answered(), [...Array.from({length: DATA_BUDGET / MiB}).keys()]);
	for (let index = 0; index < chunks; index++) {
		assert.ok(answered().includes(index), `chunk ${index} not answered while chunk ${index - 1} completed`);
		dest.handle({type: 'data', offset: index * MiB, data: content.subarray(index * MiB, (index + 1) * MiB)});
		dest.handle({type: 'chunkEnd', offset: index * MiB});
		// One CREDIT per completed chunk, and the next deferred chunk answered, in order.
		assert.equal(sent.filter(m => m.type === 'credit').at(-1), {type: 'credit', granted: WIDE_CREDIT_WINDOW + index + 1});
		assert.equal(answered(), [...Array.from({length: Math.min(chunks, DATA_BUDGET / MiB + index + 1)}).keys()]);
	}
	dest.handle({type: 'sourceEnd', blocksZero: 0});
	assert.is(sent.at(-1)?.type, 'done');
	assert.ok(dst.content.equals(content));
});

test('should read and compare only the chunks a dirty bitmap marks, and leave the others of DST unread and as they are', async () => {
	const content = sample(9 * MiB + 4096 * 3);
	const changed = Buffer.from(content);
	// Written since the last pass: a block in chunk 1, a run across chunks 4 and 5, the short last chunk.
	changed.fill(0x5a, MiB + 8192, MiB + 12288);
	changed.fill(0x6b, 5 * MiB - 4096, 5 * MiB + 4096);
	changed.fill(0x7c, 9 * MiB, 9 * MiB + 4096);
	const dirty = [{start: MiB + 8192, end: MiB + 12288}, {start: 5 * MiB - 4096, end: 5 * MiB + 4096}, {start: 9 * MiB, end: 9 * MiB + 4096}];
	const src = MemoryImage.from('src', changed);
	const reads: Array<[number, number]> = [];
	const read = src.read.bind(src);
	Object.assign(src, {
		changedRanges: (start: number, end: number) => dirty.filter(range => range.end > start && range.start < end),
		read: (buffer: Buffer, offset: number, length: number, position: number) => {
			reads.push([position, position + length]);
			read(buffer, offset, length, position);
		},
	});
	// DST holds the last pass (content), plus a difference in a clean chunk that a bitmap pass must not see.
	const dstContent = Buffer.from(content);
	dstContent.fill(0x11, 7 * MiB, 7 * MiB + 4096);
	const dst = MemoryImage.from('dst', dstContent);
	const dstReads: number[] = [];
	const dstRead = dst.read.bind(dst);
	Object.assign(dst, {
		read: (buffer: Buffer, offset: number, length: number, position: number) => {
			dstReads.push(position);
			dstRead(buffer, offset, length, position);
		},
	});
	const {counters} = await syncPair(src, dst, dst, {bitmap: true});
	const expected = Buffer.from(changed);
	expected.fill(0x11, 7 * MiB, 7 * MiB + 4096);
	assert.ok(dst.content.equals(expected), 'DST: SRC in the dirty chunks, untouched elsewhere');
	const inDirtyChunks = (at: number): boolean => [1, 4, 5, 9].includes(Math.floor(at / MiB));
	for (const [from, to] of reads) {
		assert.ok(inDirtyChunks(from) && inDirtyChunks(to - 1), `SRC read [${from}, ${to}) outside the dirty chunks`);
	}
	for (const at of dstReads) {
		assert.ok(inDirtyChunks(at), `DST read at ${at} outside the dirty chunks`);
	}
	assert.is(counters.bytesScanned, content.length, 'skipped chunks count as scanned');
	assert.is(counters.blocksChanged, 1 + 2 + 1);
});

test('should round dirty ranges out to the chunks of a range, and intersect them with the data ranges', () => {
	assert.equal(chunksOf([{start: MiB + 5, end: MiB + 9}, {start: 2 * MiB - 1, end: 2 * MiB + 1}, {start: 9 * MiB, end: 12 * MiB}], 512, 10 * MiB, MiB),
		[{start: 512, end: 2 * MiB + 512}, {start: 8 * MiB + 512, end: 10 * MiB}]);
	assert.equal(chunksOf([], 0, MiB, MiB), []);
	assert.equal(intersectRanges([{start: 0, end: 10}, {start: 20, end: 30}], [{start: 5, end: 25}, {start: 29, end: 40}]), [{start: 5, end: 10}, {start: 20, end: 25}, {start: 29, end: 30}]);
});

test.run();
