// The benchmark image pair shared by bench/local and bench/ssh: SRC of random data with 25% zero
// blocks and 10% holes (whole 1 MiB extents), and CHANGED, a copy with 1% of its blocks rewritten.
import {execFileSync} from 'node:child_process';
import {randomFillSync} from 'node:crypto';
import fs from 'node:fs';

/** A seeded PRNG (mulberry32): the same images on every run. */
export function prng(seed) {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = Math.imul(a ^ (a >>> 15), 1 | a);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
	};
}

/** Writes `src` and `changed` of `size` bytes; prints and returns the number of changed blocks. */
export function makeImagePair(src, changed, size, blockSize = 4096) {
	console.log(`making a ${size / 1024 / 1024} MiB image pair: ${src}, ${changed} ...`);
	const fd = fs.openSync(src, 'w');
	const chunk = Buffer.alloc(1024 * 1024);
	const holes = prng(1);
	const zeros = prng(2);
	for (let offset = 0; offset < size; offset += chunk.length) {
		if (holes() < 0.1) {
			continue;
		}
		randomFillSync(chunk);
		for (let b = 0; b < chunk.length; b += blockSize) {
			// 25% of all blocks are zero: 0.25/0.9 of the blocks outside holes.
			if (zeros() < 0.25 / 0.9) {
				chunk.fill(0, b, b + blockSize);
			}
		}
		fs.writeSync(fd, chunk, 0, chunk.length, offset);
	}
	fs.ftruncateSync(fd, size);
	fs.closeSync(fd);
	execFileSync('cp', ['--sparse=always', src, changed]);
	const cfd = fs.openSync(changed, 'r+');
	const block = Buffer.alloc(blockSize);
	const changes = prng(3);
	let count = 0;
	for (let i = 0; i < size / blockSize; i++) {
		if (changes() < 0.01) {
			randomFillSync(block);
			fs.writeSync(cfd, block, 0, blockSize, i * blockSize);
			count += 1;
		}
	}
	fs.closeSync(cfd);
	console.log(`changed ${count} of ${size / blockSize} blocks (${((count / (size / blockSize)) * 100).toFixed(2)}%)`);
	return count;
}
