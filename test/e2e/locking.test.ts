// Two runs must not write one DST at once, nor write what another run reads: flock on both sides.
import {randomBytes} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type CliResult, runCli, startCli, stderrLines} from '../helpers/cli.js';
import {MiB, makeTempDir, randomLayout, removeTempDir, rewriteUnits, sha256, withTempDir, writeImage} from '../helpers/images.js';
import {holdLock} from '../helpers/lock.js';

const locking = suite('locking');

function assertRefused(result: CliResult, message: string): void {
	assert.is(result.code, 1, `exit ${result.code}; stderr: ${result.stderr}`);
	assert.equal(stderrLines(result), [`rblocksync: ${message}`]);
	assert.is(result.stdout, '');
}

/** SRC and a DST that differs from it in a few blocks, with DST's hash and mtime. */
function pair(dir: string): {src: string; dst: string; hash: string; mtime: number} {
	const layout = randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 7);
	const src = path.join(dir, 'src.img');
	const dst = path.join(dir, 'dst.img');
	writeImage(src, layout);
	writeImage(dst, layout);
	rewriteUnits(dst, layout, [1, 100, 700], 'data');
	return {src, dst, hash: sha256(dst), mtime: fs.statSync(dst).mtimeMs};
}

locking('should refuse a DST another process holds locked, writing nothing', async () => {
	await withTempDir(async dir => {
		const {src, dst, hash, mtime} = pair(dir);
		const lock = await holdLock(dst);
		try {
			assertRefused(runCli(['--truncate', src, dst]), `DST ${dst} is locked by another process (another rblocksync run?); try again when it has finished`);
		} finally {
			await lock.release();
		}
		// A shared lock (another run reading DST as its SRC) blocks writing too.
		const reader = await holdLock(dst, true);
		try {
			assert.is(runCli([src, dst]).code, 1);
		} finally {
			await reader.release();
		}
		assert.is(sha256(dst), hash);
		assert.is(fs.statSync(dst).mtimeMs, mtime);
		const after = runCli([src, dst]);
		assert.is(after.code, 0, after.stderr);
		assert.is(sha256(dst), sha256(src));
	});
});

locking('should refuse a SRC that is being written, and share a SRC that is only read', async () => {
	await withTempDir(async dir => {
		const {src, dst, hash} = pair(dir);
		const writer = await holdLock(src);
		try {
			assertRefused(runCli([src, dst]), `SRC ${src} is locked for writing by another process (another rblocksync run?); try again when it has finished`);
			assert.is(sha256(dst), hash);
		} finally {
			await writer.release();
		}
		const reader = await holdLock(src, true);
		try {
			const result = runCli([src, dst]);
			assert.is(result.code, 0, result.stderr);
			assert.is(sha256(dst), sha256(src));
		} finally {
			await reader.release();
		}
	});
});

locking('should keep a second rblocksync off the DST a running one writes', async () => {
	// On tmpfs when there is one: the 2 GiB written here need not reach the disk.
	const dir = makeTempDir('rblocksync-lock-', fs.existsSync('/dev/shm') ? '/dev/shm' : undefined);
	try {
		const src = path.join(dir, 'big.img');
		const chunk = randomBytes(32 * MiB);
		const fd = fs.openSync(src, 'w');
		for (let at = 0; at < 2048 * MiB; at += chunk.length) {
			fs.writeSync(fd, chunk, 0, chunk.length, at);
		}
		fs.closeSync(fd);
		const dst = path.join(dir, 'dst.img');
		const first = startCli(['--truncate', '--progress', 'plain', src, dst]);
		await first.waitForStderr(/^syncing /m);
		const second = runCli(['--truncate', '--dry-run', src, dst]);
		const third = runCli(['--truncate', src, dst]);
		assert.is(first.child.exitCode, null, 'the first run ended before the others tried; make the image larger');
		const done = await first.done;
		assertRefused(third, `DST ${dst} is locked by another process (another rblocksync run?); try again when it has finished`);
		assert.is(second.code, 1, second.stderr);
		assert.match(second.stderr, /is locked for writing by another process/);
		assert.is(done.code, 0, done.stderr);
		assert.is(sha256(dst), sha256(src));
	} finally {
		removeTempDir(dir);
	}
});

locking.run();
