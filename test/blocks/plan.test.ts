import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {createBatchPlan, planBatch, type BatchPlan} from '../../source/blocks/plan.js';

const plan = suite('planBatch');

/** Expands a plan's runs into one letter per block: w(rite), z(ero), . (nothing). */
function letters(p: BatchPlan, blocks: number): string {
	const out = Array.from({length: blocks}, () => '.');
	for (let r = 0; r < p.writeRuns; r++) {
		for (let i = p.writeStart[r]!; i < p.writeEnd[r]!; i++) {
			out[i] = 'w';
		}
	}
	for (let r = 0; r < p.zeroRuns; r++) {
		for (let i = p.zeroStart[r]!; i < p.zeroEnd[r]!; i++) {
			assert.is(out[i], '.', 'a block is both written and zeroed');
			out[i] = 'z';
		}
	}
	return out.join('');
}

/** Builds a buffer from one letter per block: 0 zero, a/b/c distinct contents. */
function image(spec: string, blockSize: number, length = spec.length * blockSize): Buffer {
	const buffer = Buffer.alloc(spec.length * blockSize);
	for (const [i, ch] of [...spec].entries()) {
		if (ch !== '0') {
			buffer.fill(ch.charCodeAt(0), i * blockSize, (i + 1) * blockSize);
		}
	}
	return buffer.subarray(0, length);
}

/** The reference answer, block by block. */
function naive(src: string, dst: string): string {
	return [...src].map((s, i) => (s === '0' ? (dst[i] === '0' ? '.' : 'z') : s === dst[i] ? '.' : 'w')).join('');
}

plan('should match the block-by-block reference for every 4-block pair over {0,a,b}', () => {
	const alphabet = ['0', 'a', 'b'];
	const specs: string[] = [''];
	for (let n = 0; n < 4; n++) {
		specs.splice(0, specs.length, ...specs.flatMap(s => alphabet.map(a => s + a)));
	}
	const p = createBatchPlan(4);
	for (const src of specs) {
		for (const dst of specs) {
			planBatch(p, image(src, 16), image(dst, 16), 64, 16, {copy: false, dstMayHaveData: true});
			assert.is(letters(p, 4), naive(src, dst), `src ${src} dst ${dst}`);
			assert.is(p.blocksZero, [...src].filter(c => c === '0').length);
			assert.is(p.blocksWrite + p.blocksToZero, naive(src, dst).replaceAll('.', '').length);
		}
	}
});

plan('should coalesce adjacent blocks of one kind into one run', () => {
	const p = createBatchPlan(8);
	planBatch(p, image('aaaa0000', 16), image('bbbbcccc', 16), 128, 16, {copy: false, dstMayHaveData: true});
	assert.is(p.writeRuns, 1);
	assert.is(p.zeroRuns, 1);
	assert.equal([p.writeStart[0], p.writeEnd[0], p.zeroStart[0], p.zeroEnd[0]], [0, 4, 4, 8]);
});

plan('should compare a short last block over its real length only', () => {
	const p = createBatchPlan(2);
	const src = image('ab', 16, 20);
	const dst = Buffer.from(src);
	planBatch(p, src, dst, 20, 16, {copy: false, dstMayHaveData: true});
	assert.is(letters(p, 2), '..');
	dst[19] = 0;
	planBatch(p, src, dst, 20, 16, {copy: false, dstMayHaveData: true});
	assert.is(letters(p, 2), '.w');
});

plan('should treat a null SRC as zeros and a null DST as zeros', () => {
	const p = createBatchPlan(3);
	planBatch(p, null, image('a0b', 16), 48, 16, {copy: false, dstMayHaveData: true});
	assert.is(letters(p, 3), 'z.z');
	planBatch(p, image('a0b', 16), null, 48, 16, {copy: false, dstMayHaveData: false});
	assert.is(letters(p, 3), 'w.w');
	assert.is(p.blocksZero, 1);
	planBatch(p, null, null, 48, 16, {copy: false, dstMayHaveData: false});
	assert.is(letters(p, 3), '...');
	assert.is(p.blocksZero, 3);
});

plan('should write every non-zero block with copy, and zero the rest only where DST may hold data', () => {
	const p = createBatchPlan(4);
	planBatch(p, image('a0aa', 16), null, 64, 16, {copy: true, dstMayHaveData: true});
	assert.is(letters(p, 4), 'wzww');
	planBatch(p, image('a0aa', 16), null, 64, 16, {copy: true, dstMayHaveData: false});
	assert.is(letters(p, 4), 'w.ww');
	planBatch(p, null, null, 64, 16, {copy: true, dstMayHaveData: true});
	assert.is(letters(p, 4), 'zzzz');
});

plan.run();
