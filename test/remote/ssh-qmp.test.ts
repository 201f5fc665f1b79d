// --qmp over SSH: the agent on SRC's host talks QMP to the VM there and syncs from the VM's own export (pull, and
// remote to remote), with --bitmap the VM's bitmap; a wrong path is refused by that agent naming the host; no
// export, server or agent left behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {belowSshd, type Sshd, startSshd} from '../helpers/sshd.js';
import {runCli} from '../helpers/remote-images.js';
import {compareImages, makeQcow2} from '../helpers/formats.js';
import {qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {qemuSystemProblem, startVm, type Vm} from '../helpers/qemu-vm.js';
import {skip} from '../helpers/skip.js';

const test = suite('--qmp over SSH');
const problem = qemuSystemProblem() ?? qemuNbdProblem();
const MiB = 1024 * 1024;
let sshd: Sshd | undefined;
let dir: string;
let vm: Vm | undefined;

test.before(async () => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-ssh-qmp-'));
	if (!problem) {
		sshd = await startSshd();
		makeQcow2(at('vm.qcow2'), 32 * MiB, ['write -P 0x51 0 4M', 'write -P 0x52 20M 1M']);
		vm = await startVm(dir, [{file: at('vm.qcow2'), format: 'qcow2', node: 'disk0'}], {running: true});
	}
});

test.after(async () => {
	await vm?.stop();
	await sshd?.stop();
	fs.rmSync(dir, {recursive: true, force: true});
});

/** The agents end (and remove the export) after the driver: waits for them, then checks nothing is left. */
async function settled(): Promise<void> {
	for (const until = Date.now() + 20_000; belowSshd(sshd!).length > 0 && Date.now() < until;) {
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	assert.equal(belowSshd(sshd!).map(row => row.args), [], 'no agent left');
	// An agent whose session is over may still be removing the export, outside sshd's tree by then.
	for (const until = Date.now() + 10_000; (await vm!.exports()).length > 0 && Date.now() < until;) {
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	assert.equal(await vm!.exports(), [], 'no export left');
}

function at(name: string): string {
	return path.join(dir, name);
}

test('should pull a running VM\'s disk through the agent on its host, then sync what the guest wrote with --bitmap', async context => {
	if (!sshd || !vm) {
		return skip(context, problem!);
	}
	const first = await runCli(['--qmp', vm.qmp, '--bitmap', 'b0', '--truncate', '--json', `pve:${at('vm.qcow2')}`, at('pulled.raw')], sshd.env);
	assert.is(first.status, 0, first.stderr);
	assert.is(first.json?.['direction'], 'pull');
	await vm.hmp('qemu-io disk0 "write -P 0x53 12M 128k"');
	const second = await runCli(['--qmp', vm.qmp, '--bitmap', 'b0', '--json', `pve:${at('vm.qcow2')}`, at('pulled.raw')], sshd.env);
	assert.is(second.status, 0, second.stderr);
	assert.is(second.json?.['bitmap'], 'incremental');
	assert.is(second.json?.['bytesWritten'], 128 * 1024);
	const read = second.json?.['srcBytesRead'] as number | undefined;
	assert.ok(read !== undefined && read <= MiB, `SRC read ${read} bytes; the dirty chunk is 1 MiB`);
	await settled();
});

test('should sync a running VM\'s disk from one remote host to another', async context => {
	if (!sshd || !vm) {
		return skip(context, problem!);
	}
	fs.writeFileSync(at('relayed.raw'), Buffer.alloc(0));
	fs.truncateSync(at('relayed.raw'), 32 * MiB);
	const result = await runCli(['--qmp', vm.qmp, '--json', `pve:${at('vm.qcow2')}`, `pve2:${at('relayed.raw')}`], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.json?.['direction'], 'relay');
	// At once, with the VM paused: the first run's agent may still be removing its export and server.
	await vm.command('stop');
	const copy = await runCli(['--qmp', vm.qmp, '--json', `pve:${at('vm.qcow2')}`, `pve2:${at('relayed.raw')}`], sshd.env);
	assert.is(copy.status, 0, copy.stderr);
	assert.is(copy.json?.['blocksChanged'], 0, 'already equal to the guest\'s view');
	await vm.command('cont');
	await settled();
});

test('should refuse a path that is no disk of the remote VM, naming the host', async context => {
	if (!sshd || !vm) {
		return skip(context, problem!);
	}
	const result = await runCli(['--qmp', vm.qmp, '--truncate', `pve:${at('other.raw')}`, at('never.raw')], sshd.env);
	assert.is(result.status, 1);
	assert.equal(result.stderr.trim().split('\n').filter(line => !line.includes('native helper')), [`rblocksync: ssh pve: SRC ${at('other.raw')} is no disk of the VM at ${vm.qmp}; its disks: disk0 (${at('vm.qcow2')})`]);
	assert.not.ok(fs.existsSync(at('never.raw')));
	await settled();
});

test.run();
