#!/usr/bin/env node
// Reading a raw image through qemu-nbd with NbdImage against reading the file directly with LocalImage, both
// in 4 MiB batches from the page cache (the file is read once first), best of 3; and QEMU's own NBD client
// (qemu-img convert) on the same export, as the peer. Needs `npm run build` and qemu-utils.
// Usage: node bench/nbd-read.mjs [SIZE_MIB] [BATCH_MIB]   (default 1024 and 4)
import {execFileSync} from 'node:child_process';
import {closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {randomFillSync} from 'node:crypto';
import {LocalImage} from '../dist/image/local-image.js';
import {NbdImage} from '../dist/image/nbd-image.js';
import {READ_REQUEST_BYTES} from '../dist/nbd/client.js';

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 1024) * MiB;
const batch = Number(process.argv[3] ?? 4) * MiB;
const dir = mkdtempSync(join(tmpdir(), 'rbs-bench-nbd-'));
const file = join(dir, 'disk.raw');
const socket = join(dir, 'nbd.sock');

// Random data all through, so that neither side can skip anything.
const fd = openSync(file, 'w');
const chunk = Buffer.alloc(16 * MiB);
for (let at = 0; at < size; at += chunk.length) {
	writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, size - at));
}
closeSync(fd);

/** Seconds to read the whole image in batches into one buffer. */
function readAll(image) {
	const buffer = Buffer.alloc(batch);
	const start = process.hrtime.bigint();
	for (let at = 0; at < size; at += batch) {
		image.read(buffer, 0, Math.min(batch, size - at), at);
	}
	return Number(process.hrtime.bigint() - start) / 1e9;
}

const best = fn => Math.min(fn(), fn(), fn());
let pid;
try {
	const local = new LocalImage(openSync(file, 'r'), file, 'file', size, () => {});
	readAll(local); // Into the page cache.
	const direct = best(() => readAll(local));
	local.close();
	execFileSync('qemu-nbd', ['--fork', '-e', '0', '--pid-file', join(dir, 'pid'), '-t', '--read-only', '-f', 'raw', '-k', socket, file]);
	pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
	const rate = seconds => `${(size / MiB / seconds).toFixed(0)} MiB/s`;
	console.log(`${size / MiB} MiB in ${batch / MiB} MiB batches: file ${rate(direct)} (${direct.toFixed(2)} s)`);
	// The batch split into READ requests of these sizes, in flight together (the default is READ_REQUEST_BYTES).
	for (const request of [batch, MiB, 256 * 1024, 64 * 1024]) {
		const nbd = NbdImage.open({socket, readRequestBytes: request});
		const through = best(() => readAll(nbd));
		nbd.close();
		console.log(`  qemu-nbd + NbdImage, ${request / 1024} KiB requests${request === READ_REQUEST_BYTES ? ' (default)' : ''}: ${rate(through)} (${through.toFixed(2)} s), ${(through / direct).toFixed(1)}x the time`);
	}
	// The peer: QEMU's own NBD client reading the same export (qemu-img convert into the null driver).
	const convert = best(() => {
		const start = process.hrtime.bigint();
		execFileSync('qemu-img', ['convert', '-n', '-f', 'raw', `nbd+unix:///?socket=${socket}`, '--target-image-opts', `driver=null-co,size=${size}`]);
		return Number(process.hrtime.bigint() - start) / 1e9;
	});
	console.log(`  qemu-nbd + qemu-img convert (QEMU's NBD client, to null-co): ${rate(convert)} (${convert.toFixed(2)} s), ${(convert / direct).toFixed(1)}x the time`);
} finally {
	if (pid) {
		try {
			process.kill(pid);
		} catch {}
	}
	rmSync(dir, {recursive: true, force: true});
}
