// Random SRC/DST pairs and option mixes over SSH (push, pull, relay), from fixed seeds: after one run DST
// equals SRC byte for byte, and a second run finds nothing to change; then cached rounds over the same pair (SRC
// changed between runs, DST sometimes behind its cache's back, local runs on the caches the SSH runs built, now and
// then --no-cache or another block size), each ending with DST = SRC and a `cache` field allowed for what happened.
import fs from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type CacheState, changeSrc, checkCache, type RunFacts, stateAfter, tamperDst} from '../helpers/cached-rounds.js';
import {pick, prng, sha256, writeRandomPair} from '../helpers/images.js';
import {runCli} from '../helpers/remote-images.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const pairs = suite('random pairs over SSH');
/** RBLOCKSYNC_SSH_PAIRS=200 for a longer hunt; the default keeps the suite fast. */
const COUNT = Number(process.env['RBLOCKSYNC_SSH_PAIRS'] ?? 8);
/** Cached rounds per pair (RBLOCKSYNC_SSH_ROUNDS). */
const ROUNDS = Number(process.env['RBLOCKSYNC_SSH_ROUNDS'] ?? 3);
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
	local: (src: string, dst: string) => [src, dst],
} as const;

/** The suite's own cache directory (DST's host is this one for every direction): a cache another suite left for a
 * deleted file whose inode a file here reuses is never found. */
function cacheDir(): string[] {
	return ['--cache-dir', path.join(dir, 'cache')];
}

pairs(`should converge for ${COUNT} random pairs, directions and option mixes`, async () => {
	for (let seed = FIRST_SEED; seed < FIRST_SEED + COUNT; seed++) {
		const random = prng(seed);
		const direction = pick(random, ['push', 'pull', 'relay'] as const);
		const {src, dst, size, unit, blockSize, dstState} = writeRandomPair(dir, seed, random);
		const args = ['--json', '--truncate', ...cacheDir(), '-b', String(blockSize), '-w', String(1 + Math.floor(random() * 3))];
		for (const [flag, chance] of [['--copy', 0.3], ['--verify', 0.25], ['-z', 0.25]] as const) {
			if (random() < chance) {
				args.push(flag);
			}
		}
		const what = `seed ${seed} (RBLOCKSYNC_SSH_SEED=${seed} RBLOCKSYNC_SSH_PAIRS=1 to replay): ${direction}, size ${size}, unit ${unit}, DST ${dstState}, ${args.join(' ')}`;
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
		const first: RunFacts = {remote: true, noCache: false, blockSize, srcChanged: true, resized: true, noCacheSince: false};
		const firstWrong = checkCache(result.json?.['cache'], {kind: 'none'}, first);
		assert.is(firstWrong, undefined, `${what}: ${firstWrong}`);
		let state = stateAfter(result.json?.['cache'], {kind: 'none'}, first);
		const again = await runCli(['--json', ...cacheDir(), '-b', String(blockSize), ...directions[direction](src, dst)], sshd.env);
		assert.is(again.status, 0, `${what}, second run: ${again.stderr}`);
		assert.is(again.json?.['blocksChanged'], 0, `${what}, second run`);
		const second: RunFacts = {...first, srcChanged: false, resized: false};
		const secondWrong = checkCache(again.json?.['cache'], state, second);
		assert.is(secondWrong, undefined, `${what}, second run: ${secondWrong}`);
		state = stateAfter(again.json?.['cache'], state, second);
		state = await cachedRounds(random, what, src, dst, state);
		fs.rmSync(src);
		fs.rmSync(dst);
	}
});

/** ROUNDS runs over the converged pair, each after SRC changed and maybe DST behind its cache's back; returns the cache's state. */
async function cachedRounds(random: () => number, pairWhat: string, src: string, dst: string, start: CacheState): Promise<CacheState> {
	let state = start;
	let noCacheSince = false;
	for (let round = 1; round <= ROUNDS; round++) {
		const direction = pick(random, ['push', 'pull', 'relay', 'local'] as const);
		const blockSize = random() < 0.2 ? pick(random, [512, 4096, 65_536]) : state.kind === 'valid' ? state.blockSize : 4096;
		const noCache = random() < 0.15;
		const source = changeSrc(random, src);
		const tampered = tamperDst(random, dst, `${dst}.other`);
		if (tampered) {
			// Written behind a cache known to exist: stale next; behind one that may not exist: stale or built, never used.
			state = tampered.state.kind === 'tampered' && state.kind !== 'valid' && state.kind !== 'tampered' ? {kind: 'none'} : tampered.state;
			noCacheSince = false;
		}
		const args = ['--json', '-b', String(blockSize), ...(source.resized ? ['--truncate'] : []), ...(noCache ? ['--no-cache'] : cacheDir())];
		const what = `${pairWhat}; round ${round}: ${source.what}, ${tampered?.what ?? 'DST untouched'}, cache ${state.kind}, ${direction} ${args.join(' ')}`;
		const result = await runCli([...args, ...directions[direction](src, dst)], sshd.env);
		assert.is(result.status, 0, `${what}: ${result.stderr}`);
		assert.is(result.json?.['ok'], true, what);
		assert.is(fs.statSync(dst).size, fs.statSync(src).size, what);
		assert.is(sha256(dst), sha256(src), what);
		const facts: RunFacts = {remote: direction !== 'local', noCache, blockSize, srcChanged: source.changed, resized: source.resized, noCacheSince};
		const wrong = checkCache(result.json?.['cache'], state, facts);
		assert.is(wrong, undefined, `${what}: ${wrong}`);
		noCacheSince ||= noCache;
		state = stateAfter(result.json?.['cache'], state, facts);
	}
	return state;
}

pairs.run();
