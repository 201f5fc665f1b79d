// Random SRC/DST pairs and option mixes, from fixed seeds: after one run DST equals SRC and a second run finds nothing.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {prng, sha256, withTempDir, writeRandomPair} from '../helpers/images.js';

const pairs = suite('random pairs');
/** RBLOCKSYNC_E2E_PAIRS=200 for a longer hunt; the default keeps the suite fast. */
const COUNT = Number(process.env['RBLOCKSYNC_E2E_PAIRS'] ?? 8);
const FIRST_SEED = Number(process.env['RBLOCKSYNC_E2E_SEED'] ?? 1000);

pairs(`should converge for ${COUNT} random pairs and option mixes`, async () => {
	await withTempDir(dir => {
		for (let seed = FIRST_SEED; seed < FIRST_SEED + COUNT; seed++) {
			const random = prng(seed);
			const {src, dst, size, unit, blockSize, dstState} = writeRandomPair(dir, seed, random);
			const args = ['--json', '--truncate', '-b', String(blockSize), '-w', String(1 + Math.floor(random() * 4))];
			const copy = random() < 0.25;
			if (copy) {
				args.push('--copy');
			}
			if (random() < 0.25) {
				args.push('--verify');
			}
			const what = `seed ${seed}: size ${size}, unit ${unit}, DST ${dstState}, ${args.join(' ')}`;
			// A dry run first (not with --copy, which refuses it): it changes nothing and counts exactly what
			// the real run then changes.
			const before = fs.existsSync(dst) ? sha256(dst) : undefined;
			const dry = args.includes('--copy') ? undefined : runCli([...args.filter(arg => arg !== '--verify'), '--dry-run', src, dst]);
			assert.is(dry?.code ?? 0, 0, `${what}, dry run: ${dry?.stderr}`);
			assert.is(fs.existsSync(dst) ? sha256(dst) : undefined, before, `${what}: the dry run changed DST`);
			const result = runCli([...args, src, dst]);
			assert.is(result.code, 0, `${what}: ${result.stderr}`);
			if (dry) {
				assert.is(dry.json!.blocksChanged, result.json!.blocksChanged, `${what}: dry run and real run disagree`);
			}
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
