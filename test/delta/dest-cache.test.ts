import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {MemoryImage} from '../../source/image/memory-image.js';
import {cacheLayout, type CacheLayout, MemoryRangeCache} from '../../source/delta/digest-cache.js';
import {syncPair} from '../helpers/roles-pair.js';
import {newKey} from '../../source/delta/keyed.js';

const test = suite('DestRole with a digest cache');
const MiB = 1024 * 1024;
/** One cache's key, kept from run to run as a cache file keeps it. */
const KEY = newKey();

/** A memory image counting the bytes read from it. */
class CountingImage extends MemoryImage {
	bytesRead = 0;

	static copyOf(name: string, content: Buffer): CountingImage {
		const image = new CountingImage(name, content.length);
		image.write(content, 0, content.length, 0);
		for (let at = 0; at < content.length; at += 4096) {
			if (content.subarray(at, at + 4096).every(byte => byte === 0)) {
				image.zero(at, Math.min(4096, content.length - at));
			}
		}
		return image;
	}

	override read(buffer: Buffer, offset: number, length: number, position: number): void {
		this.bytesRead += length;
		super.read(buffer, offset, length, position);
	}
}

function layoutOf(size: number, blockSize: number): CacheLayout {
	const layout = cacheLayout(size, blockSize);
	assert.type(layout, 'object');
	return layout as CacheLayout;
}

/**
 * Bytes of the 1 MiB chunks in [start, end) whose content differs between a and b: the most DEST may read
 * with a cache (it reads a chunk back to check its full digest after writing through the cache).
 */
function changedChunkBytes(a: Buffer, b: Buffer, start = 0, end = a.length): number {
	let bytes = 0;
	for (let at = start; at < end; at += MiB) {
		const to = Math.min(end, at + MiB);
		if (!a.subarray(at, to).equals(b.subarray(at, to))) {
			bytes += to - at;
		}
	}
	return bytes;
}

/** Random data with zero runs, of an odd size. */
function sample(size: number): Buffer {
	const data = randomBytes(size);
	data.fill(0, 4096 * 3, 4096 * 40);
	data.fill(0, 2 * MiB, 3 * MiB + 8192);
	return data;
}

/** Changes scattered blocks, zeroes a block and a whole chunk, and rewrites one inside a zero run. */
function change(content: Buffer, blockSize: number): Buffer {
	const next = Buffer.from(content);
	for (let block = 5; block * blockSize < next.length; block += 37) {
		randomBytes(Math.min(blockSize, next.length - block * blockSize)).copy(next, block * blockSize);
	}
	next.fill(0, 7 * blockSize, 8 * blockSize);
	next.fill(0, 4 * MiB, 5 * MiB);
	randomBytes(blockSize).copy(next, 2 * MiB + blockSize);
	return next;
}

for (const blockSize of [4096, 65536]) {
	test(`should build a cache in a first run and then sync reading DST only where it changed (block size ${blockSize})`, async () => {
		const size = 6 * MiB + 3 * blockSize + 1234;
		const layout = layoutOf(size, blockSize);
		const first = sample(size);
		const dst = CountingImage.copyOf('dst', randomBytes(size));
		// Run 1: no cache to use, one built.
		const built = new MemoryRangeCache(layout, 0, size, undefined, KEY);
		await syncPair(MemoryImage.from('src', first), dst, dst, {blockSize, cache: built});
		assert.ok(dst.content.equals(first));
		// Runs 2 and 3: SRC changed each time; the cache answers for DST, which is never read: SOURCE compares
		// keyed digests (the cache's key), and the blocks it finds equal need no read-back.
		let records = built.records;
		let content = first;
		for (let run = 2; run <= 3; run++) {
			const before = content;
			content = change(content, blockSize);
			dst.bytesRead = 0;
			const cache = new MemoryRangeCache(layout, 0, size, records, KEY);
			const {counters} = await syncPair(MemoryImage.from('src', content), dst, dst, {blockSize, cache});
			assert.ok(dst.content.equals(content), `run ${run}: DST equals SRC`);
			assert.is(dst.bytesRead, 0, `run ${run}: DST read ${dst.bytesRead} bytes (${changedChunkBytes(before, content)} in changed chunks)`);
			assert.ok(counters.blocksChanged > 0);
			assert.is(counters.bytesScanned, size);
			records = cache.records;
		}
		// A run with the last records over an unchanged SRC writes nothing and reads nothing.
		dst.bytesRead = 0;
		const last = new MemoryRangeCache(layout, 0, size, records, KEY);
		const {counters} = await syncPair(MemoryImage.from('src', content), dst, dst, {blockSize, cache: last});
		assert.is(counters.blocksChanged, 0);
		assert.is(dst.bytesRead, 0);
		// What that run recorded is what a full read of DST records.
		const fresh = new MemoryRangeCache(layout, 0, size, undefined, KEY);
		await syncPair(MemoryImage.from('src', content), CountingImage.copyOf('dst2', content), undefined, {blockSize, cache: fresh});
		const again = new MemoryRangeCache(layout, 0, size, fresh.records, KEY);
		dst.bytesRead = 0;
		const changedAgain = change(content, blockSize);
		await syncPair(MemoryImage.from('src', changedAgain), dst, dst, {blockSize, cache: again});
		assert.is(dst.bytesRead, 0);
		assert.ok(dst.content.equals(changedAgain));
		// Without keyed digests on SOURCE's side (an older agent), DEST reads the chunks that changed, and only those.
		dst.bytesRead = 0;
		const unkeyed = change(changedAgain, blockSize);
		await syncPair(MemoryImage.from('src', unkeyed), dst, dst, {blockSize, cache: new MemoryRangeCache(layout, 0, size, again.records, KEY), keyed: false});
		assert.ok(dst.content.equals(unkeyed));
		assert.ok(dst.bytesRead > 0 && dst.bytesRead <= changedChunkBytes(changedAgain, unkeyed), `unkeyed: DST read ${dst.bytesRead}`);
	});
}

test('should build an exact cache from a first copy into an empty DST and with --copy', async () => {
	const size = 5 * MiB + 777;
	const layout = layoutOf(size, 4096);
	const content = sample(size);
	for (const copy of [false, true]) {
		const dst = copy ? CountingImage.copyOf('dst', randomBytes(size)) : new CountingImage('dst', size);
		const built = new MemoryRangeCache(layout, 0, size, undefined, KEY);
		await syncPair(MemoryImage.from('src', content), dst, dst, {copy, cache: built});
		assert.ok(dst.content.equals(content));
		// Same records as a run that read DST after the copy.
		const read = new MemoryRangeCache(layout, 0, size, undefined, KEY);
		await syncPair(MemoryImage.from('src', content), dst, undefined, {cache: read});
		assert.ok(built.records.equals(read.records), `copy ${copy}: records as a full read makes them`);
		// And the next run reads DST only in the chunks it writes.
		dst.bytesRead = 0;
		const next = change(content, 4096);
		await syncPair(MemoryImage.from('src', next), dst, dst, {cache: new MemoryRangeCache(layout, 0, size, built.records, KEY)});
		assert.ok(dst.content.equals(next), `copy ${copy}`);
		assert.is(dst.bytesRead, 0, `copy ${copy}: DST read ${dst.bytesRead}`);
	}
});

test('should use the cache for one worker range of a larger image', async () => {
	const size = 12 * MiB + 4096 * 3;
	const layout = layoutOf(size, 4096);
	const content = sample(size);
	const dst = CountingImage.copyOf('dst', content);
	const range = {start: 4 * MiB, end: 8 * MiB};
	const built = new MemoryRangeCache(layout, range.start, range.end, undefined, KEY);
	await syncPair(MemoryImage.from('src', content), dst, dst, {...range, cache: built});
	const next = change(content, 4096);
	dst.bytesRead = 0;
	await syncPair(MemoryImage.from('src', next), dst, dst, {...range, cache: new MemoryRangeCache(layout, range.start, range.end, built.records, KEY)});
	assert.ok(dst.content.subarray(range.start, range.end).equals(next.subarray(range.start, range.end)));
	assert.is(dst.bytesRead, 0);
});

test('should catch a block the cache vouches for wrongly by the full chunk digest when SOURCE compares unkeyed digests', async () => {
	const size = 4 * MiB;
	const layout = layoutOf(size, 4096);
	const content = sample(size);
	const dst = CountingImage.copyOf('dst', content);
	const built = new MemoryRangeCache(layout, 0, size, undefined, KEY);
	await syncPair(MemoryImage.from('src', content), dst, dst, {cache: built});
	// DST's block 10 no longer holds what the cache says (a file's ctime makes such a cache stale; here the records
	// are handed over as they are), and SRC changes block 20 of the same chunk: without keyed digests DEST reads the
	// chunk, and the full chunk digest shows the difference.
	const wrong = Buffer.alloc(4096, 0x77);
	dst.write(wrong, 0, 4096, 10 * 4096);
	const next = Buffer.from(content);
	randomBytes(4096).copy(next, 20 * 4096);
	await syncPair(MemoryImage.from('src', next), dst, dst, {cache: new MemoryRangeCache(layout, 0, size, built.records, KEY), keyed: false});
	assert.ok(dst.content.equals(next), 'DST equals SRC, the block the cache vouched for included');
});

test('should key SUBS and BLOCKS with the cache\'s key: another key compares nothing equal below the chunk', async () => {
	const size = 4 * MiB;
	const layout = layoutOf(size, 4096);
	const content = sample(size);
	const dst = CountingImage.copyOf('dst', content);
	const built = new MemoryRangeCache(layout, 0, size, undefined, KEY);
	await syncPair(MemoryImage.from('src', content), dst, dst, {cache: built});
	const next = Buffer.from(content);
	randomBytes(4096).copy(next, 20 * 4096);
	// Records keyed with another key than the one DEST sends: no block digest matches, every block is sent.
	const {counters} = await syncPair(MemoryImage.from('src', next), dst, dst, {cache: new MemoryRangeCache(layout, 0, size, built.records, newKey())});
	assert.ok(dst.content.equals(next));
	assert.ok(counters.blocksChanged >= 200, `${counters.blocksChanged} blocks sent`);
});

test('should not record anything in a dry run', async () => {
	const size = 4 * MiB;
	const layout = layoutOf(size, 4096);
	const cache = new MemoryRangeCache(layout, 0, size, undefined, KEY);
	const dst = CountingImage.copyOf('dst', randomBytes(size));
	await syncPair(MemoryImage.from('src', sample(size)), dst, undefined, {dryRun: true, cache});
	assert.ok(cache.records.every(byte => byte === 0));
	assert.ok(dst.bytesRead > 0);
});

test.run();
