// findHolders and QEMU's lock read off this host's /proc (and a fake one), against real holders.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {destinationInUse, findHolders, procLocksState, qemuLockOn, sourceInUse} from '../../source/image/in-use.js';
import {nativeOps} from '../../source/native/native.js';
import {holdersLeft, holdOpen, qemuToolProblem, startVm, stopAllHolders} from '../helpers/qemu-holder.js';
import {skip} from '../helpers/skip.js';

const test = suite('in-use');
const vmProblem = qemuToolProblem('qemu-system-x86_64');
let dir: string;

test.before(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-in-use-'));
});

test.after.each(async () => {
	const left = holdersLeft();
	await stopAllHolders();
	assert.equal(left, [], 'a holder outlived its test');
});

test.after(() => {
	fs.rmSync(dir, {recursive: true, force: true});
});

function image(name: string): string {
	const file = path.join(dir, name);
	fs.writeFileSync(file, Buffer.alloc(1024 * 1024, 7));
	return file;
}

test('should find a VM holding an image, with its write lock and its VM name, through the native helper and /proc/locks', async context => {
	if (vmProblem) {
		return skip(context, vmProblem);
	}
	const file = image('vm.img');
	const stat = fs.statSync(file);
	assert.equal(findHolders(file, stat), []);
	assert.equal(procLocksState(stat), {locked: false, writing: false});
	assert.equal(qemuLockOn(file, stat), {locked: false, writing: false});
	const vm = await startVm(file, {name: 'web1'});
	try {
		const holders = findHolders(file, stat);
		assert.equal(holders, [{pid: vm.pid, name: 'qemu-system-x86_64', writable: true, qemuLock: {locked: true, writing: true}, vm: 'web1'}]);
		assert.equal(procLocksState(stat), {locked: true, writing: true});
		if (nativeOps()?.ofdLock) {
			assert.equal(qemuLockOn(file, stat), {locked: true, writing: true});
		}
		assert.equal(findHolders(file, stat, {exclude: [vm.pid]}), [], 'a process of this run is left out');
		assert.match(destinationInUse(file, stat) ?? '', /^DST .* is in use by qemu-system-x86_64/);
		assert.match(sourceInUse(file, stat) ?? '', /^SRC .* is open for writing by qemu-system-x86_64/);
	} finally {
		await vm.stop();
	}
	assert.equal(procLocksState(stat), {locked: false, writing: false}, 'QEMU\'s locks go with it');
});

test('should see a reader as no reason to refuse, and never count this process', async () => {
	const file = image('plain.img');
	const stat = fs.statSync(file);
	const own = fs.openSync(file, 'r+');
	const reader = await holdOpen(file, false);
	try {
		assert.equal(findHolders(file, stat), [{pid: reader.pid, name: 'sleep', writable: false, qemuLock: {locked: false, writing: false}, vm: undefined}]);
		assert.is(destinationInUse(file, stat), undefined);
		assert.is(sourceInUse(file, stat), undefined);
	} finally {
		fs.closeSync(own);
		await reader.stop();
	}
});

test('should read QEMU\'s lock off a /proc/locks for the file\'s device and inode only', () => {
	const proc = fs.mkdtempSync(path.join(dir, 'proc-'));
	const dev = 0xfe00; // fe:00
	fs.writeFileSync(path.join(proc, 'locks'), [
		'1: POSIX  ADVISORY  WRITE 4242 fe:00:77 0 EOF',
		'2: OFDLCK ADVISORY  READ -1 fe:00:78 100 101',
		'3: OFDLCK ADVISORY  READ -1 fe:00:77 201 201',
		'',
	].join('\n'));
	assert.equal(procLocksState({dev, ino: 77}, proc), {locked: true, writing: false});
	assert.equal(procLocksState({dev, ino: 78}, proc), {locked: true, writing: true});
	assert.equal(procLocksState({dev: 0x801, ino: 78}, proc), {locked: false, writing: false});
	assert.equal(procLocksState({dev, ino: 78}, path.join(proc, 'missing')), {locked: false, writing: false});
});

test.run();
