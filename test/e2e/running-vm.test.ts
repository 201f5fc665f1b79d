// A DST that a running VM (or any other writer) uses is refused, exit 1, naming the process, DST's bytes
// unchanged; --force writes it anyway; a SRC a VM writes only warns. Real QEMU processes hold the images.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type CliResult, runCli, stderrLines} from '../helpers/cli.js';
import {dataLayout, MiB, makeTempDir, randomLayout, removeTempDir, rewriteUnits, sha256, writeImage} from '../helpers/images.js';
import {holdersLeft, holdOpen, qemuToolProblem, startStorageDaemon, startVm, stopAllHolders} from '../helpers/qemu-holder.js';
import {loopDeviceProblem, withLoopDevice} from '../helpers/loop-device.js';
import {compareImages, makeQcow2, serversLeft} from '../helpers/formats.js';
import {qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {skip} from '../helpers/skip.js';
import {FIRST_PROGRESS, runPausedAt} from '../helpers/paused.js';
import {nativeOps} from '../../source/native/native.js';

const test = suite('running VM');
const vmProblem = qemuToolProblem('qemu-system-x86_64');
const daemonProblem = qemuToolProblem('qemu-storage-daemon');
let dir: string;

test.before(() => {
	dir = makeTempDir('rbs-running-vm-');
});

test.after.each(async () => {
	const left = holdersLeft();
	await stopAllHolders();
	assert.equal(left, [], 'a holder outlived its test');
});

test.after(() => {
	removeTempDir(dir);
});

/** SRC and a DST that differs from it in a few blocks; DST's hash. */
function pair(name: string): {src: string; dst: string; hash: string} {
	const layout = randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 11);
	const src = path.join(dir, `${name}-src.img`);
	const dst = path.join(dir, `${name}-dst.img`);
	writeImage(src, layout);
	writeImage(dst, layout);
	rewriteUnits(dst, layout, [3, 200, 900], 'data');
	return {src, dst, hash: sha256(dst)};
}

function assertRefused(result: CliResult, message: string): void {
	assert.is(result.code, 1, `exit ${result.code}; stderr: ${result.stderr}`);
	assert.equal(stderrLines(result), [`rblocksync: ${message}`]);
}

test('should refuse a DST a paused VM uses, naming QEMU, its pid and the VM, and write it with --force', async context => {
	if (vmProblem) {
		return skip(context, vmProblem);
	}
	const {src, dst, hash} = pair('vm');
	const vm = await startVm(dst, {name: 'web1'});
	try {
		assertRefused(runCli([src, dst]), `DST ${dst} is in use by qemu-system-x86_64 (pid ${vm.pid}, VM web1?): stop the VM or sync to another volume`);
		assert.is(sha256(dst), hash, 'DST changed');
		// Without the native helper: the same refusal, from /proc.
		assertRefused(runCli([src, dst], {env: {RBLOCKSYNC_NO_NATIVE: '1'}}), `DST ${dst} is in use by qemu-system-x86_64 (pid ${vm.pid}, VM web1?): stop the VM or sync to another volume`);
		assert.is(runCli(['--dry-run', src, dst]).code, 1, 'a dry run says what the run would: refused');
		assert.is(sha256(dst), hash, 'DST changed');
		const forced = runCli(['--force', src, dst]);
		assert.is(forced.code, 0, forced.stderr);
		assert.is(sha256(dst), sha256(src));
	} finally {
		await vm.stop();
	}
});

test('should refuse a DST a read-only VM disk or a qemu-storage-daemon holds, writable or not', async context => {
	if (vmProblem || daemonProblem) {
		return skip(context, (vmProblem ?? daemonProblem)!);
	}
	const {src, dst, hash} = pair('daemon');
	const reader = await startVm(dst, {readOnly: true});
	try {
		assertRefused(runCli([src, dst]), `DST ${dst} is in use by qemu-system-x86_64 (pid ${reader.pid}): stop the VM or sync to another volume`);
	} finally {
		await reader.stop();
	}
	for (const writable of [true, false]) {
		const daemon = await startStorageDaemon(dst, path.join(dir, `qsd-${writable}.sock`), writable);
		try {
			assertRefused(runCli([src, dst]), `DST ${dst} is in use by qemu-storage-daemon (pid ${daemon.pid}): stop the VM or sync to another volume`);
		} finally {
			await daemon.stop();
		}
	}
	assert.is(sha256(dst), hash, 'DST changed');
	const after = runCli([src, dst]);
	assert.is(after.code, 0, after.stderr);
	assert.is(sha256(dst), sha256(src));
});

test('should refuse a DST another process has open for writing, not one that only reads it', async () => {
	const {src, dst, hash} = pair('writer');
	const writer = await holdOpen(dst, true);
	try {
		assertRefused(runCli([src, dst]), `DST ${dst} is open for writing by sleep (pid ${writer.pid}): stop it or sync to another volume`);
		assertRefused(runCli([src, dst], {env: {RBLOCKSYNC_NO_NATIVE: '1'}}), `DST ${dst} is open for writing by sleep (pid ${writer.pid}): stop it or sync to another volume`);
		assert.is(sha256(dst), hash, 'DST changed');
	} finally {
		await writer.stop();
	}
	const reader = await holdOpen(dst, false);
	try {
		const result = runCli([src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
	} finally {
		await reader.stop();
	}
});

test('should warn that a SRC a VM writes is copied crash-consistent at best, and still sync it', async context => {
	if (vmProblem) {
		return skip(context, vmProblem);
	}
	const {src, dst} = pair('source');
	const vm = await startVm(src, {name: 'db'});
	try {
		const result = runCli([src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.equal(stderrLines(result).filter(line => line.includes('warning')), [
			`rblocksync: warning: SRC ${src} is open for writing by qemu-system-x86_64 (pid ${vm.pid}, VM db?): the copy is crash-consistent at best; `
			+ 'for a consistent one, make the last pass with the VM stopped, or paused with --qmp (each pass sends only what changed): see RUNNING VMS in rblocksync(1)',
		]);
		assert.is(sha256(dst), sha256(src));
	} finally {
		await vm.stop();
	}
});

test('should refuse a block device a VM uses, found through the device it opened', async context => {
	const problem = vmProblem ?? await loopDeviceProblem();
	if (problem) {
		return skip(context, problem);
	}
	const {src, dst, hash} = pair('device');
	await withLoopDevice(dst, async device => {
		const vm = await startVm(device, {name: 'vm100'});
		try {
			assertRefused(runCli([src, device]), `DST ${device} is in use by qemu-system-x86_64 (pid ${vm.pid}, VM vm100?): stop the VM or sync to another volume`);
			assert.is(sha256(device), hash, 'the device changed');
			assert.is(runCli(['--force', src, device]).code, 0);
			assert.is(sha256(device), sha256(src));
		} finally {
			await vm.stop();
		}
	});
});

test('should refuse a qcow2 DST a VM runs before its own qemu-nbd opens it, and never its own server', async context => {
	const problem = vmProblem ?? qemuNbdProblem();
	if (problem) {
		return skip(context, problem);
	}
	const src = path.join(dir, 'fmt-src.qcow2');
	const dst = path.join(dir, 'fmt-dst.qcow2');
	makeQcow2(src, 8 * MiB, ['write -P 0x5a 0 1M', 'write -P 0x33 6M 64k']);
	// This run's own qemu-nbd (and the run before it) is no reason to refuse.
	for (const round of [1, 2]) {
		const own = runCli(['--format', 'qcow2', '--truncate', src, dst]);
		assert.is(own.code, 0, `round ${round}: ${own.stderr}`);
		assert.is(compareImages(src, 'qcow2', dst, 'qcow2'), undefined);
	}
	makeQcow2(src, 8 * MiB, ['write -P 0x11 0 1M']);
	const hash = sha256(dst);
	const vm = await startVm(dst, {format: 'qcow2', name: 'web2'});
	try {
		assertRefused(runCli(['--format', 'qcow2', src, dst]), `DST ${dst} is in use by qemu-system-x86_64 (pid ${vm.pid}, VM web2?): stop the VM or sync to another volume`);
		assert.is(sha256(dst), hash, 'the qcow2 changed');
	} finally {
		await vm.stop();
	}
	assert.equal(await serversLeft(dir), [], 'qemu-nbd servers left behind');
});

test('should keep a VM from starting on the DST a run is writing (QEMU\'s writer locks held meanwhile)', async context => {
	if (vmProblem) {
		return skip(context, vmProblem);
	}
	if (!nativeOps()?.ofdReadLock) {
		return skip(context, 'the native helper (with OFD locks) is not built');
	}
	// On tmpfs when there is one: the 1 GiB written here need not reach the disk.
	const shm = makeTempDir('rbs-running-vm-', fs.existsSync('/dev/shm') ? '/dev/shm' : undefined);
	const src = path.join(shm, 'busy-src.img');
	const dst = path.join(shm, 'busy-dst.img');
	try {
		writeImage(src, dataLayout(512 * MiB, MiB));
		let started: ReturnType<typeof spawnSync> | undefined;
		const result = await runPausedAt([src, dst, '--truncate', '-w', '1', '--json-progress'], FIRST_PROGRESS, () => {
			// A VM that got its disk would run (paused) until the timeout kills it.
			started = spawnSync('qemu-system-x86_64', ['-S', '-nodefaults', '-display', 'none', '-drive', `file=${dst},format=raw,if=virtio`], {encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL'});
		});
		assert.is(started?.status, 1, `QEMU started on a DST being written: ${String(started?.stderr)}`);
		assert.match(String(started?.stderr), /Failed to get "write" lock/);
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
		// The run is over: its locks went with it.
		const vm = await startVm(dst);
		await vm.stop();
	} finally {
		removeTempDir(shm);
	}
});

test.run();
