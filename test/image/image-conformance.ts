// One conformance suite for every WritableImage implementation: memory, local file, block device.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import type {WritableImage} from '../../source/image/image.js';

export type ImageFactory = {
	/** A new image of `size` bytes, all zero; `holes` says whether dataRanges must report it empty. */
	create(size: number): {image: WritableImage; allocated?: () => number; cleanup(): void};
	sparse: boolean;
};

/** Registers and runs the conformance suite for one implementation. */
export function imageConformance(name: string, factory: ImageFactory): void {
	const test = suite(`Image conformance: ${name}`);
	const size = 1024 * 1024 + 4096 * 3;

	test('should read back what was written, at odd offsets and lengths', () => {
		const {image, cleanup} = factory.create(size);
		try {
			const data = Buffer.from(Array.from({length: 10_001}, (_, i) => (i * 7 + 3) & 0xff));
			image.write(data, 1, 10_000, 12_345);
			const back = Buffer.alloc(10_002, 0xee);
			image.read(back, 1, 10_000, 12_345);
			assert.ok(back.subarray(1, 10_001).equals(data.subarray(1, 10_001)));
			assert.is(back[0], 0xee);
			assert.is(back[10_001], 0xee);
		} finally {
			cleanup();
		}
	});

	test('should read bytes past the end as zeros', () => {
		const {image, cleanup} = factory.create(size);
		try {
			image.write(Buffer.alloc(100, 9), 0, 100, size - 100);
			const back = Buffer.alloc(300, 0xee);
			image.read(back, 0, 300, size - 100);
			assert.ok(back.subarray(0, 100).every(b => b === 9));
			assert.ok(back.subarray(100).every(b => b === 0));
		} finally {
			cleanup();
		}
	});

	test('should make a range read as zeros with zero(), leaving its neighbours', () => {
		const {image, allocated, cleanup} = factory.create(size);
		try {
			image.write(Buffer.alloc(65_536 * 3, 0xab), 0, 65_536 * 3, 0);
			const before = allocated?.();
			image.zero(65_536, 65_536);
			const back = Buffer.alloc(65_536 * 3);
			image.read(back, 0, back.length, 0);
			assert.ok(back.subarray(0, 65_536).every(b => b === 0xab));
			assert.ok(back.subarray(65_536, 131_072).every(b => b === 0));
			assert.ok(back.subarray(131_072).every(b => b === 0xab));
			if (factory.sparse && before !== undefined && allocated) {
				assert.ok(allocated() <= before - 65_536, `allocation ${before} -> ${allocated()}`);
			}
		} finally {
			cleanup();
		}
	});

	test('should report data ranges covering every written byte (and nothing else when sparse)', () => {
		const {image, cleanup} = factory.create(size);
		try {
			image.write(Buffer.alloc(4096, 1), 0, 4096, 8192);
			image.write(Buffer.alloc(10, 1), 0, 10, 1024 * 1024);
			const ranges = image.dataRanges(0, size);
			const covers = (at: number): boolean => ranges === undefined || ranges.some(r => r.start <= at && at < r.end);
			for (const at of [8192, 12_287, 1024 * 1024, 1024 * 1024 + 9]) {
				assert.ok(covers(at), `offset ${at} not covered`);
			}
			if (factory.sparse) {
				assert.ok(ranges !== undefined);
				assert.not.ok(covers(0));
				assert.not.ok(covers(500_000));
				for (let i = 1; i < ranges.length; i++) {
					assert.ok(ranges[i]!.start >= ranges[i - 1]!.end, 'ranges overlap or are unsorted');
				}
			}
			const clipped = image.dataRanges(9000, 10_000);
			assert.ok(clipped === undefined || clipped.every(r => r.start >= 9000 && r.end <= 10_000));
		} finally {
			cleanup();
		}
	});

	test.run();
}
