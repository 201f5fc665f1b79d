// Block devices (loop devices over generated images, as root): file->device, device->file, device->device, sizes.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {setTimeout as sleep} from 'node:timers/promises';
import {runCli, startCli, stderrLines} from '../helpers/cli.js';
import {holdLock} from '../helpers/lock.js';
import {allocatedBytes, allocationSlack, dataBytes, dataLayout, fillFile, MiB, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';
import {withLoop} from '../helpers/loop.js';

const loop = suite('loop devices');

loop('should sync a file onto a device holding garbage, then find nothing to do', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		writeImage(src, randomLayout(16 * MiB, 4096, {zero: 0.25, hole: 0.25}, 71));
		fillFile(backing, 16 * MiB, 0x77);
		const attached = await withLoop(context, [backing], ([device]) => {
			const result = runCli(['--json', src, device!]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.size, 16 * MiB);
			assert.is(result.json!.dstExtraBytes, 0);
			assert.ok(result.json!.blocksPunched > 0, 'zero SRC blocks must be zeroed on the device');
			assert.is(sha256(device!), sha256(src));
			const again = runCli(['--json', src, device!]);
			assert.is(again.code, 0, again.stderr);
			assert.is(again.json!.blocksChanged, 0);
			assert.is(again.json!.bytesWritten, 0);
		});
		if (!attached) {
			return;
		}
		assert.is(sha256(backing), sha256(src), 'the data reached the backing file');
	});
});

loop('should sync a device into a new sparse file with --truncate', async context => {
	await withTempDir(async dir => {
		const backing = path.join(dir, 'dev.img');
		const dst = path.join(dir, 'dst.img');
		const layout = randomLayout(16 * MiB, 4096, {zero: 0.25, hole: 0.25}, 72);
		writeImage(backing, layout);
		await withLoop(context, [backing], ([device]) => {
			const missing = runCli([device!, dst]);
			assert.is(missing.code, 1, 'a missing DST still needs --truncate');
			const result = runCli(['--truncate', '--json', device!, dst]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.size, 16 * MiB, 'the size of a block device is read from the device');
			assert.is(fs.statSync(dst).size, 16 * MiB);
			assert.is(sha256(dst), sha256(device!));
			assert.is(result.json!.bytesWritten, dataBytes(layout));
			assert.ok(allocatedBytes(dst) <= dataBytes(layout) + allocationSlack(layout.size), 'zero blocks of the device were written into the file');
		});
	});
});

loop('should sync a device onto a device', async context => {
	await withTempDir(async dir => {
		const a = path.join(dir, 'a.img');
		const b = path.join(dir, 'b.img');
		writeImage(a, randomLayout(16 * MiB, 4096, {zero: 0.25, hole: 0.25}, 73));
		writeImage(b, randomLayout(16 * MiB, 4096, {zero: 0.25, hole: 0.25}, 74));
		await withLoop(context, [a, b], ([src, dst]) => {
			const result = runCli(['--json', '--verify', src!, dst!]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.verified, true);
			assert.is(sha256(dst!), sha256(src!));
			assert.is(result.json!.dstExtraBytes, 0);
		});
	});
});

loop('should refuse a device as both SRC and DST', async context => {
	await withTempDir(async dir => {
		const a = path.join(dir, 'a.img');
		writeImage(a, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 75));
		const hash = sha256(a);
		const attached = await withLoop(context, [a], ([device]) => {
			const result = runCli([device!, device!]);
			assert.is(result.code, 1);
			assert.equal(stderrLines(result), [`rblocksync: SRC and DST are the same device: ${device}`]);
		});
		if (!attached) {
			return;
		}
		assert.is(sha256(a), hash);
	});
});

loop('should sync only SRC size onto a larger device, say so, and leave the rest untouched', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		const size = 8 * MiB + 4096 + 100; // not a multiple of the block size nor of 512
		writeImage(src, randomLayout(size, 4096, {zero: 0.25, hole: 0.25}, 76));
		writeImage(backing, randomLayout(12 * MiB, 4096, {zero: 0, hole: 0}, 77));
		const tail = sha256(backing, size);
		const attached = await withLoop(context, [backing], ([device]) => {
			const result = runCli(['--json', src, device!]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.dstExtraBytes, 12 * MiB - size);
			assert.is(sha256(device!, 0, size), sha256(src));
			assert.is(sha256(device!, size), tail, 'bytes beyond SRC size changed');
			const plain = runCli([src, device!]);
			assert.is(plain.code, 0, plain.stderr);
			assert.match(plain.stderr, `only the first ${size} bytes were synced`);
		});
		if (!attached) {
			return;
		}
		assert.is(sha256(backing, size), tail);
	});
});

loop('should zero a short last block of SRC on a larger device (a length not a multiple of 512)', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		const size = 4 * MiB + 100;
		const layout = dataLayout(size);
		writeImage(src, {...layout, kinds: layout.kinds.map((kind, i) => (i === layout.kinds.length - 1 ? 'hole' : kind))});
		fillFile(backing, 8 * MiB, 0x77);
		const tail = sha256(backing, size);
		await withLoop(context, [backing], ([device]) => {
			const result = runCli(['--json', src, device!]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.blocksPunched, 1);
			assert.is(result.json!.bytesPunched, 100);
			assert.is(sha256(device!, 0, size), sha256(src));
			assert.is(sha256(device!, size), tail, 'zeroing went past SRC size');
		});
	});
});

loop('should zero 512-byte blocks on a device with 4096-byte logical sectors', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		const layout = dataLayout(4 * MiB, 512);
		const zeroed = [1, 3, 5, 9, 100, 1001];
		writeImage(src, {...layout, kinds: layout.kinds.map((kind, i) => (zeroed.includes(i) ? 'zero' : kind))});
		fillFile(backing, 4 * MiB, 0x77);
		await withLoop(context, [backing], ([device]) => {
			const result = runCli(['--json', '-b', '512', src, device!]);
			assert.is(result.code, 0, result.stderr);
			assert.is(result.json!.blocksPunched, zeroed.length);
			assert.is(sha256(device!), sha256(src));
		}, 4096);
	});
});

loop('should refuse a device another process holds exclusively (e.g. a concurrent sync)', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 80));
		writeImage(backing, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 81));
		const hash = sha256(backing);
		const attached = await withLoop(context, [backing], ([device]) => {
			const held = fs.openSync(device!, fs.constants.O_RDONLY | fs.constants.O_EXCL);
			try {
				const result = runCli([src, device!]);
				assert.is(result.code, 1, result.stderr);
				assert.equal(stderrLines(result), [`rblocksync: DST ${device}: the device is in use (mounted or held by the kernel); use --force to write to it anyway`]);
			} finally {
				fs.closeSync(held);
			}
		});
		if (!attached) {
			return;
		}
		assert.is(sha256(backing), hash);
	});
});

loop('should wait out a brief shared lock on a device (udev probing it), and refuse one that stays', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 82));
		writeImage(backing, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 83));
		const hash = sha256(backing);
		await withLoop(context, [backing], async ([device]) => {
			const writer = await holdLock(device!);
			const started = Date.now();
			try {
				const refused = runCli([src, device!]);
				assert.is(refused.code, 1, refused.stderr);
				assert.equal(stderrLines(refused), [`rblocksync: DST ${device} is locked by another process (another rblocksync run?); try again when it has finished`]);
				assert.ok(Date.now() - started >= 2500, 'a device lock is retried for a few seconds before a refusal');
			} finally {
				await writer.release();
			}
			assert.is(sha256(backing), hash);
			const prober = await holdLock(device!, true);
			const cli = startCli([src, device!]);
			await sleep(500);
			await prober.release();
			const result = await cli.done;
			assert.is(result.code, 0, result.stderr);
			assert.is(sha256(device!, 0, 4 * MiB), sha256(src));
		});
	});
});

loop('should refuse a device smaller than SRC, leaving it untouched', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'dev.img');
		writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.25, hole: 0.25}, 78));
		writeImage(backing, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 79));
		const hash = sha256(backing);
		const attached = await withLoop(context, [backing], ([device]) => {
			const result = runCli(['--truncate', src, device!]);
			assert.is(result.code, 1);
			assert.equal(stderrLines(result), [`rblocksync: DST ${device} is ${4 * MiB} bytes, smaller than SRC (${8 * MiB} bytes)`]);
		});
		if (!attached) {
			return;
		}
		assert.is(sha256(backing), hash);
	});
});

loop.run();
