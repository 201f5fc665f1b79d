import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {execFileSync} from 'node:child_process';
import {suite} from 'uvu';
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
