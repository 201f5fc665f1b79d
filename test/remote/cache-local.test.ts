import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {execFileSync, spawn, spawnSync} from 'node:child_process';
import {copyFileSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, truncateSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {setTimeout as sleep} from 'node:timers/promises';
import {belowSshd, type Sshd, startSshd} from '../helpers/sshd.js';
import {withLoop} from '../helpers/loop.js';
import {changeBlocks, makeImage, runCli} from '../helpers/remote-images.js';

// A local run whose DST has a usable digest cache on this host takes the digest path (worker threads): SRC is read,
// DST is not. Any change behind the cache's back (or another hash or block size) sends the run back to the byte
// comparison, which reads both. The cache here is built by a pull (DST on this host), then used locally. Every run
// names the suite's own --cache-dir (a shared default directory could hold a deleted file's cache whose inode a file
// here reuses), so a local run that looked in the default directory instead would find none.
const test = suite('digest cache on local runs');
const MiB = 1024 * 1024;
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
let sshd: Sshd;
let dir: string;
let cacheDir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-cache-local-'));
	cacheDir = join(dir, 'cache');
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

async function sync(args: string[], cache = ['--cache-dir', cacheDir]): Promise<Record<string, unknown>> {
	const result = await runCli([...args, ...cache, '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	return result.json ?? {};
}

function cmp(a: string, b: string, what: string): void {
	assert.is(spawnSync('cmp', [a, b]).status, 0, `${what}: DST differs from SRC`);
}

/** A cache for dst built by a pull (this host keeps it), then a local run that uses it. */
async function cached(src: string, dst: string, extra: string[] = []): Promise<void> {
	const built = await sync([`pve:${src}`, dst, '--truncate', ...extra]);
	assert.ok(['built', 'used'].includes(String(built['cache'])) || String(built['cache']).startsWith('stale'), String(built['cache']));
	cmp(src, dst, 'pull');
	changeBlocks(src, 0.03);
	const local = await sync([src, dst, ...extra]);
	assert.is(local['cache'], 'used', 'a local run with a usable cache takes the digest path');
	assert.is(local['direction'], 'local');
	cmp(src, dst, 'local run through the cache');
}

test('should use the cache locally, and fall back to reading both images whenever it is stale', async () => {
	const src = join(dir, 'src.img');
	const dst = join(dir, 'dst.img');
	const size = 6 * MiB + 4096 * 5 + 300;
	makeImage(src, size);
	await cached(src, dst);
	changeBlocks(src, 0.05);
	assert.is((await sync([src, dst]))['cache'], 'used');
	cmp(src, dst, 'second local run');

	// DST written behind the cache's back: the byte comparison (no cache) reads it.
	execFileSync('dd', ['if=/dev/urandom', `of=${dst}`, 'bs=4096', 'seek=11', 'count=2', 'conv=notrunc', 'status=none']);
	changeBlocks(src, 0.02);
	assert.is((await sync([src, dst]))['cache'], undefined);
	cmp(src, dst, 'after dd into DST');
	// Truncated and extended behind it.
	await cached(src, dst);
	truncateSync(dst, 3 * MiB);
	truncateSync(dst, size);
	assert.is((await sync([src, dst]))['cache'], undefined);
	cmp(src, dst, 'after truncate and extend');
	// Another hash, another block size: not this cache.
	await cached(src, dst);
	execFileSync('dd', ['if=/dev/urandom', `of=${src}`, 'bs=4096', 'seek=30', 'count=1', 'conv=notrunc', 'status=none']);
	assert.is((await sync([src, dst, '--hash', 'sha256']))['cache'], undefined);
	cmp(src, dst, 'other hash');
	await cached(src, dst, ['--hash', 'sha256']);
	changeBlocks(src, 0.02);
	assert.is((await sync([src, dst, '--hash', 'sha256', '-b', '8192']))['cache'], undefined);
	cmp(src, dst, 'other block size');
	// Replaced by another file of the same size.
	await cached(src, dst);
	const other = join(dir, 'other.img');
	copyFileSync(src, other);
	execFileSync('dd', ['if=/dev/urandom', `of=${other}`, 'bs=4096', 'seek=50', 'count=3', 'conv=notrunc', 'status=none']);
	renameSync(other, dst);
	const replaced = await sync([src, dst]);
	assert.is.not(replaced['cache'], 'used');
	cmp(src, dst, 'DST replaced');
});

test('should use a cache in --cache-dir on a local run given that --cache-dir, and not one in another directory', async () => {
	const src = join(dir, 'dir-src.img');
	const dst = join(dir, 'dir-dst.img');
	const own = join(dir, 'own-cache');
	makeImage(src, 5 * MiB + 777);
	assert.is((await sync([`pve:${src}`, dst, '--truncate'], ['--cache-dir', own]))['cache'], 'built');
	assert.is(readdirSync(own).filter(name => name.endsWith('.digests')).length, 1, "the pull's cache is in --cache-dir on this host");
	cmp(src, dst, 'pull');
	// Another directory holds no cache of DST: the byte comparison, which leaves the cache in `own` stale.
	changeBlocks(src, 0.02);
	const elsewhere = await sync([src, dst], ['--cache-dir', join(dir, 'empty-cache')]);
	assert.is(elsewhere['cache'], undefined);
	assert.ok(Number(elsewhere['dstBytesRead']) > 0, 'DST read');
	cmp(src, dst, 'local run with another --cache-dir');
	assert.is((await sync([`pve:${src}`, dst], ['--cache-dir', own]))['cache'], 'stale: DST changed since the cache was made (another file, or written by someone else)');
	// The local run with the pull's --cache-dir reads SRC only.
	const changed = changeBlocks(src, 0.03);
	const local = await sync([src, dst], ['--cache-dir', own]);
	assert.is(local['cache'], 'used', 'the cache in --cache-dir was found');
	assert.is(local['dstBytesRead'], 0, 'DST not read');
	assert.is(local['blocksChanged'], changed);
	cmp(src, dst, 'local run through the cache in --cache-dir');
});

test("should keep a loop device DST's cache on local runs, use it only with --trust-cache after its sample check, and discard it when the device was written behind it", async context => {
	const size = 64 * MiB;
	const src = join(dir, 'device-src.img');
	const backing = join(dir, 'device-backing.img');
	const own = join(dir, 'device-cache');
	makeImage(src, size);
	makeImage(backing, size, {holeEvery: 0});
	const notTrusted = 'built: DST is a block device, whose cache is used only with --trust-cache';
	await withLoop(context, [backing], async ([device]) => {
		const run = async (...more: string[]): Promise<Record<string, unknown>> => {
			const result = await sync([src, device!, ...more], ['--cache-dir', own]);
			assert.is(result['direction'], 'local');
			const same = spawnSync('cmp', ['-n', String(size), src, device!], {encoding: 'utf8'});
			assert.is(same.status, 0, `${more.join(' ') || 'a run'} to ${device!}: DST differs from SRC: ${same.stdout}${same.stderr}`);
			return result;
		};
		assert.is((await run())['cache'], 'built');
		assert.is(readdirSync(own).filter(name => name.endsWith('.digests')).length, 1, 'the device cache is in --cache-dir');
		const untrusted = await run();
		assert.is(untrusted['cache'], notTrusted);
		assert.ok(Number(untrusted['dstBytesRead']) >= size - MiB, `not used: DST read in full (${String(untrusted['dstBytesRead'])})`);
		const changed = changeBlocks(src, 0.0002);
		const trusted = await run('--trust-cache');
		assert.is(trusted['cache'], 'used');
		assert.is(trusted['blocksChanged'], changed);
		assert.ok(Number(trusted['dstBytesRead']) <= (8 + changed) * MiB, `only the sample (8 of 64 chunks) and what changed: ${String(trusted['dstBytesRead'])}`);
		// Written behind the cache, every chunk: any sample finds it; DST read in full, the cache built again.
		execFileSync('dd', ['if=/dev/urandom', `of=${device!}`, 'bs=1M', 'count=64', 'oflag=direct', 'status=none']);
		const found = await run('--trust-cache');
		assert.match(String(found['cache']), /^stale: the chunk at offset \d+ differs from the cache \(DST was written by someone else\)$/);
		assert.ok(Number(found['dstBytesRead']) >= size - MiB, `full read: ${String(found['dstBytesRead'])}`);
		assert.is((await run('--trust-cache'))['cache'], 'used', 'the full read built it again');
		// Written behind it without --trust-cache: read in full, the write found.
		execFileSync('dd', ['if=/dev/urandom', `of=${device!}`, 'bs=4096', 'seek=100', 'count=3', 'oflag=direct', 'status=none']);
		const behind = await run();
		assert.is(behind['cache'], notTrusted);
		assert.is(behind['blocksChanged'], 3);
		// Another block size: stale even when trusted.
		assert.is((await run('--trust-cache', '-b', '8192'))['cache'], 'stale: made with block size 4096, this run uses 8192');
		// Blocks under 4 KiB keep no cache: the byte comparison.
		changeBlocks(src, 0.001);
		assert.is((await run('-b', '512'))['cache'], undefined);
	});
});

for (const victim of ['driver', 'agent'] as const) {
	test(`should leave no usable cache when the ${victim} is killed mid-write, and the next run makes DST SRC`, async () => {
		const src = join(dir, `kill-${victim}-src.img`);
		const dst = join(dir, `kill-${victim}-dst.img`);
		const size = 96 * MiB;
		makeImage(src, size, {zeroEvery: 0, holeEvery: 0});
		// A push keeps the cache on the remote side (the agent to kill); a local run's agents are the driver's threads.
		const [from, to] = victim === 'agent' ? [src, `pve:${dst}`] : [src, dst];
		if (victim === 'agent') {
			assert.is((await sync([from, to, '--truncate']))['cache'], 'built');
		} else {
			await cached(src, dst);
		}
		changeBlocks(src, 0.5);
		const before = statSync(dst, {bigint: true}).mtimeNs;
		const child = spawn(process.execPath, [cli, '--json', '-q', '--cache-dir', cacheDir, from, to], {env: {...process.env, ...sshd.env}, stdio: 'ignore'});
		const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>(resolve => child.on('exit', (code, signal) => resolve({code, signal})));
		// Killed as soon as DST's first write lands (its mtime moves).
		for (let waited = 0; waited < 20_000 && statSync(dst, {bigint: true}).mtimeNs === before && child.exitCode === null; waited += 10) {
			await sleep(10);
		}
		assert.is(child.exitCode, null, 'the run was still writing');
		if (victim === 'driver') {
			child.kill('SIGKILL');
		} else {
			// The agents below this test's sshd (DEST's, writing DST; SOURCE's with them), by their pids.
			for (const row of belowSshd(sshd)) {
				if (row.args.includes('agent')) {
					try {
						process.kill(row.pid, 'SIGKILL');
					} catch {
						// Already gone.
					}
				}
			}
		}
		const ended = await exited;
		// However far it got, the next run with the cache makes DST equal to SRC.
		const next = await sync([from, to]);
		assert.is.not(next['cache'], 'used', `after a killed run (${JSON.stringify(ended)}): ${String(next['cache'])}`);
		cmp(src, dst, `after the ${victim} was killed`);
	});
}

test.run();
