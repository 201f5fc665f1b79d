import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {closeSync, fstatSync, fsyncSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {nativeLoadError, nativeOps, type NativeOps} from '../../source/native/native.js';
import {loopDeviceProblem, withLoopDevice} from '../helpers/loop-device.js';
import {skip} from '../helpers/skip.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const dir = mkdtempSync(join(tmpdir(), 'rbs-native-'));
let files = 0;

function ops(): NativeOps {
	const loaded = nativeOps();
	if (!loaded) {
		throw new Error(nativeLoadError());
	}
	return loaded;
}

// A new file in the temp dir with data written at each [offset, bytes] and the given size; returns an open fd.
function sparseFile(size: number, writes: Array<[number, Buffer]>): {fd: number; path: string} {
	const path = join(dir, `f${files++}.img`);
	const fd = openSync(path, 'w+');
	for (const [offset, data] of writes) {
		writeSync(fd, data, 0, data.length, offset);
	}
	ftruncateSync(fd, size);
	fsyncSync(fd);
	return {fd, path};
}

function read(fd: number, offset: number, length: number): Buffer {
	const buffer = Buffer.alloc(length);
	readSync(fd, buffer, 0, length, offset);
	return buffer;
}

function expectSystemError(fn: () => unknown, code: string, syscall: string, message: string): void {
	try {
		fn();
	} catch (error) {
		assert.instance(error, Error);
		assert.is((error as Error).message, message);
		assert.equal({code: Reflect.get(error as Error, 'code'), syscall: Reflect.get(error as Error, 'syscall')}, {code, syscall});
		assert.type(Reflect.get(error as Error, 'errno'), 'number');
		return;
	}
	assert.unreachable(`expected ${code} from ${syscall}`);
}

const loopProblem = await loopDeviceProblem();

const punchHole = suite('punchHole');

punchHole('should free the punched blocks and keep the size and the bytes around them', () => {
	const data = randomBytes(MiB);
	const {fd} = sparseFile(MiB, [[0, data]]);
	const before = fstatSync(fd).blocks;
	ops().punchHole(fd, 256 * KiB, 256 * KiB);
	const after = fstatSync(fd);
	assert.ok(before - after.blocks >= (256 * KiB) / 512 - 8, `blocks ${before} -> ${after.blocks}`);
	assert.is(after.size, MiB);
	assert.ok(read(fd, 0, 256 * KiB).equals(data.subarray(0, 256 * KiB)));
	assert.ok(read(fd, 256 * KiB, 256 * KiB).equals(Buffer.alloc(256 * KiB)));
	assert.ok(read(fd, 512 * KiB, 512 * KiB).equals(data.subarray(512 * KiB)));
	closeSync(fd);
});

punchHole('should throw EBADF from fallocate on a closed descriptor', () => {
	const {fd} = sparseFile(4 * KiB, []);
	closeSync(fd);
	expectSystemError(() => ops().punchHole(fd, 0, 4 * KiB), 'EBADF', 'fallocate', 'EBADF: bad file descriptor, fallocate');
});

punchHole('should reject offsets that are not safe integers instead of truncating them', () => {
	const {fd} = sparseFile(4 * KiB, []);
	assert.throws(() => ops().punchHole(fd, Number.NaN, 4 * KiB), /safe integers/);
	assert.throws(() => ops().punchHole(fd, 0.5, 4 * KiB), /safe integers/);
	closeSync(fd);
});

const seekData = suite('seekData');

seekData('should find each data extent of a file with holes, and -1 past the last one', () => {
	const {fd} = sparseFile(4 * MiB, [[0, randomBytes(4 * KiB)], [MiB, randomBytes(4 * KiB)]]);
	assert.is(ops().seekData(fd, 0), 0);
	assert.is(ops().seekData(fd, 4 * KiB), MiB);
	assert.is(ops().seekData(fd, MiB + 4 * KiB), -1);
	assert.is(ops().seekData(fd, 8 * MiB), -1);
	closeSync(fd);
});

const seekHole = suite('seekHole');

seekHole('should find the hole after each data extent, the file end counting as one', () => {
	const {fd} = sparseFile(4 * MiB, [[0, randomBytes(4 * KiB)], [MiB, randomBytes(4 * KiB)]]);
	assert.is(ops().seekHole(fd, 0), 4 * KiB);
	assert.is(ops().seekHole(fd, MiB), MiB + 4 * KiB);
	assert.is(ops().seekHole(fd, 2 * MiB), 2 * MiB);
	closeSync(fd);
});

seekHole('should throw ENXIO from lseek past the end of the file', () => {
	const {fd} = sparseFile(MiB, []);
	expectSystemError(() => ops().seekHole(fd, 2 * MiB), 'ENXIO', 'lseek', 'ENXIO: no such device or address, lseek');
	closeSync(fd);
});

const blockDeviceSize = suite('blockDeviceSize');

blockDeviceSize('should throw ENOTTY from ioctl on a regular file', () => {
	const {fd} = sparseFile(MiB, []);
	expectSystemError(() => ops().blockDeviceSize(fd), 'ENOTTY', 'ioctl', 'ENOTTY: inappropriate ioctl for device, ioctl');
	closeSync(fd);
});

blockDeviceSize('should equal the size of the file behind a loop device', async context => {
	if (loopProblem) {
		return skip(context, `no loop device: ${loopProblem}`);
	}
	const {fd, path} = sparseFile(3 * MiB, []);
	closeSync(fd);
	await withLoopDevice(path, device => {
		const deviceFd = openSync(device, 'r');
		try {
			assert.is(ops().blockDeviceSize(deviceFd), 3 * MiB);
		} finally {
			closeSync(deviceFd);
		}
	});
});

const zeroOut = suite('zeroOut');

zeroOut('should zero exactly the given range of a loop device', async context => {
	if (loopProblem) {
		return skip(context, `no loop device: ${loopProblem}`);
	}
	const data = randomBytes(MiB);
	const {fd, path} = sparseFile(MiB, [[0, data]]);
	closeSync(fd);
	await withLoopDevice(path, device => {
		const deviceFd = openSync(device, 'r+');
		try {
			ops().zeroOut(deviceFd, 64 * KiB, 128 * KiB);
			assert.ok(read(deviceFd, 0, 64 * KiB).equals(data.subarray(0, 64 * KiB)));
			assert.ok(read(deviceFd, 64 * KiB, 128 * KiB).equals(Buffer.alloc(128 * KiB)));
			assert.ok(read(deviceFd, 192 * KiB, MiB - 192 * KiB).equals(data.subarray(192 * KiB)));
		} finally {
			closeSync(deviceFd);
		}
	});
});

zeroOut('should throw ENOTTY from ioctl on a regular file', () => {
	const {fd} = sparseFile(MiB, []);
	expectSystemError(() => ops().zeroOut(fd, 0, 4 * KiB), 'ENOTTY', 'ioctl', 'ENOTTY: inappropriate ioctl for device, ioctl');
	closeSync(fd);
});

const fadvise = suite('fadvise');

fadvise('should accept every advice on a regular file', () => {
	const {fd} = sparseFile(MiB, [[0, randomBytes(4 * KiB)]]);
	for (const advice of ['sequential', 'dontneed', 'normal'] as const) {
		ops().fadvise(fd, 0, 0, advice);
	}
	closeSync(fd);
});

fadvise('should throw EBADF from posix_fadvise on a closed descriptor', () => {
	const {fd} = sparseFile(4 * KiB, []);
	closeSync(fd);
	expectSystemError(() => ops().fadvise(fd, 0, 0, 'normal'), 'EBADF', 'posix_fadvise', 'EBADF: bad file descriptor, posix_fadvise');
});

const lock = suite('lock');

lock('should share a shared lock, refuse a second exclusive one with EAGAIN, and free it on close', () => {
	const {fd, path} = sparseFile(4 * KiB, []);
	const other = openSync(path, 'r');
	ops().lock(fd, false);
	ops().lock(other, false);
	closeSync(other);
	ops().lock(fd, true);
	const second = openSync(path, 'r');
	expectSystemError(() => ops().lock(second, false), 'EAGAIN', 'flock', 'EAGAIN: resource temporarily unavailable, flock');
	expectSystemError(() => ops().lock(second, true), 'EAGAIN', 'flock', 'EAGAIN: resource temporarily unavailable, flock');
	closeSync(fd);
	ops().lock(second, true);
	closeSync(second);
});

lock('should throw EBADF from flock on a closed descriptor', () => {
	const {fd} = sparseFile(4 * KiB, []);
	closeSync(fd);
	expectSystemError(() => ops().lock(fd, true), 'EBADF', 'flock', 'EBADF: bad file descriptor, flock');
});

const blake3Blocks = suite('blake3Blocks');

blake3Blocks('should refuse an out or skip buffer too small for the blocks, and a length beyond the input', () => {
	const input = randomBytes(3 * 4 * KiB);
	const rangeError = (run: () => void): void => {
		assert.throws(run, (error: unknown) => error instanceof RangeError);
	};
	rangeError(() => ops().blake3Blocks(input, input.length, 4 * KiB, Buffer.alloc(2 * 32), 0, null));
	rangeError(() => ops().blake3Blocks(input, input.length, 4 * KiB, Buffer.alloc(3 * 32), 1, null));
	rangeError(() => ops().blake3Blocks(input, input.length, 4 * KiB, Buffer.alloc(3 * 32), 0, new Uint8Array(2)));
	rangeError(() => ops().blake3Blocks(input, input.length + 1, 4 * KiB, Buffer.alloc(4 * 32), 0, null));
	rangeError(() => ops().blake3Blocks(input, input.length, 0, Buffer.alloc(4 * 32), 0, null));
	assert.throws(() => ops().blake3Blocks(input, 1.5, 4 * KiB, Buffer.alloc(32), 0, null));
	const out = Buffer.alloc(3 * 32);
	assert.is(ops().blake3Blocks(input, input.length, 4 * KiB, out, 0, null), 3);
	assert.is(ops().blake3Blocks(input, 0, 4 * KiB, out, 0, null), 0);
});

punchHole.run();
seekData.run();
seekHole.run();
blockDeviceSize.run();
zeroOut.run();
fadvise.run();
lock.run();
blake3Blocks.run();
process.on('exit', () => rmSync(dir, {recursive: true, force: true}));
