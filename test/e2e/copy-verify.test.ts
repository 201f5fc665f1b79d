// --copy (DST not read, every block set) and --verify (both sides re-read and compared).
import fs from 'node:fs';
import path from 'node:path';
import {randomBytes} from 'node:crypto';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {runPausedAt} from '../helpers/paused.js';
import {dataBytes, fillFile, MiB, randomLayout, sha256, unitsOf, withTempDir, writeImage} from '../helpers/images.js';

const copy = suite('--copy and --verify');

copy('should make DST equal SRC with --copy even where DST held garbage in SRC zero ranges', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = randomLayout(16 * MiB + 4096 + 10, 4096, {zero: 0.25, hole: 0.25}, 41);
		writeImage(src, layout);
		fillFile(dst, layout.size, 0xa5);
		const result = runCli(['--copy', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
		assert.is(result.json!.bytesWritten, dataBytes(layout));
		assert.is(result.json!.blocksTotal - result.json!.blocksZero, unitsOf(layout, 'data').length);
	});
});

copy('should create a missing DST with --copy --truncate', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.25, hole: 0.25}, 42));
		const result = runCli(['--copy', '--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
	});
});

copy('should verify a sync: exit 0, verified true, said in the summary', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(16 * MiB, 4096, {zero: 0.25, hole: 0.25}, 43));
		fillFile(dst, 16 * MiB, 0x5a);
		const json = runCli(['--verify', '--json', src, dst]);
		assert.is(json.code, 0, json.stderr);
		assert.is(json.json!.verified, true);
		assert.is(sha256(dst), sha256(src));
		const plain = runCli(['--verify', src, dst]);
		assert.is(plain.code, 0, plain.stderr);
		assert.match(plain.stderr, /^verify\s+DST equals SRC$/m);
	});
});

copy('should report verified null without --verify', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(1 * MiB, 4096, {zero: 0.25, hole: 0.25}, 44));
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.json!.verified, null);
	});
});

copy('should exit 3 when SRC changes after the sync and --verify sees the difference', async () => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(32 * MiB, 4096, {zero: 0, hole: 0}, 45));
		// SRC's first block changes once the sync phase ended and SRC passed its check (a change during the
		// sync ends it with exit 2: test/e2e/src-change.test.ts), before the verify pass reads it.
		const result = await runPausedAt(['--verify', '--truncate', '--json', '--json-progress', '--workers', '1', src, dst], /"event":"start"[^\n]*"phase":"verify"/, () => {
			const fd = fs.openSync(src, 'r+');
			fs.writeSync(fd, randomBytes(4096), 0, 4096, 0);
			fs.closeSync(fd);
		});
		const json = JSON.parse(result.stdout.trim().split('\n').pop()!) as {verified: boolean | null; ok: boolean};
		assert.is(result.code, 3, result.stderr);
		assert.match(result.stderr, new RegExp(`^rblocksync: verify failed: 1 block of DST ${dst} differ from SRC$`, 'm'));
		assert.is(json.verified, false);
		assert.is(json.ok, false);
		assert.not.match(result.stderr, /verify\s+DST equals SRC/);
	});
});

copy.run();
