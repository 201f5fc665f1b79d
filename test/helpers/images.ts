// Generated test images: random data, written zero runs and holes, hashes and allocation. No committed blobs.
import {createHash, randomBytes} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What one unit of an image holds: random bytes, written zero bytes (allocated), or a hole (never written). */
export type UnitKind = 'data' | 'zero' | 'hole';

/** An image described unit by unit; the last unit is short when size is not a multiple of unit. */
export type Layout = {readonly size: number; readonly unit: number; readonly kinds: readonly UnitKind[]};

/** A small deterministic PRNG (mulberry32), so a failing layout can be reproduced from its seed. */
export function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
	};
}

/** A layout of runs (1 to maxRun units long) whose kinds are drawn with the given shares of zero and hole. */
export function randomLayout(size: number, unit: number, shares: {zero: number; hole: number}, seed = 1, maxRun = 32): Layout {
	const random = prng(seed);
	const units = Math.ceil(size / unit);
	const kinds: UnitKind[] = [];
	while (kinds.length < units) {
		const r = random();
		const kind: UnitKind = r < shares.zero ? 'zero' : r < shares.zero + shares.hole ? 'hole' : 'data';
		const run = 1 + Math.floor(random() * maxRun);
		for (let i = 0; i < run && kinds.length < units; i++) {
			kinds.push(kind);
		}
	}
	return {size, unit, kinds};
}

/** A layout where every unit is data. */
export function dataLayout(size: number, unit = 4096): Layout {
	return {size, unit, kinds: Array.from({length: Math.ceil(size / unit)}, () => 'data' as const)};
}

/** Creates (or replaces) `file` as described: sized by truncate, data and zero units written, holes left unwritten. */
export function writeImage(file: string, layout: Layout): void {
	const fd = fs.openSync(file, 'w');
	try {
		fs.ftruncateSync(fd, layout.size);
		layout.kinds.forEach((kind, i) => {
			if (kind !== 'hole') {
				writeUnit(fd, layout, i, kind);
			}
		});
	} finally {
		fs.closeSync(fd);
	}
}

/** Overwrites the given units of an existing image in place with new random data or written zeros. */
export function rewriteUnits(file: string, layout: Layout, units: readonly number[], kind: 'data' | 'zero'): void {
	const fd = fs.openSync(file, 'r+');
	try {
		for (const i of units) {
			writeUnit(fd, layout, i, kind);
		}
	} finally {
		fs.closeSync(fd);
	}
}

function writeUnit(fd: number, layout: Layout, i: number, kind: 'data' | 'zero'): void {
	const start = i * layout.unit;
	const length = Math.min(layout.unit, layout.size - start);
	const bytes = kind === 'zero' ? Buffer.alloc(length) : randomBytes(length);
	if (kind === 'data') {
		bytes[0] = 1 + (bytes[0]! % 255); // never an all-zero unit by chance
	}
	fs.writeSync(fd, bytes, 0, length, start);
}

/** Bytes of the layout's data units (what a sparse copy must allocate, give or take file system overhead). */
export function dataBytes(layout: Layout): number {
	return layout.kinds.reduce((sum, kind, i) => sum + (kind === 'data' ? Math.min(layout.unit, layout.size - i * layout.unit) : 0), 0);
}

/** Indices of the units of one kind. */
export function unitsOf(layout: Layout, kind: UnitKind): number[] {
	return layout.kinds.flatMap((k, i) => (k === kind ? [i] : []));
}

/** Fills a file of `size` bytes with one byte value (garbage that a sync must overwrite or leave alone). */
export function fillFile(file: string, size: number, byte: number): void {
	const fd = fs.openSync(file, 'w');
	try {
		const chunk = Buffer.alloc(Math.min(size, 1 << 20) || 1, byte);
		for (let at = 0; at < size; at += chunk.length) {
			fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
		}
	} finally {
		fs.closeSync(fd);
	}
}

/** SHA-256 (hex) of bytes [start, end) of a file or block device; end defaults to the end of the file. */
export function sha256(file: string, start = 0, end = Number.POSITIVE_INFINITY): string {
	const hash = createHash('sha256');
	const fd = fs.openSync(file, 'r');
	try {
		const buffer = Buffer.allocUnsafe(1 << 20);
		for (let at = start; at < end;) {
			const n = fs.readSync(fd, buffer, 0, Math.min(buffer.length, end - at), at);
			if (n === 0) {
				break;
			}
			hash.update(buffer.subarray(0, n));
			at += n;
		}
	} finally {
		fs.closeSync(fd);
	}
	return hash.digest('hex');
}

/** Bytes the file system allocated for a file (st_blocks x 512). */
export function allocatedBytes(file: string): number {
	return fs.statSync(file).blocks * 512;
}

/** Allowed allocation above the data for file system metadata (extent blocks) and block rounding. */
export function allocationSlack(size: number): number {
	return 256 * 1024 + Math.ceil(size / 100);
}

/** A fresh directory under the system temp dir, world-accessible so an unprivileged uid can be tested in it. */
export function makeTempDir(prefix = 'rblocksync-e2e-', base = os.tmpdir()): string {
	const dir = fs.mkdtempSync(path.join(base, prefix));
	fs.chmodSync(dir, 0o755);
	return dir;
}

export function removeTempDir(dir: string): void {
	fs.rmSync(dir, {recursive: true, force: true});
}

/** Runs `use` with a fresh temp dir, removed afterwards whatever happens. */
export async function withTempDir<T>(use: (dir: string) => T | Promise<T>): Promise<T> {
	const dir = makeTempDir();
	try {
		return await use(dir);
	} finally {
		removeTempDir(dir);
	}
}

export const MiB = 1024 * 1024;

/** Picks one element of `items`. */
export function pick<T>(random: () => number, items: readonly T[]): T {
	return items[Math.floor(random() * items.length)]!;
}

export type RandomPair = {src: string; dst: string; size: number; unit: number; blockSize: number; dstState: string};

/**
 * Writes a random SRC (odd sizes, zero runs, holes) and a DST in a random state (missing, another image
 * of the same, larger or smaller size, or an older copy of SRC) into dir, from `random`.
 */
export function writeRandomPair(dir: string, seed: number, random: () => number): RandomPair {
	const blockSize = pick(random, [512, 4096, 65_536]);
	const size = Math.floor(random() * 5 * 1024 * 1024) + pick(random, [0, 1, 511, 4095]);
	const unit = pick(random, [512, 4096, 65_536]);
	const src = path.join(dir, `src-${seed}.img`);
	const dst = path.join(dir, `dst-${seed}.img`);
	writeImage(src, randomLayout(size, unit, {zero: random() * 0.4, hole: random() * 0.4}, seed, 8));
	const dstState = pick(random, ['missing', 'same-size', 'larger', 'smaller', 'copy-then-edit'] as const);
	if (dstState === 'copy-then-edit') {
		fs.copyFileSync(src, dst);
		writeImage(src, randomLayout(size, unit, {zero: 0.3, hole: 0.3}, seed + 1, 8));
	} else if (dstState !== 'missing') {
		const dstSize = dstState === 'same-size' ? size : dstState === 'larger' ? size + Math.floor(random() * 3 * 1024 * 1024) + 1 : Math.floor(size * random());
		writeImage(dst, randomLayout(dstSize, pick(random, [512, 4096]), {zero: 0.3, hole: 0.3}, seed + 2, 8));
	}
	return {src, dst, size, unit, blockSize, dstState};
}
