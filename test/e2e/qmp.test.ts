// --qmp on this host: a running VM (qemu-system-x86_64, TCG, no guest) exports its disk for the run; the
// live pass, the paused pass and the guest's view, the export and its socket gone after every run (a
// signal included), a path that is no disk of the VM, a dead socket, and --force-share for a held qcow2.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, startCli, stderrLines} from '../helpers/cli.js';
import {compareImages, makeQcow2} from '../helpers/formats.js';
import {qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {qemuSystemProblem, startVm, type Vm} from '../helpers/qemu-vm.js';
import {sha256} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';

const test = suite('--qmp: the disk of a running VM');
const problem = qemuSystemProblem() ?? qemuNbdProblem();
const MiB = 1024 * 1024;
let dir = '';
let serial = 0;
let vms: Vm[] = [];

test.before.each(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), `rbs-qmp-${serial++}-`));
	vms = [];
});

test.after.each(async () => {
	await Promise.all(vms.map(vm => vm.stop()));
	const left = fs.readdirSync(dir).filter(name => name.startsWith('rblocksync-'));
	fs.rmSync(dir, {recursive: true, force: true});
	assert.equal(left, [], 'export directories left behind');
});

const at = (name: string): string => path.join(dir, name);
/** The CLI with TMPDIR in the test's directory: the export's socket directory is made there. */
const cli = (args: readonly string[]) => runCli(args, {env: {TMPDIR: dir}});

async function vm(...args: Parameters<typeof startVm> extends [string, ...infer Rest] ? Rest : never): Promise<Vm> {
	const started = await startVm(dir, ...args);
	vms.push(started);
	return started;
}

function rawFile(file: string, size: number, writes: ReadonlyArray<[number, number, number]>): void {
	fs.writeFileSync(file, Buffer.alloc(0));
	fs.truncateSync(file, size);
	const fd = fs.openSync(file, 'r+');
	for (const [offset, length, byte] of writes) {
		fs.writeSync(fd, Buffer.alloc(length, byte), 0, length, offset);
	}
	fs.closeSync(fd);
}

test('should sync a running VM\'s qcow2 and raw disks live, then paused, to the guest\'s view, leaving no export', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('vm.qcow2'), 48 * MiB, ['write -P 0x11 0 2M', 'write -P 0x22 20M 1M']);
	rawFile(at('data.raw'), 16 * MiB, [[4 * MiB, MiB, 0x33]]);
	const machine = await vm([{file: at('vm.qcow2'), format: 'qcow2', node: 'disk0'}, {file: at('data.raw'), format: 'raw', node: 'disk1'}], {running: true});
	// Written by the VM only: on the qcow2 file these are not there yet (QEMU's caches), in the guest's view they are.
	await machine.hmp('qemu-io disk0 "write -P 0x44 8M 1M"');
	await machine.hmp('qemu-io disk1 "write -P 0x55 0 64k"');
	const live = cli(['--qmp', machine.qmp, '--truncate', '--json', at('vm.qcow2'), at('vm.raw')]);
	assert.is(live.code, 0, live.stderr);
	assert.is(live.json?.bytesWritten, 4 * MiB);
	const liveData = cli(['--qmp', machine.qmp, '--truncate', '-q', at('data.raw'), at('data-copy.raw')]);
	assert.is(liveData.code, 0, liveData.stderr);
	assert.equal(await machine.exports(), [], 'no export left after the live passes');

	// The guest goes on writing; the final pass runs with the VM paused.
	await machine.hmp('qemu-io disk0 "write -P 0x66 8M 64k"');
	await machine.hmp('qemu-io disk0 "write -z 20M 1M"');
	await machine.hmp('qemu-io disk1 "write -P 0x77 15M 4k"');
	await machine.command('stop');
	const paused = cli(['--qmp', machine.qmp, '--json', at('vm.qcow2'), at('vm.raw')]);
	assert.is(paused.code, 0, paused.stderr);
	assert.is(paused.json?.bytesWritten, 64 * 1024, 'the pass writes what the guest wrote since the last one');
	assert.is(paused.json?.blocksPunched, 256, 'the MiB the guest zeroed');
	const pausedData = cli(['--qmp', machine.qmp, '-q', at('data.raw'), at('data-copy.raw')]);
	assert.is(pausedData.code, 0, pausedData.stderr);
	assert.equal(await machine.exports(), []);
	await machine.stop(); // quit: QEMU writes its caches out, so the files hold the guest's view.
	assert.is(compareImages(at('vm.qcow2'), 'qcow2', at('vm.raw'), 'raw'), undefined);
	assert.is(sha256(at('data-copy.raw')), sha256(at('data.raw')));
});

test('should find the disk a guest device uses (q35, virtio-blk) and refuse a path that is none of the VM\'s disks, listing them', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('os.qcow2'), 8 * MiB, ['write -P 0x12 0 1M']);
	rawFile(at('swap.raw'), 4 * MiB, [[0, 4096, 1]]);
	const machine = await vm([{file: at('os.qcow2'), format: 'qcow2', node: 'os', device: 'vda'}, {file: at('swap.raw'), format: 'raw', node: 'swap', device: 'vdb'}], {machine: 'q35'});
	const found = cli(['--qmp', machine.qmp, '--truncate', '-q', at('os.qcow2'), at('os.raw')]);
	assert.is(found.code, 0, found.stderr);
	assert.is(compareImages(at('os.qcow2'), 'qcow2', at('os.raw'), 'raw'), undefined);
	fs.writeFileSync(at('other.raw'), 'x');
	const wrong = cli(['--qmp', machine.qmp, '--truncate', at('other.raw'), at('never.raw')]);
	assert.is(wrong.code, 1);
	assert.equal(stderrLines(wrong), [`rblocksync: SRC ${at('other.raw')} is no disk of the VM at ${machine.qmp}; its disks: vda (${at('os.qcow2')}), vdb (${at('swap.raw')})`]);
	assert.not.ok(fs.existsSync(at('never.raw')), 'DST not created');
	assert.equal(await machine.exports(), []);
});

test('should refuse a socket no VM listens on with one line (exit 1), DST untouched', () => {
	if (problem) {
		return;
	}
	fs.writeFileSync(at('disk.raw'), Buffer.alloc(4096, 1));
	const missing = cli(['--qmp', at('none.qmp'), '--truncate', at('disk.raw'), at('dst.raw')]);
	assert.is(missing.code, 1);
	assert.equal(stderrLines(missing), [`rblocksync: --qmp ${at('none.qmp')}: no QEMU monitor socket at ${at('none.qmp')} (is the VM running?)`]);
	// A socket file whose QEMU is gone: nothing listens.
	const server = spawnDeadSocket(at('dead.qmp'));
	const dead = cli(['--qmp', server, '--truncate', at('disk.raw'), at('dst.raw')]);
	assert.is(dead.code, 1);
	assert.equal(stderrLines(dead), [`rblocksync: --qmp ${server}: no QEMU listens on ${server} (the VM is not running?)`]);
	assert.not.ok(fs.existsSync(at('dst.raw')));
});

/** A Unix socket file with no listener (bound, then closed without unlinking, as a killed QEMU leaves it). */
function spawnDeadSocket(file: string): string {
	runPython(`import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(file)}); s.close()`);
	return file;
}

function runPython(code: string): void {
	const result = spawnSync('python3', ['-c', code], {encoding: 'utf8'});
	assert.is(result.status, 0, result.stderr);
}

test('should remove the export when interrupted mid-run (SIGINT, exit 130)', async context => {
	if (problem) {
		return skip(context, problem);
	}
	rawFile(at('big.raw'), 0, []);
	const fd = fs.openSync(at('big.raw'), 'r+');
	const random = Buffer.alloc(4 * MiB);
	for (let at = 0; at < 256 * MiB; at += random.length) {
		random.fill(at & 0xff, 0, 64);
		random.fill(0xa5, 64);
		fs.writeSync(fd, random, 0, random.length, at);
	}
	fs.closeSync(fd);
	const machine = await vm([{file: at('big.raw'), format: 'raw', node: 'big'}], {running: true});
	const tmpdir = process.env.TMPDIR;
	process.env.TMPDIR = dir; // startCli passes this process's environment: the export's directory goes in the test's.
	const running = startCli(['--qmp', machine.qmp, '--truncate', '-w', '1', '--progress', 'plain', at('big.raw'), at('big-copy.raw')]);
	process.env.TMPDIR = tmpdir;
	if (tmpdir === undefined) {
		delete process.env.TMPDIR;
	}
	for (const until = Date.now() + 20_000; (await machine.exports()).length === 0;) {
		assert.ok(Date.now() < until, 'the export never appeared');
		await new Promise(resolve => setTimeout(resolve, 20));
	}
	running.child.kill('SIGINT');
	const result = await running.done;
	assert.is(result.code, 130, result.stderr);
	assert.equal(await machine.exports(), [], 'the export removed on SIGINT');
});

test('should refuse a qcow2 a running VM holds with one line naming --qmp and --force-share, and read it with --force-share', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('held.qcow2'), 8 * MiB, ['write -P 0x31 1M 1M']);
	await vm([{file: at('held.qcow2'), format: 'qcow2', node: 'held'}]);
	const refused = cli(['--src-format', 'qcow2', '--truncate', at('held.qcow2'), at('held.raw')]);
	assert.is(refused.code, 1);
	// (After the warning that a VM has SRC open for writing.)
	assert.is(stderrLines(refused).pop(), `rblocksync: SRC ${at('held.qcow2')} is in use by a running VM (or another QEMU): export it from the VM with --qmp SOCKET, or read it anyway with --force-share (crash-consistent)`);
	assert.not.ok(fs.existsSync(at('held.raw')));
	const shared = cli(['--src-format', 'qcow2', '--force-share', '--truncate', '--json', at('held.qcow2'), at('held.raw')]);
	assert.is(shared.code, 0, shared.stderr);
	assert.match(shared.stderr, /read past its lock \(--force-share\)/);
	assert.is(compareImages(at('held.qcow2'), 'qcow2', at('held.raw'), 'raw'), undefined);
});

test('should wait for a monitor another client holds (Proxmox\'s tools share the socket), then run', async context => {
	if (problem) {
		return skip(context, problem);
	}
	rawFile(at('disk.raw'), 8 * MiB, [[MiB, MiB, 0x42]]);
	const machine = await vm([{file: at('disk.raw'), format: 'raw', node: 'disk'}], {running: true});
	// Another client: greeted, and holding the monitor (QEMU serves one client at a time on this socket).
	const other = net.createConnection(machine.qmp);
	await new Promise<void>(resolve => other.once('data', () => resolve()));
	const tmpdir = process.env.TMPDIR;
	process.env.TMPDIR = dir;
	const running = startCli(['--qmp', machine.qmp, '--truncate', '--json', at('disk.raw'), at('copy.raw')]);
	process.env.TMPDIR = tmpdir;
	if (tmpdir === undefined) {
		delete process.env.TMPDIR;
	}
	await new Promise(resolve => setTimeout(resolve, 1500));
	assert.is(running.child.exitCode, null, 'still waiting for the monitor');
	other.destroy();
	const result = await running.done;
	assert.is(result.code, 0, result.stderr);
	assert.is(sha256(at('copy.raw')), sha256(at('disk.raw')));
});

test('should remove, on the next run, the export and server of a run killed outright (SIGKILL)', async context => {
	if (problem) {
		return skip(context, problem);
	}
	rawFile(at('big.raw'), 0, []);
	const fd = fs.openSync(at('big.raw'), 'r+');
	const chunk = Buffer.alloc(4 * MiB, 0x5c);
	for (let offset = 0; offset < 256 * MiB; offset += chunk.length) {
		chunk.writeUInt32LE(offset, 0);
		fs.writeSync(fd, chunk, 0, chunk.length, offset);
	}
	fs.closeSync(fd);
	const machine = await vm([{file: at('big.raw'), format: 'raw', node: 'big'}], {running: true});
	const tmpdir = process.env.TMPDIR;
	process.env.TMPDIR = dir;
	const killed = startCli(['--qmp', machine.qmp, '--truncate', '-w', '1', '--progress', 'none', at('big.raw'), at('big-copy.raw')]);
	process.env.TMPDIR = tmpdir;
	if (tmpdir === undefined) {
		delete process.env.TMPDIR;
	}
	for (const until = Date.now() + 20_000; (await machine.exports()).length === 0;) {
		assert.ok(Date.now() < until, 'the export never appeared');
		await new Promise(resolve => setTimeout(resolve, 20));
	}
	killed.child.kill('SIGKILL');
	await killed.done;
	const left = await machine.exports();
	assert.is(left.length, 1, 'a killed run cannot remove its export');
	const next = cli(['--qmp', machine.qmp, '--truncate', '--json', at('big.raw'), at('big-copy.raw')]);
	assert.is(next.code, 0, next.stderr);
	assert.is(sha256(at('big-copy.raw')), sha256(at('big.raw')));
	assert.equal(await machine.exports(), [], 'the killed run\'s export went with the next run');
	// What no run can remove: the killed one's empty socket directory (its name is random), nothing listening there.
	for (const name of fs.readdirSync(dir).filter(entry => entry.startsWith('rblocksync-qmp-'))) {
		fs.rmSync(path.join(dir, name), {recursive: true, force: true});
	}
});

test.run();
