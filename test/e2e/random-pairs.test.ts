// Random SRC/DST pairs and option mixes, from fixed seeds: after one run DST equals SRC and a second run finds nothing.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {prng, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';

const pairs = suite('random pairs');
/** RBLOCKSYNC_E2E_PAIRS=200 for a longer hunt; the default keeps the suite fast. */
const COUNT = Number(process.env['RBLOCKSYNC_E2E_PAIRS'] ?? 8);
const FIRST_SEED = Number(process.env['RBLOCKSYNC_E2E_SEED'] ?? 1000);

/** Picks one element of `items`. */
function one<T>(random: () => number, items: readonly T[]): T {
	return items[Math.floor(random() * items.length)]!;
}

pairs(`should converge for ${COUNT} random pairs and option mixes`, async () => {
	await withTempDir(dir => {
		for (let seed = FIRST_SEED; seed < FIRST_SEED + COUNT; seed++) {
			const random = prng(seed);
			const blockSize = one(random, [512, 4096, 65_536]);
			const size = Math.floor(random() * 6 * 1024 * 1024) + one(random, [0, 1, 511, 4095]);
			const unit = one(random, [512, 4096, 65_536]);
			const src = path.join(dir, `src-${seed}.img`);
			const dst = path.join(dir, `dst-${seed}.img`);
			writeImage(src, randomLayout(size, unit, {zero: random() * 0.4, hole: random() * 0.4}, seed, 8));
			const dstState = one(random, ['missing', 'same-size', 'larger', 'smaller', 'copy-then-edit'] as const);
			if (dstState === 'copy-then-edit') {
				fs.copyFileSync(src, dst);
				writeImage(src, randomLayout(size, unit, {zero: 0.3, hole: 0.3}, seed + 1, 8));
			} else if (dstState !== 'missing') {
				const dstSize = dstState === 'same-size' ? size : dstState === 'larger' ? size + Math.floor(random() * 3 * 1024 * 1024) + 1 : Math.floor(size * random());
				writeImage(dst, randomLayout(dstSize, one(random, [512, 4096]), {zero: 0.3, hole: 0.3}, seed + 2, 8));
			}
			const args = ['--json', '--truncate', '-b', String(blockSize), '-w', String(1 + Math.floor(random() * 4))];
			const copy = random() < 0.25;
			if (copy) {
				args.push('--copy');
			}
			if (random() < 0.25) {
				args.push('--verify');
			}
			const what = `seed ${seed}: size ${size}, unit ${unit}, DST ${dstState}, ${args.join(' ')}`;
			const result = runCli([...args, src, dst]);
			assert.is(result.code, 0, `${what}: ${result.stderr}`);
			assert.is(fs.statSync(dst).size, size, what);
			assert.is(sha256(dst), sha256(src), what);
			const again = runCli(['--json', '-b', String(blockSize), src, dst]);
			assert.is(again.code, 0, `${what}, second run: ${again.stderr}`);
			assert.is(again.json!.blocksChanged, 0, `${what}, second run`);
			fs.rmSync(src);
			fs.rmSync(dst);
		}
	});
});

pairs.run();
