// qcow2 over SSH: the agent on the image's host serves it through its own qemu-nbd (push and pull), a format
// header refused on the remote side, and no server left on either side.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {runCli} from '../helpers/remote-images.js';
import {compareImages, makeQcow2, serversLeft} from '../helpers/formats.js';
import {qemuImgInfo, qemuImgMap, qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {skip} from '../helpers/skip.js';

const test = suite('--format qcow2 over SSH');
const problem = qemuNbdProblem();
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-ssh-formats-'));
});

test.after(async () => {
	await sshd.stop();
	fs.rmSync(dir, {recursive: true, force: true});
});

test.after.each(async () => {
	assert.equal(await serversLeft(dir), [], 'qemu-nbd servers left behind');
});

const at = (name: string): string => path.join(dir, name);
const dataBytes = (file: string): number => qemuImgMap(file).filter(entry => entry.data).reduce((sum, entry) => sum + entry.length, 0);

test('should push a qcow2 into a new remote qcow2, then sync a change into it', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('push-src.qcow2'), 40 * MiB, ['write -P 0x11 0 2M', 'write -P 0x22 30M 1M']);
	const first = await runCli(['--format', 'qcow2', '--truncate', '--json', at('push-src.qcow2'), `pve:${at('push-dst.qcow2')}`], sshd.env);
	assert.is(first.status, 0, first.stderr);
	assert.is(first.json?.['direction'], 'push');
	assert.is(compareImages(at('push-src.qcow2'), 'qcow2', at('push-dst.qcow2'), 'qcow2'), undefined);
	assert.is(qemuImgInfo(at('push-dst.qcow2'))['virtual-size'], 40 * MiB);
	assert.is(dataBytes(at('push-dst.qcow2')), 3 * MiB);
	makeQcow2(at('push-src.qcow2'), 40 * MiB, ['write -P 0x11 0 2M', 'write -P 0x33 30M 64k']);
	const second = await runCli(['--format', 'qcow2', '--json', '-w', '2', at('push-src.qcow2'), `pve:${at('push-dst.qcow2')}`], sshd.env);
	assert.is(second.status, 0, second.stderr);
	assert.is(compareImages(at('push-src.qcow2'), 'qcow2', at('push-dst.qcow2'), 'qcow2'), undefined);
	assert.is(dataBytes(at('push-dst.qcow2')), 2 * MiB + 64 * 1024, 'the MiB SRC no longer holds became zero clusters');
});

test('should pull a remote qcow2 into a local qcow2 and a local raw file', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('pull-src.qcow2'), 24 * MiB + 64 * 1024, ['write -P 0x44 1M 1M', 'write -z 4M 4M']);
	const qcow2 = await runCli(['--format', 'qcow2', '--truncate', '-q', `pve:${at('pull-src.qcow2')}`, at('pull-dst.qcow2')], sshd.env);
	assert.is(qcow2.status, 0, qcow2.stderr);
	assert.is(compareImages(at('pull-src.qcow2'), 'qcow2', at('pull-dst.qcow2'), 'qcow2'), undefined);
	assert.is(dataBytes(at('pull-dst.qcow2')), 1 * MiB);
	const raw = await runCli(['--src-format', 'qcow2', '--truncate', '--json', `pve:${at('pull-src.qcow2')}`, at('pull-dst.raw')], sshd.env);
	assert.is(raw.status, 0, raw.stderr);
	assert.is(raw.json?.['direction'], 'pull');
	assert.is(compareImages(at('pull-src.qcow2'), 'qcow2', at('pull-dst.raw'), 'raw'), undefined);
});

test('should refuse a remote SRC holding a qcow2 header without --src-format, naming the host', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('refused.qcow2'), 4 * MiB, []);
	const result = await runCli([`pve:${at('refused.qcow2')}`, at('refused.raw'), '--truncate'], sshd.env);
	assert.is(result.status, 1);
	assert.equal(result.stderr.trim().split('\n').filter(line => !line.includes('native helper')), [`rblocksync: ssh pve: SRC ${at('refused.qcow2')} holds a qcow2 image: add --src-format qcow2 to copy the disk it holds, or --src-format raw to copy the file as it is`]);
	assert.not.ok(fs.existsSync(at('refused.raw')));
});

test('should serve a remote qcow2 through the uploaded agent (its NBD worker file uploaded beside it)', async context => {
	if (problem) {
		return skip(context, problem);
	}
	// pveextra has node and what is in extraBin, not rblocksync: the agent bundle is uploaded.
	for (const tool of ['qemu-img', 'qemu-nbd']) {
		fs.symlinkSync(`/usr/bin/${tool}`, path.join(sshd.extraBin, tool));
	}
	try {
		makeQcow2(at('upload-src.qcow2'), 8 * MiB, ['write -P 0x55 2M 1M']);
		const result = await runCli(['--src-format', 'qcow2', '--truncate', '-q', `pveextra:${at('upload-src.qcow2')}`, at('upload-dst.raw')], {...sshd.env, RBLOCKSYNC_REMOTE_AGENT: 'upload'});
		assert.is(result.status, 0, result.stderr);
		assert.is(compareImages(at('upload-src.qcow2'), 'qcow2', at('upload-dst.raw'), 'raw'), undefined);
	} finally {
		for (const tool of ['qemu-img', 'qemu-nbd']) {
			fs.rmSync(path.join(sshd.extraBin, tool), {force: true});
		}
	}
});

test('should name the package when the remote host has no qemu-nbd (exit 1, DST not created)', async context => {
	if (problem) {
		return skip(context, problem);
	}
	makeQcow2(at('missing-src.qcow2'), 4 * MiB, ['write -P 0x01 0 64k']);
	const result = await runCli(['--src-format', 'qcow2', '--truncate', at('missing-src.qcow2'), `pvenode:${at('missing-dst.raw')}`, '--dst-format', 'raw'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	const remote = await runCli(['--src-format', 'qcow2', '--truncate', `pvenode:${at('missing-src.qcow2')}`, at('missing-dst2.raw')], sshd.env);
	assert.is(remote.status, 1);
	assert.equal(remote.stderr.trim().split('\n').filter(line => !line.includes('native helper')), ['rblocksync: ssh pvenode: qemu-img is not installed on this host: install qemu-utils (apt-get install qemu-utils; Proxmox VE ships it in pve-qemu-kvm)']);
	assert.not.ok(fs.existsSync(at('missing-dst2.raw')));
});

test('should push and pull with --bitmap: a full first pass, then only the chunks the guest wrote, DST equal to SRC', async context => {
	if (problem) {
		return skip(context, problem);
	}
	for (const direction of ['push', 'pull'] as const) {
		const src = at(`${direction}-bitmap.qcow2`);
		makeQcow2(src, 48 * MiB, ['write -P 0x11 0 6M', 'write -P 0x12 20M 4M']);
		execFileSync('qemu-img', ['bitmap', '--add', src, 'b0']);
		const dst = at(`${direction}-bitmap.raw`);
		const args = ['--src-format', 'qcow2', '--bitmap', 'b0', '--truncate', '--json', ...(direction === 'push' ? [src, `pve:${dst}`] : [`pve:${src}`, dst])];
		const first = await runCli(args, sshd.env);
		assert.is(first.status, 0, first.stderr);
		assert.is(first.json?.['bitmap'], 'full: no completed pass with this bitmap yet');
		execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x21 3M 64k', '-c', 'write -P 0x22 40M 4k', src], {stdio: 'ignore'});
		const second = await runCli(args, sshd.env);
		assert.is(second.status, 0, second.stderr);
		assert.is(second.json?.['bitmap'], 'incremental', direction);
		assert.is(compareImages(src, 'qcow2', dst, 'raw'), undefined);
		const read = (second.json as {srcBytesRead?: number} | undefined)?.srcBytesRead;
		assert.ok(read !== undefined && read > 0 && read <= 2 * MiB, `${direction}: SRC read ${String(read)} bytes; the dirty chunks are 2 MiB`);
		const names = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', src], {encoding: 'utf8'}))['format-specific'].data.bitmaps.map((bitmap: {name: string}) => bitmap.name);
		assert.equal(names, ['b0'], `${direction}: b0.next merged and removed on SRC's host`);
	}
});

test.run();
