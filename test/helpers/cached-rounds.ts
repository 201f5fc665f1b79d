// Cached rounds for the random-pairs hunts: after a pair converged, repeat runs over it with SRC changed between
// runs and DST sometimes changed behind its digest cache's back, each run's `cache` field checked against what the
// hunt knows of the cache (never "used" for a DST written since the cache was made), every run ending with DST = SRC.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import {cacheLayout} from '../../source/delta/digest-cache.js';
import {CACHE_UNCHANGED} from '../../source/protocol/messages.js';
import {pick} from './images.js';

/**
 * What the hunt knows of DST's cache in the suite's --cache-dir: `valid` (the last run with the cache on made it for
 * DST as it is, with `blockSize`), `tampered` (DST written or truncated behind its back since), `none` (no cache
 * can stand for DST: a new file, a new inode, or written behind a cache that may not exist), `unknown` (a run without
 * the cache wrote DST, or left it as it was).
 */
export type CacheState = {kind: 'valid'; blockSize: number} | {kind: 'tampered'} | {kind: 'none'} | {kind: 'unknown'};

/** Bytes from `random` (replayable from the seed, unlike randomBytes). */
function bytesOf(random: () => number, length: number): Buffer {
	const bytes = Buffer.alloc(length);
	for (let i = 0; i < length; i++) {
		bytes[i] = Math.floor(random() * 256);
	}
	return bytes;
}

function writeAt(file: string, bytes: Buffer, position: number): void {
	const fd = fs.openSync(file, 'r+');
	try {
		fs.writeSync(fd, bytes, 0, bytes.length, position);
	} finally {
		fs.closeSync(fd);
	}
}

/** Changes SRC between runs: random blocks, a range turned to zero, a new size (the run then needs --truncate), or nothing. */
export function changeSrc(random: () => number, src: string): {what: string; resized: boolean; changed: boolean} {
	const size = fs.statSync(src).size;
	const kind = size === 0 ? 'resize' : pick(random, ['blocks', 'blocks', 'zero', 'resize', 'none'] as const);
	if (kind === 'blocks') {
		const count = 1 + Math.floor(random() * 6);
		for (let i = 0; i < count; i++) {
			const length = Math.min(size, 1 + Math.floor(random() * 20_000));
			writeAt(src, bytesOf(random, length), Math.floor(random() * (size - length + 1)));
		}
		return {what: `${count} random writes`, resized: false, changed: true};
	}
	if (kind === 'zero') {
		const length = Math.min(size, 1 + Math.floor(random() * 300_000));
		const position = Math.floor(random() * (size - length + 1));
		writeAt(src, Buffer.alloc(length), position);
		return {what: `zeros at ${position}+${length}`, resized: false, changed: true};
	}
	if (kind === 'resize') {
		const to = random() < 0.5 ? Math.floor(size * random()) : size + 1 + Math.floor(random() * 1024 * 1024);
		fs.truncateSync(src, to);
		if (to > size && random() < 0.5) {
			const length = Math.min(to - size, 1 + Math.floor(random() * 10_000));
			writeAt(src, bytesOf(random, length), to - length);
		}
		return {what: `resized to ${to}`, resized: true, changed: to !== size};
	}
	return {what: 'SRC unchanged', resized: false, changed: false};
}

/** Changes DST behind its cache's back (dd conv=notrunc, truncate and extend, replaced by another file), or returns undefined. */
export function tamperDst(random: () => number, dst: string, other: string): {what: string; state: CacheState} | undefined {
	const size = fs.statSync(dst).size;
	if (random() >= 0.35 || size === 0) {
		return undefined;
	}
	const kind = pick(random, ['dd', 'dd', 'truncate', 'replace'] as const);
	if (kind === 'dd') {
		const bs = pick(random, [512, 4096]);
		const count = 1 + Math.floor(random() * 3);
		const seek = Math.floor(random() * Math.max(1, Math.floor(size / bs) - count));
		fs.writeFileSync(other, bytesOf(random, bs * count));
		execFileSync('dd', [`if=${other}`, `of=${dst}`, `bs=${bs}`, `seek=${seek}`, `count=${count}`, 'conv=notrunc', 'status=none']);
		fs.rmSync(other);
		return {what: `DST: dd ${count} x ${bs} at block ${seek}`, state: {kind: 'tampered'}};
	}
	if (kind === 'truncate') {
		const to = Math.floor(size * random());
		fs.truncateSync(dst, to);
		fs.truncateSync(dst, size);
		return {what: `DST: truncated to ${to} and extended again`, state: {kind: 'tampered'}};
	}
	fs.copyFileSync(dst, other);
	writeAt(other, bytesOf(random, Math.min(size, 4096)), Math.floor(random() * Math.max(1, size - 4096)));
	fs.renameSync(other, dst);
	return {what: 'DST: replaced by another file', state: {kind: 'none'}};
}

/** A run's facts, for `checkCache`. */
export type RunFacts = {
	/** The run went over SSH (DEST an agent keeping its cache); false: both images local, the cache used only when usable. */
	readonly remote: boolean;
	readonly noCache: boolean;
	readonly blockSize: number;
	readonly srcChanged: boolean;
	readonly resized: boolean;
	/** A --no-cache run happened since DST was tampered with (the cache file may be gone: then "built"). */
	readonly noCacheSince: boolean;
};

const stale = (cache: unknown): boolean => typeof cache === 'string' && cache.startsWith('stale: ');

/** Undefined when `cache` is one of the values allowed for `state` and the run; else what is wrong. */
export function checkCache(cache: unknown, state: CacheState, run: RunFacts): string | undefined {
	const got = String(cache);
	const allowed = (ok: boolean, expected: string): string | undefined => (ok ? undefined : `cache ${got}, expected ${expected} (cache ${state.kind})`);
	if (run.noCache) {
		return allowed(cache === undefined, 'none with --no-cache');
	}
	if (typeof cacheLayout(0, run.blockSize) === 'string') {
		// Blocks under 4 KiB keep no cache: an agent says so, a local run compares bytes.
		return allowed(run.remote ? got.startsWith('off: ') : cache === undefined, 'off (blocks under 4 KiB)');
	}
	const used = cache === 'used' || (cache === CACHE_UNCHANGED && !run.srcChanged);
	if (!run.remote) {
		// A local run takes the digest path only for a usable cache (DST's identity, hash and block size match).
		switch (state.kind) {
			case 'valid': {
				return state.blockSize === run.blockSize ? allowed(used || (run.resized && stale(cache)), 'used') : allowed(cache === undefined, 'none (another block size)');
			}
			case 'tampered':
			case 'none': {
				return allowed(cache === undefined, 'none');
			}
			case 'unknown': {
				return allowed(cache === undefined || used || stale(cache), 'none, used or stale');
			}
		}
	}
	switch (state.kind) {
		case 'valid': {
			return state.blockSize === run.blockSize ? allowed(used || (run.resized && stale(cache)), 'used') : allowed(stale(cache), 'stale (another block size)');
		}
		case 'tampered': {
			return allowed(stale(cache) || (run.noCacheSince && cache === 'built'), 'stale');
		}
		case 'none': {
			return allowed(cache === 'built' || stale(cache), 'built or stale');
		}
		case 'unknown': {
			return allowed(cache === 'built' || used || stale(cache), 'built, used or stale');
		}
	}
}

/** The state after a run that succeeded with `cache` in its --json. */
export function stateAfter(cache: unknown, before: CacheState, run: RunFacts): CacheState {
	if (run.noCache || cache === undefined || String(cache).startsWith('off: ')) {
		// Nothing built: a tampered DST stays unusable to the cache (its identity changed); else the run may have written DST.
		return before.kind === 'tampered' ? before : {kind: 'unknown'};
	}
	return {kind: 'valid', blockSize: run.blockSize};
}
