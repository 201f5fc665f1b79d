import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {execFileSync} from 'node:child_process';
import {LocalImage, blockDeviceSize} from '../../source/image/local-image.js';
import {nativeOps} from '../../source/native/native.js';
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

let loopWorks = true;
try {
	execFileSync('losetup', ['--version'], {stdio: 'ignore'});
} catch {
	loopWorks = false;
}
if (loopWorks) {
	imageConformance('block device', {
		sparse: false,
		create(size) {
			const file = path.join(dir, `loop${Math.random()}`);
			fs.writeFileSync(file, '');
			fs.truncateSync(file, size);
			let device: string;
			try {
				device = execFileSync('losetup', ['-f', '--show', file], {encoding: 'utf8'}).trim();
			} catch (error) {
				console.log(`skipping block device conformance: losetup failed: ${(error as Error).message.split('\n')[0]}`);
				throw error;
			}
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
	console.log('skipping block device conformance: losetup is not available');
}
