// --truncate: the only way a DST file is created or resized; without it a size mismatch is refused untouched.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, stderrLines} from '../helpers/cli.js';
import {allocatedBytes, allocationSlack, dataBytes, dataLayout, type Layout, MiB, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';

const truncate = suite('--truncate');

truncate('should refuse a missing DST without --truncate and create nothing', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'missing.img');
		writeImage(src, dataLayout(1 * MiB));
		const result = runCli([src, dst]);
		assert.is(result.code, 1);
		assert.equal(stderrLines(result), [`rblocksync: DST ${dst} does not exist; use --truncate to create it`]);
		assert.not.ok(fs.existsSync(dst));
	});
});

for (const [label, dstSize] of [['larger', 9 * MiB], ['smaller', 7 * MiB + 5]] as const) {
	truncate(`should refuse a ${label} DST file without --truncate and leave it untouched`, async () => {
		await withTempDir(dir => {
			const src = path.join(dir, 'src.img');
			const dst = path.join(dir, 'dst.img');
			writeImage(src, dataLayout(8 * MiB));
			writeImage(dst, randomLayout(dstSize, 4096, {zero: 0.1, hole: 0.1}, 2));
			const before = {hash: sha256(dst), mtime: fs.statSync(dst).mtimeMs};
			const result = runCli(['--json', src, dst]);
			assert.is(result.code, 1);
			assert.equal(stderrLines(result), [`rblocksync: DST ${dst} is ${dstSize} bytes but SRC is ${8 * MiB} bytes; use --truncate to resize DST`]);
			// A refused run still prints its --json summary: not ok, the error, nothing scanned or written.
			assert.is(result.json?.ok, false);
			assert.is(result.json?.error, `DST ${dst} is ${dstSize} bytes but SRC is ${8 * MiB} bytes; use --truncate to resize DST`);
			assert.is(result.json?.bytesWritten, 0);
			assert.is(fs.statSync(dst).size, dstSize);
			assert.is(sha256(dst), before.hash);
			assert.is(fs.statSync(dst).mtimeMs, before.mtime);
		});
	});
}

truncate('should shrink a larger DST file to SRC size with --truncate, freeing the tail', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = randomLayout(8 * MiB + 100, 4096, {zero: 0.2, hole: 0.2}, 4);
		writeImage(src, layout);
		writeImage(dst, dataLayout(24 * MiB));
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(fs.statSync(dst).size, layout.size);
		assert.is(sha256(dst), sha256(src));
		assert.ok(allocatedBytes(dst) <= 8 * MiB + allocationSlack(layout.size), 'the cut tail must be freed');
	});
});

truncate('should grow a smaller DST file to SRC size with --truncate, leaving the new part a hole where SRC is zero', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		// SRC: 8 MiB of data, then 24 MiB that is zero (written zeros and holes) but for 6 data blocks.
		const kinds: Layout['kinds'] = Array.from({length: 8192}, (_, i) => (i < 2048 ? 'data' : i % 1000 === 0 ? 'data' : i % 2 ? 'zero' : 'hole'));
		const layout: Layout = {size: 32 * MiB, unit: 4096, kinds};
		writeImage(src, layout);
		fs.copyFileSync(src, dst);
		fs.truncateSync(dst, 8 * MiB);
		const before = allocatedBytes(dst);
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(fs.statSync(dst).size, 32 * MiB);
		assert.is(sha256(dst), sha256(src));
		assert.is(result.json!.bytesWritten, dataBytes(layout) - 8 * MiB, 'only the data blocks of the new part are written');
		assert.is(result.json!.blocksPunched, 0);
		const grown = allocatedBytes(dst) - before;
		assert.ok(grown <= 6 * 4096 + 64 * 1024, `the grown part allocates ${grown} bytes for 6 data blocks`);
	});
});

truncate('should leave a same-size DST alone with --truncate when nothing differs', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 8));
		fs.copyFileSync(src, dst);
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.json!.blocksChanged, 0);
		assert.is(sha256(dst), sha256(src));
	});
});

truncate.run();
