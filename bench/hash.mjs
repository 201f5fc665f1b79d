#!/usr/bin/env node
// Block hashing throughput on one core, as the remote protocol uses it (many blocks per call into a
// preallocated digest buffer): native BLAKE3 (the helper's C code, SIMD picked at run time),
// WebAssembly BLAKE3 (the fallback) and SHA-256 (--hash sha256), with b3sum as the peer when
// installed. Prints GB/s and the ratio to the WebAssembly build. Run after `npm ci` (uses dist/).
// Env: BENCH_HASH_MIB (default 256 MiB hashed per case).
import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createHasher, createWasmBlake3Hasher} from '../dist/delta/hash.js';
import {nativeOps} from '../dist/native/native.js';

const total = Number(process.env.BENCH_HASH_MIB ?? 256) * 1024 * 1024;
const batch = randomBytes(4 * 1024 * 1024);

function measure(hasher, blockSize) {
	const out = Buffer.alloc((batch.length / blockSize) * 32);
	for (let i = 0; i < 8; i++) {
		hasher.hashBlocks(batch, batch.length, blockSize, out, 0);
	}
	const start = process.hrtime.bigint();
	for (let done = 0; done < total; done += batch.length) {
		hasher.hashBlocks(batch, batch.length, blockSize, out, 0);
	}
	return total / (Number(process.hrtime.bigint() - start) / 1e9) / 1e9;
}

const cases = [
	...(nativeOps() ? [['blake3 native', await createHasher('blake3')]] : []),
	['blake3 wasm', await createWasmBlake3Hasher()],
	['sha256 (node)', await createHasher('sha256')],
];
console.log(`hashing ${total / 1024 / 1024} MiB per case in 4 MiB batches, one core (${os.cpus()[0]?.model ?? 'unknown CPU'})`);
console.log('block    hasher           GB/s   vs wasm');
for (const blockSize of [4096, 65_536]) {
	const wasm = measure(cases.find(([name]) => name === 'blake3 wasm')[1], blockSize);
	for (const [name, hasher] of cases) {
		const speed = name === 'blake3 wasm' ? wasm : measure(hasher, blockSize);
		console.log(`${String(blockSize).padEnd(8)} ${name.padEnd(16)} ${speed.toFixed(2).padStart(5)}   ${(speed / wasm).toFixed(1)}x`);
	}
}
// b3sum hashes one stream (not 4 KiB blocks), as an upper bound for the hardware.
const b3sum = spawnSync('b3sum', ['--version'], {encoding: 'utf8'});
if (b3sum.status === 0) {
	const file = path.join(os.tmpdir(), `rbs-bench-hash-${process.pid}`);
	fs.writeFileSync(file, Buffer.concat(Array.from({length: total / batch.length}, () => batch)));
	const start = process.hrtime.bigint();
	spawnSync('b3sum', ['--num-threads', '1', '--no-mmap', file]);
	const speed = total / (Number(process.hrtime.bigint() - start) / 1e9) / 1e9;
	fs.rmSync(file);
	console.log(`file     b3sum, 1 thread  ${speed.toFixed(2).padStart(5)}   (reads a page-cached file too)`);
} else {
	console.log('(b3sum not installed: apt-get install b3sum to compare with the reference Rust build)');
}
