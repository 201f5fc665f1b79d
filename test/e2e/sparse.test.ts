// Holes with the native helper: SEEK_DATA skips what is a hole on both sides, SRC holes become DST holes.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {randomBytes} from 'node:crypto';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {allocatedBytes, dataLayout, MiB, sha256, withTempDir, writeImage} from '../helpers/images.js';
import {nativeExpected, ranWithoutNative} from '../helpers/native.js';
import {skip} from '../helpers/skip.js';

const sparse = suite('sparse images');
const GiB = 1024 * MiB;
const NO_NATIVE = 'no native helper in this tree: the test needs SEEK_DATA and hole punching';

sparse('should sync a 128 GiB image holding 4 MiB of data in about the time of its data', async context => {
	if (!nativeExpected()) {
		return skip(context, NO_NATIVE);
	}
	await withTempDir(dir => {
		const src = path.join(dir, 'huge.img');
		const dst = path.join(dir, 'copy.img');
		const size = 128 * GiB;
		const at = 50 * GiB + 12_288;
		fs.writeFileSync(src, '');
		fs.truncateSync(src, size);
		const fd = fs.openSync(src, 'r+');
		fs.writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, at);
		fs.closeSync(fd);
		// Reading 128 GiB of holes takes minutes; skipping them takes well under a second.
		const first = runCli(['--truncate', '--json', src, dst], {timeoutMs: 30_000});
		assert.is(first.code, 0, first.stderr);
		assert.not.ok(ranWithoutNative(first), 'the native helper did not load');
		assert.ok(first.json!.seconds < 10, `took ${first.json!.seconds} s: holes were read`);
		assert.is(first.json!.bytesWritten, 4 * MiB);
		assert.is(fs.statSync(dst).size, size);
		assert.is(sha256(dst, at, at + 4 * MiB), sha256(src, at, at + 4 * MiB));
		assert.ok(allocatedBytes(dst) <= 4 * MiB + 256 * 1024, `DST allocates ${allocatedBytes(dst)} bytes`);
		const again = runCli(['--json', src, dst], {timeoutMs: 30_000});
		assert.is(again.code, 0, again.stderr);
		assert.is(again.json!.blocksChanged, 0);
		assert.ok(again.json!.seconds < 10, `resync took ${again.json!.seconds} s`);
	});
});

sparse('should punch DST where SRC had a hole punched since the last sync', async context => {
	if (!nativeExpected()) {
		return skip(context, NO_NATIVE);
	}
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, dataLayout(16 * MiB));
		assert.is(runCli(['--truncate', '--quiet', src, dst]).code, 0);
		const punch = spawnSync('fallocate', ['--punch-hole', '--offset', String(MiB), '--length', String(2 * MiB), src], {encoding: 'utf8'});
		assert.is(punch.status, 0, `fallocate: ${punch.stderr}`);
		const before = allocatedBytes(dst);
		const result = runCli(['--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.json!.blocksPunched, 512);
		assert.is(result.json!.bytesWritten, 0);
		assert.is(sha256(dst), sha256(src));
		assert.ok(before - allocatedBytes(dst) >= 2 * MiB, 'the hole was not punched in DST');
	});
});

sparse('should leave alone DST blocks that already read as zero where SRC has a hole', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = dataLayout(8 * MiB);
		writeImage(src, {...layout, kinds: layout.kinds.map((kind, i) => (i % 2 ? kind : 'hole'))});
		writeImage(dst, {...layout, kinds: layout.kinds.map((kind, i) => (i % 2 ? kind : 'zero'))});
		// DST: the same data blocks, but written zeros (allocated) where SRC has holes.
		const data = fs.openSync(dst, 'r+');
		const block = Buffer.alloc(4096);
		const from = fs.openSync(src, 'r');
		for (let i = 1; i < layout.kinds.length; i += 2) {
			fs.readSync(from, block, 0, 4096, i * 4096);
			fs.writeSync(data, block, 0, 4096, i * 4096);
		}
		fs.closeSync(from);
		fs.closeSync(data);
		const before = allocatedBytes(dst);
		const result = runCli(['--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.json!.blocksChanged, 0);
		assert.is(result.json!.blocksPunched, 0);
		assert.is(allocatedBytes(dst), before);
		assert.is(sha256(dst), sha256(src));
	});
});

sparse('should punch the garbage of a DST in SRC zero ranges with --copy', async context => {
	if (!nativeExpected()) {
		return skip(context, NO_NATIVE);
	}
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = dataLayout(16 * MiB);
		writeImage(src, {...layout, kinds: layout.kinds.map((kind, i) => (i % 4 === 0 ? kind : i % 2 ? 'zero' : 'hole'))});
		fs.writeFileSync(dst, randomBytes(16 * MiB));
		const result = runCli(['--copy', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
		assert.ok(allocatedBytes(dst) <= 4 * MiB + 256 * 1024, `DST still allocates ${allocatedBytes(dst)} bytes for 4 MiB of data`);
	});
});

sparse.run();
