import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {execFileSync} from 'node:child_process';
import {copyFileSync, mkdtempSync, renameSync, rmSync, truncateSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {CACHE_UNCHANGED} from '../../source/protocol/messages.js';
import {changeBlocks, makeImage, runCli, sameContent} from '../helpers/remote-images.js';

const test = suite("DEST's digest cache over SSH");
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-cache-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

/** The suite's own cache directory on DST's host: a cache another suite left for a deleted file whose inode a file of
 * this suite reuses would be found stale, where these tests expect "built". */
function cacheDir(): string[] {
	return ['--cache-dir', join(dir, 'cache')];
}

async function sync(args: string[], cache: string): Promise<void> {
	const result = await runCli([...args, '--json', ...cacheDir()], sshd.env);
	assert.is(result.status, 0, result.stderr);
	// A SRC unchanged since a run that recorded its stamp is answered by the quick check (quick-check.test.ts); a
	// wrong quick check shows in the comparisons after each changed SRC.
	const got = result.json?.['cache'];
	assert.ok(got === cache || (cache === 'used' && got === CACHE_UNCHANGED), `${args.join(' ')}: ${String(got)} ${result.stderr}`);
}

for (const direction of ['push', 'pull'] as const) {
	test(`should build the cache, use it, and find it stale whenever DST or the run changed (${direction})`, async () => {
		const src = join(dir, `${direction}-src.img`);
		const dst = join(dir, `${direction}-dst.img`);
		makeImage(src, 9 * MiB + 4096 * 3 + 100);
		const [from, to] = direction === 'push' ? [src, `pve:${dst}`] : [`pve:${src}`, dst];
		await sync([from, to, '--truncate'], 'built');
		assert.ok(sameContent(src, dst));
		changeBlocks(src, 0.02);
		await sync([from, to], 'used');
		assert.ok(sameContent(src, dst), 'after a cached run');
		changeBlocks(src, 0.02);
		await sync([from, to], 'used');
		assert.ok(sameContent(src, dst), 'after a second cached run');

		// DST written behind the cache's back.
		execFileSync('dd', ['if=/dev/urandom', `of=${dst}`, 'bs=4096', 'seek=5', 'count=3', 'conv=notrunc', 'status=none']);
		await sync([from, to], 'stale: DST changed since the cache was made (another file, or written by someone else)');
		assert.ok(sameContent(src, dst), 'after dd');
		// Truncated and extended again.
		truncateSync(dst, 4 * MiB);
		truncateSync(dst, 9 * MiB + 4096 * 3 + 100);
		await sync([from, to], 'stale: DST changed since the cache was made (another file, or written by someone else)');
		assert.ok(sameContent(src, dst), 'after truncate and extend');
		// Another hash, another block size.
		await sync([from, to], 'used');
		await sync([from, to, '--hash', 'sha256'], 'stale: made with blake3, this run uses sha256');
		await sync([from, to, '--hash', 'sha256', '-b', '8192'], 'stale: made with block size 4096, this run uses 8192');
		changeBlocks(src, 0.02);
		await sync([from, to, '--hash', 'sha256', '-b', '8192'], 'used');
		assert.ok(sameContent(src, dst), 'after the block size changed');
		// Replaced by another file of the same size: that file has no cache of its own.
		const other = join(dir, `${direction}-other.img`);
		copyFileSync(src, other);
		execFileSync('dd', ['if=/dev/urandom', `of=${other}`, 'bs=4096', 'seek=9', 'count=2', 'conv=notrunc', 'status=none']);
		renameSync(other, dst);
		// Its inode may be one a deleted file's cache was named after: that cache is then found stale, never used.
		const replaced = await runCli([from, to, '--json', ...cacheDir()], sshd.env);
		assert.is(replaced.status, 0, replaced.stderr);
		assert.ok(replaced.json?.['cache'] === 'built' || String(replaced.json?.['cache']).startsWith('stale: '), String(replaced.json?.['cache']));
		assert.ok(sameContent(src, dst), 'after DST was replaced');
		// --no-cache, --dry-run: no cache; --verify reads both and keeps the cache it built.
		const off = await runCli([from, to, '--no-cache', '--json'], sshd.env);
		assert.is(off.json?.['cache'], undefined);
		changeBlocks(src, 0.02);
		await sync([from, to, '--verify'], 'used');
		assert.ok(sameContent(src, dst));
		await sync([from, to], 'used');
	});
}

test('should build the cache with --copy, and use it in the next run', async () => {
	const src = join(dir, 'copy-src.img');
	const dst = join(dir, 'copy-dst.img');
	makeImage(src, 6 * MiB + 512);
	makeImage(dst, 6 * MiB + 512);
	await sync([src, `pve:${dst}`, '--copy'], 'built');
	assert.ok(sameContent(src, dst));
	changeBlocks(src, 0.05);
	await sync([src, `pve:${dst}`], 'used');
	assert.ok(sameContent(src, dst));
});

test.run();
