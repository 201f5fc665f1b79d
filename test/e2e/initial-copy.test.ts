// First sync into a missing file (--truncate): bytes equal, zero runs and holes never written.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {allocatedBytes, allocationSlack, dataBytes, dataLayout, MiB, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';

const initial = suite('initial copy');

initial('should copy a sparse image into a missing file, allocating only its data', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = randomLayout(32 * MiB, 4096, {zero: 0.25, hole: 0.25}, 7);
		writeImage(src, layout);
		const data = dataBytes(layout);
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
		assert.is(fs.statSync(dst).size, layout.size);
		const json = result.json!;
		assert.ok(json.ok);
		assert.is(json.size, layout.size);
		assert.is(json.blocksTotal, layout.size / 4096);
		assert.is(json.blocksChanged, data / 4096, 'every data block, and only those, is written');
		assert.is(json.bytesWritten, data);
		assert.is(json.blocksZero, layout.size / 4096 - data / 4096);
		assert.is(json.blocksPunched, 0, 'a new file has nothing to punch');
		const allocated = allocatedBytes(dst);
		assert.ok(allocated <= data + allocationSlack(layout.size), `DST allocates ${allocated} bytes for ${data} bytes of data: zero blocks were written`);
		assert.ok(allocated < allocatedBytes(src), 'DST must not allocate the written zero runs of SRC');
	});
});

initial('should copy an image whose size is not a multiple of the block size', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const size = 8 * MiB + 4096 * 3 + 1234;
		writeImage(src, dataLayout(size));
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(fs.statSync(dst).size, size);
		assert.is(sha256(dst), sha256(src));
		assert.is(result.json!.blocksTotal, Math.ceil(size / 4096));
		assert.is(result.json!.bytesWritten, size);
	});
});

initial('should sync a short last block that changed in its last byte only', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const size = 4 * MiB + 777;
		writeImage(src, dataLayout(size));
		fs.copyFileSync(src, dst);
		const fd = fs.openSync(src, 'r+');
		const last = Buffer.alloc(1);
		fs.readSync(fd, last, 0, 1, size - 1);
		fs.writeSync(fd, Buffer.from([last[0]! ^ 0xff]), 0, 1, size - 1);
		fs.closeSync(fd);
		const result = runCli(['--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.json!.blocksChanged, 1);
		assert.is(result.json!.bytesWritten, 777, 'only the real length of the short block is written');
		assert.is(fs.statSync(dst).size, size);
		assert.is(sha256(dst), sha256(src));
	});
});

initial('should sync an empty SRC: create an empty DST, resync it, empty a larger DST with --truncate', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'empty.img');
		const dst = path.join(dir, 'dst.img');
		fs.writeFileSync(src, '');
		const created = runCli(['--truncate', '--json', src, dst]);
		assert.is(created.code, 0, created.stderr);
		assert.is(fs.statSync(dst).size, 0);
		assert.is(created.json!.blocksTotal, 0);
		assert.is(created.json!.blocksChanged, 0);
		const again = runCli(['--json', src, dst]);
		assert.is(again.code, 0, again.stderr);
		assert.ok(again.json!.ok);
		assert.is(fs.statSync(dst).size, 0);
		writeImage(dst, dataLayout(1 * MiB));
		const shrunk = runCli(['--truncate', '--json', src, dst]);
		assert.is(shrunk.code, 0, shrunk.stderr);
		assert.is(fs.statSync(dst).size, 0, 'an empty SRC must empty DST');
		assert.is(allocatedBytes(dst), 0);
	});
});

for (const blockSize of [512, 65_536]) {
	initial(`should copy and resync with --block-size ${blockSize}`, async () => {
		await withTempDir(dir => {
			const src = path.join(dir, 'src.img');
			const dst = path.join(dir, 'dst.img');
			const size = 8 * MiB + 3 * blockSize + 100;
			const layout = randomLayout(size, blockSize, {zero: 0.2, hole: 0.2}, blockSize);
			writeImage(src, layout);
			const first = runCli(['--truncate', '--json', '--block-size', String(blockSize), src, dst]);
			assert.is(first.code, 0, first.stderr);
			assert.is(sha256(dst), sha256(src));
			assert.is(first.json!.blockSize, blockSize);
			assert.is(first.json!.blocksTotal, Math.ceil(size / blockSize));
			assert.is(first.json!.bytesWritten, dataBytes(layout));
			const second = runCli(['--json', '-b', String(blockSize), src, dst]);
			assert.is(second.code, 0, second.stderr);
			assert.is(second.json!.blocksChanged, 0);
			assert.is(second.json!.bytesWritten, 0);
		});
	});
}

initial('should give the same bytes and counts with --workers 1 and --workers 3', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const layout = randomLayout(24 * MiB + 512, 4096, {zero: 0.3, hole: 0.2}, 3);
		writeImage(src, layout);
		const runs = [1, 3].map(workers => {
			const dst = path.join(dir, `dst-${workers}.img`);
			const result = runCli(['--truncate', '--json', '--workers', String(workers), src, dst]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.workers, workers);
			return {hash: sha256(dst), json: result.json!};
		});
		assert.is(runs[0]!.hash, sha256(src));
		assert.is(runs[1]!.hash, sha256(src));
		for (const key of ['blocksTotal', 'blocksChanged', 'blocksZero', 'blocksPunched', 'bytesWritten', 'bytesPunched'] as const) {
			assert.is(runs[1]!.json[key], runs[0]!.json[key], key);
		}
	});
});

initial.run();
