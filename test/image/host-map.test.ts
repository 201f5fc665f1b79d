// A qcow2 SRC's data read from its own files (host-map.ts) instead of through qemu-nbd: the map's parsing, then a real
// backing chain (data in both layers, a zero write over the base's data, a compressed cluster that only the server
// can give, fetched ahead within its run) read through an NbdImage with hostFiles and compared with qemu-img
// convert's guest view; the chains that must go through the server (an external data file, encryption).
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {Extent, extentAt, parseExtentMap, plainChain} from '../../source/image/host-map.js';
import {NbdImage} from '../../source/image/nbd-image.js';
import {guestView, leftoverServers, qemuImgCreate, qemuNbdProblem, startQemuNbd} from '../helpers/qemu-nbd.js';
import {skip} from '../helpers/skip.js';

const MiB = 1024 * 1024;
const parse = suite('qemu-img map extents');

parse('should place data with an offset in its layer, zeros where QEMU says zero, and the rest on the server', () => {
	const json = JSON.stringify([
		{start: 0, length: 65536, depth: 0, present: true, zero: false, data: true, offset: 327680},
		{start: 65536, length: 65536, depth: 1, present: true, zero: true, data: true, offset: 1048576},
		{start: 131072, length: 65536, depth: 1, present: true, zero: false, data: true},
		{start: 196608, length: 65536, depth: 0, present: false, zero: false, data: false},
	]);
	const map = parseExtentMap(json, 0, 262144);
	assert.equal([...map.kinds], [Extent.file, Extent.zero, Extent.served, Extent.zero]);
	assert.equal([...map.depths], [0, 1, 1, 0]);
	assert.is(map.offsets[0], 327680);
	assert.is(extentAt(map, 0), 0);
	assert.is(extentAt(map, 65535), 0);
	assert.is(extentAt(map, 65536), 1);
	assert.is(extentAt(map, 262143), 3);
	assert.is(extentAt(map, 262144), -1);
});

parse('should refuse a map with a gap or one that ends short', () => {
	assert.throws(() => parseExtentMap(JSON.stringify([{start: 0, length: 10, depth: 0, present: true, zero: true, data: false}, {start: 20, length: 10, depth: 0, present: true, zero: true, data: false}]), 0, 30), /expected 10/);
	assert.throws(() => parseExtentMap(JSON.stringify([{start: 0, length: 10, depth: 0, present: true, zero: true, data: false}]), 0, 30), /before 30/);
});

parse.run();

const real = suite('qcow2 read from its files');
const problem = qemuNbdProblem();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-host-map-'));

real.after(() => {
	fs.rmSync(dir, {recursive: true, force: true});
	assert.equal(leftoverServers(), [], 'a qemu-nbd was left running');
});

const qemuIo = (file: string, commands: readonly string[]): void => {
	execFileSync('qemu-io', ['-f', 'qcow2', ...commands.flatMap(command => ['-c', command]), file], {stdio: 'ignore'});
};

/** Reads the whole export in pieces of odd sizes (crossing extents and layers), as SOURCE's chunks would. */
function readAll(image: NbdImage): Buffer {
	const out = Buffer.alloc(image.size);
	for (let at = 0, step = 1; at < image.size; step = (step * 7 + 3) % 13) {
		const length = Math.min(image.size - at, (step + 1) * 192 * 1024 + 4096);
		image.read(out, at, length, at);
		at += length;
	}
	return out;
}

function openTop(top: string): {image: NbdImage; stop(): void} {
	const files = plainChain(top, 'qcow2');
	assert.ok(files, 'the chain was not found plain');
	const server = startQemuNbd(top, {format: 'qcow2', readOnly: true});
	const image = NbdImage.open({socket: server.socket, hostFiles: {file: top, format: 'qcow2', files}});
	return {image, stop: () => {
		image.close();
		server.stop();
	}};
}

real('should read a backing chain from its files, zeros over the base\'s data included, and match the guest view', context => {
	if (problem) {
		return skip(context, problem);
	}
	const base = path.join(dir, 'base.qcow2');
	const top = path.join(dir, 'top.qcow2');
	qemuImgCreate(base, 'qcow2', 16 * MiB);
	qemuIo(base, ['write -P 0x11 0 3M', 'write -P 0x22 5M 2M', 'write -P 0x33 12M 1M']);
	execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top]);
	qemuIo(top, ['write -P 0x44 1M 64k', 'write -z 5M 512k', 'write -P 0x55 9M 1536k', 'write -P 0x66 12M 4k']);
	assert.equal(plainChain(top, 'qcow2'), [top, base]);
	const {image, stop} = openTop(top);
	try {
		assert.ok(image.readsFiles);
		const opened = image.handoffs;
		assert.ok(readAll(image).equals(guestView(top, 'qcow2')), 'the bytes read differ from the guest view');
		// Nothing went through the server: every extent had an offset or was zero.
		assert.is(image.handoffs, opened, 'reads went through the server');
		assert.is(image.storageBytesRead, (3 + 2 + 1) * MiB - 512 * 1024 + 1536 * 1024, 'bytes read from the files');
	} finally {
		stop();
	}
});

real('should read a compressed cluster through the server and the rest from the file', context => {
	if (problem) {
		return skip(context, problem);
	}
	const file = path.join(dir, 'compressed.qcow2');
	qemuImgCreate(file, 'qcow2', 8 * MiB);
	qemuIo(file, ['write -P 0x77 0 1M', 'write -c -P 0x78 2M 64k', 'write -P 0x79 4M 1M']);
	const {image, stop} = openTop(file);
	try {
		const opened = image.handoffs;
		assert.ok(readAll(image).equals(guestView(file, 'qcow2')), 'the bytes read differ from the guest view');
		assert.ok(image.handoffs > opened, 'the compressed cluster was not read through the server');
		assert.is(image.storageBytesRead, 2 * MiB + 64 * 1024);
	} finally {
		stop();
	}
});

real('should fetch a run of compressed clusters ahead through the server, and no further than the run', context => {
	if (problem) {
		return skip(context, problem);
	}
	const file = path.join(dir, 'compressed-run.qcow2');
	qemuImgCreate(file, 'qcow2', 8 * MiB);
	qemuIo(file, ['write -c -P 0x7a 0 4M', 'write -P 0x7b 4M 1M']);
	const {image, stop} = openTop(file);
	try {
		image.readAhead([{start: 0, end: image.size}]);
		const opened = image.handoffs;
		const out = Buffer.alloc(image.size);
		for (let at = 0; at < image.size; at += MiB) {
			image.read(out, at, MiB, at);
		}
		assert.ok(out.equals(guestView(file, 'qcow2')), 'the bytes read differ from the guest view');
		// The 4 MiB compressed run in one fetch (not one round trip per MiB), the plain MiB from the file.
		assert.is(image.handoffs, opened + 1, 'the compressed run was not fetched ahead in one handoff');
		assert.is(image.storageBytesRead, 5 * MiB, 'bytes read: the run through the server once, the rest from the file');
	} finally {
		stop();
	}
});

real('should leave a qcow2 with an external data file, or an encrypted one, to the server', context => {
	if (problem) {
		return skip(context, problem);
	}
	const withData = path.join(dir, 'external.qcow2');
	execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${path.join(dir, 'external.raw')}`, withData, '1M']);
	assert.is(plainChain(withData, 'qcow2'), undefined);
	const encrypted = path.join(dir, 'encrypted.qcow2');
	execFileSync('qemu-img', ['create', '-q', '--object', 'secret,id=sec0,data=secret', '-f', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', encrypted, '1M']);
	assert.is(plainChain(encrypted, 'qcow2'), undefined);
});

real.run();
