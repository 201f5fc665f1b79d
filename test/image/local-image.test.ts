import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {LocalImage, blockDeviceSize} from '../../source/image/local-image.js';
import {nativeOps} from '../../source/native/native.js';
import {loopDeviceProblem} from '../helpers/loop-device.js';
import {skip} from '../helpers/skip.js';
import {imageConformance} from './image-conformance.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-image-'));
process.on('exit', () => fs.rmSync(dir, {recursive: true, force: true}));

imageConformance('local file', {
	sparse: nativeOps() !== undefined,
	create(size) {
		const file = path.join(dir, `f${Math.random()}`);
		fs.writeFileSync(file, '');
		fs.truncateSync(file, size);
		const image = new LocalImage(fs.openSync(file, 'r+'), file, 'file', size);
		return {
			image,
			allocated: () => fs.fstatSync(image.fd).blocks * 512,
			cleanup() {
				image.close();
				fs.rmSync(file);
			},
		};
	},
});

const loopProblem = await loopDeviceProblem();
if (!loopProblem) {
	imageConformance('block device', {
		sparse: false,
		create(size) {
			const file = path.join(dir, `loop${Math.random()}`);
			fs.writeFileSync(file, '');
			fs.truncateSync(file, size);
			const device = execFileSync('losetup', ['-f', '--show', file], {encoding: 'utf8'}).trim();
			const fd = fs.openSync(device, 'r+');
			const image = new LocalImage(fd, device, 'block', blockDeviceSize(fd, fs.fstatSync(fd).rdev));
			return {
				image,
				cleanup() {
					image.close();
					execFileSync('losetup', ['-d', device]);
					fs.rmSync(file);
				},
			};
		},
	});
} else {
	const blockDevice = suite('Image conformance: block device');
	blockDevice('should pass the image conformance suite on a loop device', context => skip(context, `no loop device: ${loopProblem}`));
	blockDevice.run();
}

const shrunk = suite('LocalImage of a file that shrank');

shrunk('should throw on an end of file inside its size, naming the image, and read zeros past its size', () => {
	const file = path.join(dir, 'shrunk.img');
	fs.writeFileSync(file, randomBytes(8192));
	const image = new LocalImage(fs.openSync(file, 'r'), file, 'file', 16_384, () => {});
	const past = new LocalImage(fs.openSync(file, 'r'), file, 'file', 8192, () => {});
	const buffer = Buffer.alloc(4096, 7);
	try {
		image.read(buffer, 0, 4096, 4096);
		assert.throws(() => image.read(Buffer.alloc(8192), 0, 8192 - 100, 4196), (error: Error) => error.message === `${file}: read at offset 8192: end of file inside its size of 16384 bytes (did it shrink during the sync?)`);
		past.read(buffer, 0, 4096, 8192);
		assert.ok(buffer.equals(Buffer.alloc(4096)), 'past the image\'s own size: zeros');
	} finally {
		image.close();
		past.close();
	}
});

shrunk.run();
