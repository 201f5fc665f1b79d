#!/usr/bin/env node
// Reading a raw image through qemu-nbd with NbdImage against reading the file directly with LocalImage, both
// in 4 MiB batches from the page cache (the file is read once first), best of 3. Needs `npm run build` and qemu-utils.
// Usage: node bench/nbd-read.mjs [SIZE_MIB] [BATCH_MIB]   (default 1024 and 4)
import {execFileSync} from 'node:child_process';
import {closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {randomFillSync} from 'node:crypto';
import {LocalImage} from '../dist/image/local-image.js';
import {NbdImage} from '../dist/image/nbd-image.js';

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
	execFileSync('qemu-nbd', ['--fork', '--pid-file', join(dir, 'pid'), '-t', '--read-only', '-f', 'raw', '-k', socket, file]);
	pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
	const nbd = NbdImage.open({socket});
	const through = best(() => readAll(nbd));
	nbd.close();
	const rate = seconds => `${(size / MiB / seconds).toFixed(0)} MiB/s`;
	console.log(`${size / MiB} MiB in ${batch / MiB} MiB batches: file ${rate(direct)} (${direct.toFixed(2)} s), qemu-nbd + NbdImage ${rate(through)} (${through.toFixed(2)} s): ${(through / direct).toFixed(2)}x the time`);
} finally {
	if (pid) {
		try {
			process.kill(pid);
		} catch {}
	}
	rmSync(dir, {recursive: true, force: true});
}
