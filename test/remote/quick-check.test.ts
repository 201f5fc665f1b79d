import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {execFileSync, spawnSync} from 'node:child_process';
import {copyFileSync, mkdtempSync, renameSync, rmSync, statSync, truncateSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, runCli} from '../helpers/remote-images.js';

// SRC's quick check (doc/protocol.md): a file SRC whose stamp (host, dev, inode, size, mtime, ctime) is the one DST's
// cache recorded, with DST unchanged too, is neither read nor written; every change of either is a miss.
const test = suite("SRC's quick check over SSH");
const MiB = 1024 * 1024;
const UNCHANGED = 'used: SRC and DST unchanged since the last run (quick check)';
/** A stamp is recorded only when SRC's mtime and ctime are 2 s old (STAMP_SETTLE_NS). */
const SETTLE_MS = 2200;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-quick-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

async function sync(from: string, to: string, extra: string[] = []): Promise<Record<string, unknown>> {
	const result = await runCli([from, to, '--json', ...extra], sshd.env);
	assert.is(result.status, 0, result.stderr);
	return result.json ?? {};
}

function cmp(a: string, b: string, what: string): void {
	assert.is(spawnSync('cmp', [a, b]).status, 0, `${what}: DST differs from SRC`);
}

/** A run that records SRC's stamp (SRC settled first), then one that the quick check answers: nothing read, DST untouched. */
async function arm(from: string, to: string, src: string, dst: string): Promise<void> {
	await sleep(SETTLE_MS);
	const recording = await sync(from, to);
	assert.ok(String(recording['cache']).startsWith('used'), String(recording['cache']));
	const before = statSync(dst, {bigint: true});
	const hit = await sync(from, to);
	assert.is(hit['cache'], UNCHANGED);
	assert.is(hit['blocksChanged'], 0);
	assert.is(hit['bytesWritten'], 0);
	for (const counter of ['srcBytesRead', 'dstBytesRead']) {
		// Counted once the run reports what it read (issue 9).
		if (counter in hit) {
			assert.is(hit[counter], 0, counter);
		}
	}
	const after = statSync(dst, {bigint: true});
	assert.is(after.mtimeNs, before.mtimeNs, 'DST untouched');
	assert.is(after.ctimeNs, before.ctimeNs, 'DST untouched');
	cmp(src, dst, 'after the quick check');
}

/** After a change of SRC or DST: the run is no quick check, and DST is SRC again. */
async function miss(from: string, to: string, src: string, dst: string, what: string, cache = 'used'): Promise<void> {
	const result = await sync(from, to);
	assert.ok(String(result['cache']).startsWith(cache) && result['cache'] !== UNCHANGED, `${what}: ${String(result['cache'])}`);
	cmp(src, dst, what);
}

for (const direction of ['push', 'relay'] as const) {
	test(`should skip an unchanged pair and catch every change of SRC or DST (${direction})`, async () => {
		const src = join(dir, `${direction}-src.img`);
		const dst = join(dir, `${direction}-dst.img`);
		const size = 5 * MiB + 4096 * 3;
		makeImage(src, size);
		const [from, to] = direction === 'push' ? [src, `pve:${dst}`] : [`pve:${src}`, `pve:${dst}`];
		const first = await sync(from, to, ['--truncate']);
		assert.is(first['cache'], 'built');
		cmp(src, dst, 'first copy');
		await arm(from, to, src, dst);

		// Touched, content the same: mtime and ctime moved.
		execFileSync('touch', [src]);
		await miss(from, to, src, dst, 'touched');
		await arm(from, to, src, dst);
		// Written in place.
		execFileSync('dd', ['if=/dev/urandom', `of=${src}`, 'bs=4096', 'seek=17', 'count=2', 'conv=notrunc', 'status=none']);
		await miss(from, to, src, dst, 'dd conv=notrunc');
		await arm(from, to, src, dst);
		// Truncated and extended back to its size (its tail now zeros).
		truncateSync(src, 2 * MiB + 100);
		truncateSync(src, size);
		await miss(from, to, src, dst, 'truncated and extended');
		await arm(from, to, src, dst);
		// Replaced by another file of the same size and the same mtime, renamed over it.
		const other = join(dir, `${direction}-other.img`);
		copyFileSync(src, other);
		execFileSync('dd', ['if=/dev/urandom', `of=${other}`, 'bs=4096', 'seek=40', 'count=1', 'conv=notrunc', 'status=none']);
		execFileSync('touch', ['-r', src, other]);
		assert.is(statSync(other, {bigint: true}).mtimeNs, statSync(src, {bigint: true}).mtimeNs);
		renameSync(other, src);
		await miss(from, to, src, dst, 'replaced by rename');
		await arm(from, to, src, dst);
		// DST written behind the cache's back.
		execFileSync('dd', ['if=/dev/urandom', `of=${dst}`, 'bs=4096', 'seek=3', 'count=1', 'conv=notrunc', 'status=none']);
		await miss(from, to, src, dst, 'DST written behind the cache', 'stale: DST changed');
		await arm(from, to, src, dst);
		// --verify and --copy are never answered by the quick check; --no-cache neither.
		const verified = await sync(from, to, ['--verify']);
		assert.is.not(verified['cache'], UNCHANGED);
		assert.is(verified['verified'], true);
		assert.ok(Number(verified['bytesScanned']) > 0);
		const copied = await sync(from, to, ['--copy']);
		assert.is.not(copied['cache'], UNCHANGED);
		assert.ok(Number(copied['bytesWritten']) > 0, '--copy writes');
		const off = await sync(from, to, ['--no-cache']);
		assert.is(off['cache'], undefined);
		cmp(src, dst, 'at the end');
	});
}

test('should not record the stamp of a SRC written within the last 2 s', async () => {
	const src = join(dir, 'recent-src.img');
	const dst = join(dir, 'recent-dst.img');
	makeImage(src, 2 * MiB);
	await sync(src, `pve:${dst}`, ['--truncate']);
	// Right after a write: the run copies it but records no stamp, so the next run reads SRC again.
	execFileSync('dd', ['if=/dev/urandom', `of=${src}`, 'bs=4096', 'seek=1', 'count=1', 'conv=notrunc', 'status=none']);
	const started = Date.now();
	await sync(src, `pve:${dst}`);
	const next = await sync(src, `pve:${dst}`);
	if (Date.now() - started < 1500) {
		assert.is.not(next['cache'], UNCHANGED);
	}
	cmp(src, dst, 'recent write');
});

test.run();
