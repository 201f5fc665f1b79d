// Over SSH the remote agent checks its own host: a DST a running VM (or a writer) uses is refused with the
// usual one-line precondition error (exit 1, host prefixed), DST's bytes unchanged; a SRC a VM writes warns on
// the driver's stderr and still syncs; a qcow2 DST served by the run's own qemu-nbd is never refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, runCli, sameContent} from '../helpers/remote-images.js';
import {sha256} from '../helpers/images.js';
import {compareImages, makeQcow2, serversLeft} from '../helpers/formats.js';
import {qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {holdersLeft, holdOpen, qemuToolProblem, startVm, stopAllHolders} from '../helpers/qemu-holder.js';
import {skip} from '../helpers/skip.js';

const test = suite('running VM over SSH');
const vmProblem = qemuToolProblem('qemu-system-x86_64');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-ssh-vm-'));
});

test.after.each(async () => {
	const left = holdersLeft();
	await stopAllHolders();
	assert.equal(left, [], 'a holder outlived its test');
});

test.after(async () => {
	await sshd.stop();
	fs.rmSync(dir, {recursive: true, force: true});
});

const at = (name: string): string => path.join(dir, name);
/** stderr without the native helper's notice. */
const lines = (stderr: string): string[] => stderr.split('\n').filter(line => line !== '' && !line.includes('native helper'));

/** SRC and a DST that differs from it; DST's hash. */
function pair(name: string): {src: string; dst: string; hash: string} {
	const src = at(`${name}-src.img`);
	const dst = at(`${name}-dst.img`);
	makeImage(src, 4 * MiB);
	makeImage(dst, 4 * MiB, {zeroEvery: 3, holeEvery: 7});
	return {src, dst, hash: sha256(dst)};
}

test('should refuse a pushed (and a relayed) DST a paused VM uses on the remote host, and push it with --force', async context => {
	if (vmProblem) {
		return skip(context, vmProblem);
	}
	const {src, dst, hash} = pair('push');
	const vm = await startVm(dst, {name: 'vm100'});
	try {
		for (const workers of ['1', '3']) {
			const refused = await runCli(['-w', workers, src, `pve:${dst}`], sshd.env);
			assert.is(refused.status, 1, refused.stderr);
			assert.equal(lines(refused.stderr), [`rblocksync: ssh pve: DST ${dst} is in use by qemu-system-x86_64 (pid ${vm.pid}, VM vm100?): stop the VM or sync to another volume`]);
			assert.is(sha256(dst), hash, 'DST changed');
		}
		const relayed = await runCli([`pve:${src}`, `pve:${dst}`], sshd.env);
		assert.is(relayed.status, 1, relayed.stderr);
		assert.equal(lines(relayed.stderr), [`rblocksync: ssh pve: DST ${dst} is in use by qemu-system-x86_64 (pid ${vm.pid}, VM vm100?): stop the VM or sync to another volume`]);
		assert.is(sha256(dst), hash, 'DST changed');
		const forced = await runCli(['--force', src, `pve:${dst}`], sshd.env);
		assert.is(forced.status, 0, forced.stderr);
		assert.ok(sameContent(src, dst));
	} finally {
		await vm.stop();
	}
});

test('should refuse a pushed DST another process writes, naming it', async () => {
	const {src, dst, hash} = pair('writer');
	const writer = await holdOpen(dst, true);
	try {
		const refused = await runCli([src, `pve:${dst}`], sshd.env);
		assert.is(refused.status, 1, refused.stderr);
		assert.equal(lines(refused.stderr), [`rblocksync: ssh pve: DST ${dst} is open for writing by sleep (pid ${writer.pid}): stop it or sync to another volume`]);
		assert.is(sha256(dst), hash, 'DST changed');
	} finally {
		await writer.stop();
	}
	const after = await runCli([src, `pve:${dst}`], sshd.env);
	assert.is(after.status, 0, after.stderr);
	assert.ok(sameContent(src, dst));
});

test('should warn on the driver when a pulled SRC is written by a VM on its host, and pull it', async context => {
	if (vmProblem) {
		return skip(context, vmProblem);
	}
	const {src, dst} = pair('pull');
	const vm = await startVm(src, {name: 'db'});
	try {
		const pulled = await runCli(['-w', '2', `pve:${src}`, dst], sshd.env);
		assert.is(pulled.status, 0, pulled.stderr);
		const warnings = lines(pulled.stderr).filter(line => line.includes('warning'));
		assert.equal(warnings, [
			`rblocksync: warning: pve: SRC ${src} is open for writing by qemu-system-x86_64 (pid ${vm.pid}, VM db?): the copy is crash-consistent at best; `
			+ 'for a consistent one, make the last pass with the VM stopped, or paused with --qmp (each pass sends only what changed): see RUNNING VMS in rblocksync(1)',
		], 'one warning, from the preparing agent only');
		assert.ok(sameContent(src, dst));
	} finally {
		await vm.stop();
	}
});

test('should push a qcow2 into a remote qcow2 through its own qemu-nbd, and refuse one a VM runs', async context => {
	const problem = vmProblem ?? qemuNbdProblem();
	if (problem) {
		return skip(context, problem);
	}
	const src = at('fmt-src.qcow2');
	const dst = at('fmt-dst.qcow2');
	makeQcow2(src, 8 * MiB, ['write -P 0x21 0 1M', 'write -P 0x42 5M 128k']);
	for (const round of [1, 2]) {
		const own = await runCli(['--format', 'qcow2', '--truncate', '-w', '2', src, `pve:${dst}`], sshd.env);
		assert.is(own.status, 0, `round ${round}: ${own.stderr}`);
		assert.is(compareImages(src, 'qcow2', dst, 'qcow2'), undefined);
	}
	makeQcow2(src, 8 * MiB, ['write -P 0x77 0 1M']);
	const hash = sha256(dst);
	const vm = await startVm(dst, {format: 'qcow2'});
	try {
		const refused = await runCli(['--format', 'qcow2', src, `pve:${dst}`], sshd.env);
		assert.is(refused.status, 1, refused.stderr);
		assert.equal(lines(refused.stderr), [`rblocksync: ssh pve: DST ${dst} is in use by qemu-system-x86_64 (pid ${vm.pid}): stop the VM or sync to another volume`]);
		assert.is(sha256(dst), hash, 'the qcow2 changed');
	} finally {
		await vm.stop();
	}
	assert.equal(await serversLeft(dir), [], 'qemu-nbd servers left behind');
});

test.run();
