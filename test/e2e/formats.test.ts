// --src-format/--dst-format on this host: the disk inside a qcow2 through qemu-nbd, the format-header refusals,
// a missing qemu-nbd, and no server left behind by any run, a signal included.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, startCli, stderrLines} from '../helpers/cli.js';
import {compareImages, makeQcow2, serversLeft, serversUnder, toolDir} from '../helpers/formats.js';
import {qemuImgInfo, qemuImgMap, qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {allocatedBytes, sha256} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';

const formats = suite('--src-format and --dst-format, locally');
const problem = qemuNbdProblem();
const MiB = 1024 * 1024;
let dir = '';
let serial = 0;

formats.before.each(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), `rbs-formats-${serial++}-`));
});

formats.after.each(async () => {
	const left = await serversLeft(dir);
	fs.rmSync(dir, {recursive: true, force: true});
	assert.equal(left, [], 'qemu-nbd servers left behind');
});

const at = (name: string): string => path.join(dir, name);

formats('should copy the disk inside a qcow2 into a new sparse raw file, then find it in sync', context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('vm.qcow2'), 64 * MiB, ['write -P 0xab 1M 3M', 'write -P 0x17 40M 64k', 'write -z 10M 2M']);
	const first = runCli(['--src-format', 'qcow2', '--json', '--truncate', at('vm.qcow2'), at('vm.raw')]);
	assert.is(first.code, 0, first.stderr);
	assert.is(compareImages(at('vm.qcow2'), 'qcow2', at('vm.raw'), 'raw'), undefined);
	assert.is(fs.statSync(at('vm.raw')).size, 64 * MiB);
	assert.ok(allocatedBytes(at('vm.raw')) <= 4 * MiB, `${allocatedBytes(at('vm.raw'))} bytes allocated`);
	assert.is(first.json?.direction, 'local');
	// Both roles in threads of this process: --compress=auto does not compress (the link is memory).
	assert.is(first.json?.compression, 'off');
	const again = runCli(['--src-format', 'qcow2', '--json', at('vm.qcow2'), at('vm.raw')]);
	assert.is(again.code, 0, again.stderr);
	assert.is(again.json?.blocksChanged, 0);
});

formats('should create a qcow2 DST at SRC\'s size with --truncate and keep it small, zero ranges as zero clusters', context => {
	if (problem) {
		return skip(context, problem);
	}
	const raw = at('disk.raw');
	fs.writeFileSync(raw, Buffer.alloc(0));
	fs.truncateSync(raw, 32 * MiB + 4096);
	const fd = fs.openSync(raw, 'r+');
	fs.writeSync(fd, Buffer.alloc(2 * MiB, 0x5a), 0, 2 * MiB, 8 * MiB);
	fs.closeSync(fd);
	const first = runCli(['--dst-format', 'qcow2', '--truncate', '-q', raw, at('disk.qcow2')]);
	assert.is(first.code, 0, first.stderr);
	assert.is(compareImages(raw, 'raw', at('disk.qcow2'), 'qcow2'), undefined);
	const info = qemuImgInfo(at('disk.qcow2'));
	assert.is(info.format, 'qcow2');
	assert.is(info['virtual-size'], 32 * MiB + 4096);
	assert.ok(info['actual-size'] < 3 * MiB, `${info['actual-size']} bytes on disk`);
	// SRC's data becomes zeros: DST's clusters there read as zeros and hold no data (zero clusters or unallocated).
	const zeroFd = fs.openSync(raw, 'r+');
	fs.writeSync(zeroFd, Buffer.alloc(1 * MiB), 0, 1 * MiB, 8 * MiB);
	fs.closeSync(zeroFd);
	const second = runCli(['--dst-format', 'qcow2', '--json', raw, at('disk.qcow2')]);
	assert.is(second.code, 0, second.stderr);
	assert.is(compareImages(raw, 'raw', at('disk.qcow2'), 'qcow2'), undefined);
	const zeroed = qemuImgMap(at('disk.qcow2')).filter(entry => entry.start < 9 * MiB && entry.start + entry.length > 8 * MiB);
	assert.ok(zeroed.length > 0 && zeroed.every(entry => entry.zero && !entry.data), JSON.stringify(zeroed));
	assert.ok(qemuImgInfo(at('disk.qcow2'))['actual-size'] <= info['actual-size'], 'zeroing did not grow DST');
});

formats('should sync a qcow2 onto a qcow2, keeping DST\'s holes and resizing only with --truncate', context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('a.qcow2'), 48 * MiB, ['write -P 0x01 0 1M', 'write -P 0x02 20M 512k']);
	makeQcow2(at('b.qcow2'), 16 * MiB, ['write -P 0x09 0 4M']);
	const refused = runCli(['--format', 'qcow2', at('a.qcow2'), at('b.qcow2')]);
	assert.is(refused.code, 1);
	assert.equal(stderrLines(refused), [`rblocksync: DST ${at('b.qcow2')} holds a 16777216-byte qcow2 disk but SRC is 50331648 bytes; use --truncate to resize DST`]);
	const synced = runCli(['--format', 'qcow2', '--truncate', '-w', '3', '-q', at('a.qcow2'), at('b.qcow2')]);
	assert.is(synced.code, 0, synced.stderr);
	assert.is(compareImages(at('a.qcow2'), 'qcow2', at('b.qcow2'), 'qcow2'), undefined);
	const data = qemuImgMap(at('b.qcow2')).filter(entry => entry.data).reduce((sum, entry) => sum + entry.length, 0);
	assert.is(data, 1.5 * MiB, 'only the 1.5 MiB SRC holds is data in DST');
});

formats('should write nothing and start no writable server with --dry-run', context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('a.qcow2'), 16 * MiB, ['write -P 0x01 0 1M']);
	makeQcow2(at('b.qcow2'), 16 * MiB, ['write -P 0x02 0 2M']);
	const before = {hash: sha256(at('b.qcow2')), mtime: fs.statSync(at('b.qcow2')).mtimeMs};
	const log = at('qemu-nbd.log');
	const tools = toolDir(at('tools'), log);
	const env = {PATH: `${tools}:${process.env['PATH'] ?? '/usr/bin:/bin'}`};
	const result = runCli(['--format', 'qcow2', '--dry-run', '--json', at('a.qcow2'), at('b.qcow2')], {env});
	assert.is(result.code, 0, result.stderr);
	assert.is(result.json?.blocksChanged, 512);
	assert.equal({hash: sha256(at('b.qcow2')), mtime: fs.statSync(at('b.qcow2')).mtimeMs}, before);
	const started = fs.readFileSync(log, 'utf8').trim().split('\n');
	assert.is(started.length, 2, started.join('\n'));
	assert.ok(started.every(line => line.includes('--read-only')), started.join('\n'));
	const missing = runCli(['--format', 'qcow2', '--dry-run', '--truncate', '-q', at('a.qcow2'), at('new.qcow2')], {env});
	assert.is(missing.code, 0, missing.stderr);
	assert.not.ok(fs.existsSync(at('new.qcow2')));
});

formats('should refuse a SRC or DST holding a format header when no format is given, word for word', context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('vm.qcow2'), 4 * MiB, []);
	fs.writeFileSync(at('disk.raw'), Buffer.alloc(4 * MiB));
	const src = runCli([at('vm.qcow2'), at('copy.raw'), '--truncate']);
	assert.is(src.code, 1);
	assert.equal(stderrLines(src), [`rblocksync: SRC ${at('vm.qcow2')} holds a qcow2 image: add --src-format qcow2 to copy the disk it holds, or --src-format raw to copy the file as it is`]);
	assert.not.ok(fs.existsSync(at('copy.raw')));
	const dst = runCli([at('disk.raw'), at('vm.qcow2'), '--truncate']);
	assert.is(dst.code, 1);
	assert.equal(stderrLines(dst), [`rblocksync: DST ${at('vm.qcow2')} holds a qcow2 image: add --dst-format qcow2 to write the disk it holds, or --dst-format raw to overwrite the file as it is`]);
	const vdi = at('disk.vdi');
	spawnSync('qemu-img', ['create', '-q', '-f', 'vdi', vdi, String(4 * MiB)]);
	const viaDigests = runCli([vdi, at('copy.raw'), '--truncate', '--dst-format', 'qcow2']);
	assert.is(viaDigests.code, 1);
	assert.equal(stderrLines(viaDigests), [`rblocksync: SRC ${vdi} holds a vdi image: add --src-format vdi to copy the disk it holds, or --src-format raw to copy the file as it is`]);
	const asIs = runCli(['--src-format', 'raw', '-q', at('vm.qcow2'), at('copy.raw'), '--truncate']);
	assert.is(asIs.code, 0, asIs.stderr);
	assert.is(sha256(at('copy.raw')), sha256(at('vm.qcow2')));
});

formats('should name the package when qemu-nbd is missing (exit 1, DST untouched)', context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('vm.qcow2'), 4 * MiB, ['write -P 0x01 0 1M']);
	const tools = toolDir(at('tools'), at('unused.log'), false);
	const result = runCli(['--src-format', 'qcow2', '--truncate', at('vm.qcow2'), at('copy.raw')], {env: {PATH: `${tools}:/nonexistent`}});
	assert.is(result.code, 1);
	assert.equal(stderrLines(result), ['rblocksync: qemu-nbd is not installed on this host: install qemu-utils (apt-get install qemu-utils; Proxmox VE ships it in pve-qemu-kvm)']);
	assert.not.ok(fs.existsSync(at('copy.raw')));
});

formats('should stop its qemu-nbd servers when interrupted, and leave none when killed outright', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('big.qcow2'), 512 * MiB, ['write -P 0x33 0 384M']);
	for (const signal of ['SIGINT', 'SIGKILL'] as const) {
		const dst = at(`big-${signal}.qcow2`);
		const running = startCli(['--format', 'qcow2', '--truncate', '-w', '2', '--json-progress', '-b', '512', at('big.qcow2'), dst]);
		// Progress events come once the workers run: both servers (SRC's and DST's) are up by then.
		await running.waitForStderr(/"event":"worker"/);
		assert.is(serversUnder(dir).length, 2, 'both servers running');
		running.child.kill(signal);
		const ended = await running.done;
		assert.equal(ended.code ?? ended.signal, signal === 'SIGINT' ? 130 : 'SIGKILL', ended.stderr);
		assert.equal(await serversLeft(dir), [], `after ${signal}`);
	}
	assert.equal(qemuImgInfo(at('big.qcow2'))['virtual-size'], 512 * MiB);
});

formats.run();
