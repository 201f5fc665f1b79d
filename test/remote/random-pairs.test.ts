// Random SRC/DST pairs and option mixes over SSH (push, pull, relay), from fixed seeds: after one run DST
// equals SRC byte for byte, and a second run finds nothing to change.
import fs from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {pick, prng, sha256, writeRandomPair} from '../helpers/images.js';
import {runCli} from '../helpers/remote-images.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const pairs = suite('random pairs over SSH');
/** RBLOCKSYNC_SSH_PAIRS=200 for a longer hunt; the default keeps the suite fast. */
const COUNT = Number(process.env['RBLOCKSYNC_SSH_PAIRS'] ?? 12);
const FIRST_SEED = Number(process.env['RBLOCKSYNC_SSH_SEED'] ?? 5000);
let sshd: Sshd;
let dir: string;

pairs.before(async () => {
	sshd = await startSshd();
	dir = fs.mkdtempSync(path.join(tmpdir(), 'rbs-ssh-pairs-'));
});

pairs.after(async () => {
	await sshd.stop();
	fs.rmSync(dir, {recursive: true, force: true});
});

const directions = {
	push: (src: string, dst: string) => [src, `pve:${dst}`],
	pull: (src: string, dst: string) => [`pve:${src}`, dst],
	relay: (src: string, dst: string) => [`pve:${src}`, `pve2:${dst}`],
} as const;

pairs(`should converge for ${COUNT} random pairs, directions and option mixes`, async () => {
	for (let seed = FIRST_SEED; seed < FIRST_SEED + COUNT; seed++) {
		const random = prng(seed);
		const direction = pick(random, ['push', 'pull', 'relay'] as const);
		const {src, dst, size, unit, blockSize, dstState} = writeRandomPair(dir, seed, random);
		const args = ['--json', '--truncate', '-b', String(blockSize), '-w', String(1 + Math.floor(random() * 3))];
		for (const [flag, chance] of [['--copy', 0.3], ['--verify', 0.25], ['-z', 0.25]] as const) {
			if (random() < chance) {
				args.push(flag);
			}
		}
		const what = `seed ${seed}: ${direction}, size ${size}, unit ${unit}, DST ${dstState}, ${args.join(' ')}`;
		// A dry run first (not with --copy, which refuses it): it changes nothing and counts exactly what
		// the real run then changes.
		const before = fs.existsSync(dst) ? sha256(dst) : undefined;
		const dry = args.includes('--copy') ? undefined : await runCli([...args.filter(arg => arg !== '--verify'), '--dry-run', ...directions[direction](src, dst)], sshd.env);
		assert.is(dry?.status ?? 0, 0, `${what}, dry run: ${dry?.stderr}`);
		assert.is(fs.existsSync(dst) ? sha256(dst) : undefined, before, `${what}: the dry run changed DST`);
		const result = await runCli([...args, ...directions[direction](src, dst)], sshd.env);
		assert.is(result.status, 0, `${what}: ${result.stderr}`);
		if (dry) {
			assert.is(dry.json?.['blocksChanged'], result.json?.['blocksChanged'], `${what}: dry run and real run disagree`);
		}
		assert.is(result.json?.['ok'], true, what);
		assert.is(fs.statSync(dst).size, size, what);
		assert.is(sha256(dst), sha256(src), what);
		const again = await runCli(['--json', '-b', String(blockSize), ...directions[direction](src, dst)], sshd.env);
		assert.is(again.status, 0, `${what}, second run: ${again.stderr}`);
		assert.is(again.json?.['blocksChanged'], 0, `${what}, second run`);
		fs.rmSync(src);
		fs.rmSync(dst);
	}
});

pairs.run();
