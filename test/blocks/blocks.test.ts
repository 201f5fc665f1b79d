import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {alignDown, alignUp, batchBytesFor, blockCount, firstRangeEndingAfter, rangeCursor, splitRanges, unionAligned} from '../../source/blocks/blocks.js';

const split = suite('splitRanges');

split('should cover [0, size) exactly with aligned, contiguous, non-empty ranges', () => {
	for (const size of [1, 4095, 4096, 4097, 1 << 20, (1 << 20) + 1, 10 * (1 << 20) + 123]) {
		for (const workers of [1, 2, 3, 7, 8]) {
			const ranges = splitRanges(size, workers, 1 << 20);
			assert.ok(ranges.length >= 1 && ranges.length <= workers);
			let at = 0;
			for (const r of ranges) {
				assert.is(r.start, at);
				assert.ok(r.end > r.start);
				assert.is(r.start % (1 << 20), 0);
				at = r.end;
			}
			assert.is(at, size);
		}
	}
});

split('should use fewer workers than asked when the image has fewer batches', () => {
	assert.equal(splitRanges(3 << 20, 8, 1 << 20).length, 3);
});

split('should balance ranges within one batch of each other', () => {
	const lengths = splitRanges(10 << 20, 3, 1 << 20).map(r => r.end - r.start);
	assert.equal(lengths, [4 << 20, 3 << 20, 3 << 20]);
});

split('should return no range for an empty image', () => {
	assert.equal(splitRanges(0, 4, 4096), []);
});

split.run();

const maths = suite('block maths');

maths('should count a partial last block', () => {
	assert.is(blockCount(0, 4096), 0);
	assert.is(blockCount(1, 4096), 1);
	assert.is(blockCount(4096, 4096), 1);
	assert.is(blockCount(4097, 4096), 2);
});

maths('should align up and down', () => {
	assert.is(alignDown(5000, 4096), 4096);
	assert.is(alignUp(5000, 4096), 8192);
	assert.is(alignUp(8192, 4096), 8192);
	assert.is(alignDown(0, 4096), 0);
});

maths('should make batches a whole number of blocks', () => {
	assert.is(batchBytesFor(4096), 4 << 20);
	assert.is(batchBytesFor(16 << 20), 16 << 20);
	assert.is(batchBytesFor(3 << 20), 3 << 20);
});

maths.run();

const sets = suite('range sets');

sets('should merge overlapping and adjacent ranges after widening to blocks', () => {
	const got = unionAligned([{start: 10, end: 20}, {start: 5000, end: 5001}], [{start: 4096, end: 4100}, {start: 9000, end: 9001}], 4096, {start: 0, end: 100_000});
	assert.equal(got, [{start: 0, end: 12_288}]);
});

sets('should clip to the window', () => {
	assert.equal(unionAligned([{start: 0, end: 100_000}], [], 4096, {start: 8192, end: 16_384}), [{start: 8192, end: 16_384}]);
});

sets('should tell overlap of half-open ranges', () => {
	const ranges = [{start: 10, end: 20}, {start: 40, end: 50}];
	const overlaps = rangeCursor(ranges);
	assert.not.ok(overlaps(0, 10));
	assert.ok(overlaps(19, 30));
	assert.not.ok(overlaps(20, 30));
	assert.not.ok(overlaps(30, 40));
	assert.ok(overlaps(35, 41));
	assert.ok(overlaps(49, 60));
	assert.not.ok(overlaps(50, 60));
});

sets('should find the first range ending after an offset', () => {
	const ranges = [{start: 0, end: 10}, {start: 20, end: 30}, {start: 40, end: 50}];
	assert.equal([0, 9, 10, 15, 29, 30, 49, 50, 99].map(offset => firstRangeEndingAfter(ranges, offset)), [0, 0, 1, 1, 1, 2, 2, 3, 3]);
	assert.is(firstRangeEndingAfter([], 5), 0);
});

sets.run();
