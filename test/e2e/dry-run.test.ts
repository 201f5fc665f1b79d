// --dry-run: compares and reports what would change, but writes, resizes and creates nothing.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {allocatedBytes, dataBytes, MiB, randomLayout, rewriteUnits, sha256, unitsOf, withTempDir, writeImage} from '../helpers/images.js';

const dryRun = suite('--dry-run');

/** A DST's observable state: bytes, size, allocation, mtime. */
function state(file: string): {hash: string; size: number; allocated: number; mtime: number} {
	const stat = fs.statSync(file);
	return {hash: sha256(file), size: stat.size, allocated: allocatedBytes(file), mtime: stat.mtimeMs};
}

dryRun('should report the blocks that differ without changing DST', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = randomLayout(16 * MiB, 4096, {zero: 0.2, hole: 0.2}, 31);
		writeImage(src, layout);
		fs.copyFileSync(src, dst);
		const data = unitsOf(layout, 'data');
		rewriteUnits(src, layout, data.slice(0, 12), 'data');
		rewriteUnits(src, layout, data.slice(-7), 'zero');
		const past = new Date('2021-06-01T00:00:00Z');
		fs.utimesSync(dst, past, past);
		const before = state(dst);
		const result = runCli(['--dry-run', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.ok(result.json!.dryRun);
		assert.is(result.json!.blocksChanged, 19);
		assert.is(result.json!.blocksPunched, 7);
		assert.equal(state(dst), before);
		assert.is(before.mtime, past.getTime());
	});
});

dryRun('should create nothing for a missing DST with --truncate', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'new.img');
		const layout = randomLayout(8 * MiB, 4096, {zero: 0.2, hole: 0.2}, 32);
		writeImage(src, layout);
		const result = runCli(['-n', '--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.json!.blocksChanged, dataBytes(layout) / 4096);
		assert.is(result.json!.bytesWritten, dataBytes(layout), 'bytesWritten reports what a real run would write');
		assert.not.ok(fs.existsSync(dst), 'a dry run created DST');
	});
});

dryRun('should not resize a DST of another size with --truncate', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.2, hole: 0.2}, 33));
		writeImage(dst, randomLayout(12 * MiB, 4096, {zero: 0.2, hole: 0.2}, 34));
		const before = state(dst);
		const result = runCli(['--dry-run', '--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.ok(result.json!.blocksChanged > 0);
		assert.equal(state(dst), before);
	});
});

dryRun('should say it is a dry run in the plain summary', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(1 * MiB, 4096, {zero: 0.2, hole: 0.2}, 35));
		fs.writeFileSync(dst, Buffer.alloc(1 * MiB, 7));
		const result = runCli(['--dry-run', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.match(result.stderr, /^dry run: .* compared \(dry run, nothing written\)$/m);
		assert.not.match(result.stderr, /in sync/);
	});
});

dryRun.run();
