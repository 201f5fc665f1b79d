// --qmp with --bitmap NAME: the running VM's own dirty bitmap (added on the first pass: persistent in a qcow2, in
// QEMU's memory for a raw disk), exported with the disk; later passes read only what the guest wrote, live or paused,
// and a pass that never commits (a dry run, a failure) leaves every dirty bit for the next.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {compareImages, makeQcow2} from '../helpers/formats.js';
import {qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {qemuSystemProblem, startVm, type Vm} from '../helpers/qemu-vm.js';
import {sha256} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';

const test = suite('--qmp --bitmap: a running VM\'s dirty bitmap');
const problem = qemuSystemProblem() ?? qemuNbdProblem();
const MiB = 1024 * 1024;
let dir = '';
let serial = 0;
let vms: Vm[] = [];

test.before.each(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), `rbs-qmp-bitmap-${serial++}-`));
	vms = [];
});

test.after.each(async () => {
	await Promise.all(vms.map(vm => vm.stop()));
	fs.rmSync(dir, {recursive: true, force: true});
});

const at = (name: string): string => path.join(dir, name);
/** HOME in the test's directory: the record of the last pass is kept there (~/.cache/rblocksync/bitmaps). */
const pass = (vm: Vm, src: string, dst: string, ...extra: string[]) => runCli(['--qmp', vm.qmp, '--bitmap', 'b0', '--json', '--truncate', ...extra, src, dst], {env: {TMPDIR: dir, HOME: dir}});
const srcBytesRead = (json: unknown): number | undefined => (json as {srcBytesRead?: number} | undefined)?.srcBytesRead;

/** The VM's bitmaps on `node`: name and whether it records. */
async function bitmaps(vm: Vm, node: string): Promise<string[]> {
	const nodes = await vm.command('query-named-block-nodes', {flat: true}) as Array<{'node-name': string; 'dirty-bitmaps'?: Array<{name: string; recording: boolean; persistent: boolean}>}>;
	return (nodes.find(entry => entry['node-name'] === node)?.['dirty-bitmaps'] ?? []).map(bitmap => `${bitmap.name}${bitmap.recording ? '' : ' (disabled)'}${bitmap.persistent ? ' persistent' : ''}`).sort();
}

test('should add the bitmap on the first pass, then read only what the guest wrote, live and paused, DST equal to the guest\'s view', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('vm.qcow2'), 48 * MiB, ['write -P 0x11 0 8M', 'write -P 0x12 24M 8M']);
	const vm = await startVm(dir, [{file: at('vm.qcow2'), format: 'qcow2', node: 'disk0'}], {running: true});
	vms.push(vm);
	const first = pass(vm, at('vm.qcow2'), at('vm.raw'));
	assert.is(first.code, 0, first.stderr);
	assert.match(first.stderr, /--bitmap b0: the VM's disk disk0 had no such bitmap recording: added, persistent in its qcow2; this pass reads everything/);
	assert.match(first.json?.bitmap ?? '', /^full: /);
	assert.equal(await bitmaps(vm, 'disk0'), ['b0 persistent'], 'b0 records again, b0.next gone');
	assert.equal(await vm.exports(), []);

	await vm.hmp('qemu-io disk0 "write -P 0x44 8M 64k"');
	await vm.hmp('qemu-io disk0 "write -P 0x45 30M 1M"');
	const live = pass(vm, at('vm.qcow2'), at('vm.raw'));
	assert.is(live.code, 0, live.stderr);
	assert.is(live.json?.bitmap, 'incremental');
	assert.is(live.json?.bytesWritten, MiB + 64 * 1024);
	// The dirty extents lie in chunks 8 and 30 (1 MiB each); the first pass read the 16 MiB of data.
	const read = srcBytesRead(live.json);
	assert.ok(read !== undefined && read <= 3 * MiB, `SRC read ${read} bytes; the dirty chunks are 2 MiB (and some read-ahead)`);
	assert.ok(srcBytesRead(first.json)! >= 16 * MiB, `the first pass read ${srcBytesRead(first.json)}`);

	// A dry run begins a pass but never commits: the bits it saw stay for the next real pass.
	await vm.hmp('qemu-io disk0 "write -P 0x46 40M 4k"');
	const dry = pass(vm, at('vm.qcow2'), at('vm.raw'), '--dry-run');
	assert.is(dry.code, 0, dry.stderr);
	assert.is(dry.json?.blocksChanged, 1);
	assert.equal(await bitmaps(vm, 'disk0'), ['b0 persistent'], 'b0.next merged back into b0');

	await vm.hmp('qemu-io disk0 "write -z 0 1M"');
	await vm.command('stop');
	const paused = pass(vm, at('vm.qcow2'), at('vm.raw'));
	assert.is(paused.code, 0, paused.stderr);
	assert.is(paused.json?.bitmap, 'incremental');
	assert.is(paused.json?.bytesWritten, 4096, 'the 4 KiB the dry run saw');
	assert.is(paused.json?.blocksPunched, 256, 'the MiB the guest zeroed');
	assert.ok(srcBytesRead(paused.json)! <= 3 * MiB, `the paused pass read ${srcBytesRead(paused.json)} bytes`);
	assert.equal(await vm.exports(), []);
	await vm.stop();
	assert.is(compareImages(at('vm.qcow2'), 'qcow2', at('vm.raw'), 'raw'), undefined);
});

test('should keep a raw disk\'s bitmap in the VM (not persistent) and use it on the next pass', async context => {
	if (problem) {
		return skip(context, problem);
	}
	fs.writeFileSync(at('data.raw'), Buffer.alloc(0));
	fs.truncateSync(at('data.raw'), 16 * MiB);
	const vm = await startVm(dir, [{file: at('data.raw'), format: 'raw', node: 'data'}], {running: true});
	vms.push(vm);
	await vm.hmp('qemu-io data "write -P 0x31 1M 2M"');
	const first = pass(vm, at('data.raw'), at('data-copy.raw'));
	assert.is(first.code, 0, first.stderr);
	assert.match(first.stderr, /added, kept by QEMU until the VM stops \(a raw disk stores none\)/);
	assert.equal(await bitmaps(vm, 'data'), ['b0']);
	await vm.hmp('qemu-io data "write -P 0x32 9M 8k"');
	const second = pass(vm, at('data.raw'), at('data-copy.raw'));
	assert.is(second.code, 0, second.stderr);
	assert.is(second.json?.bitmap, 'incremental');
	assert.is(second.json?.bytesWritten, 8192);
	await vm.stop();
	assert.is(sha256(at('data-copy.raw')), sha256(at('data.raw')));
});

test.run();
