// --bitmap NAME: SRC's persistent dirty bitmap, rotated so that no write is ever lost, and the record of the last
// completed pass kept beside it on SRC's host. Who serves the export (qemu-nbd here, a running QEMU over QMP) only
// changes the BitmapStore; the rotation and the record are the same.
import {createHash} from 'node:crypto';
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {UsageError} from '../errors.js';
import {missingQemuTool, qemuImgHelp} from './qemu-server.js';

/** The bitmaps of one image: what the rotation needs of whoever owns it (qemu-img for a file no VM runs, QMP for a VM). */
export type BitmapStore = {
	/** Name and whether it records writes (qemu-img: flag "auto"). */
	list(): Array<{readonly name: string; readonly enabled: boolean}>;
	add(name: string): void;
	clear(name: string): void;
	/** Sets in `into` every bit set in `from`. */
	merge(from: string, into: string): void;
	remove(name: string): void;
};

/** The companion of NAME that records the writes made while a pass runs. */
export function nextBitmap(name: string): string {
	return `${name}.next`;
}

/**
 * Before a pass (not a dry run): a NAME.next left by a run that ended mid-rotation is merged into NAME first (NAME is
 * then every write since the last completed pass began), then a fresh NAME.next starts recording; from here on every
 * write lands in both. Idempotent: a crash anywhere here and the next run does it again.
 */
export function beginPass(store: BitmapStore, name: string): void {
	const next = nextBitmap(name);
	if (store.list().some(bitmap => bitmap.name === next)) {
		store.merge(next, name);
		store.remove(next);
	}
	store.add(next);
}

/**
 * After a successful pass, in this order (each step a separate call of the store, so a crash can fall between any
 * two): NAME cleared (NAME.next holds every write since the pass began), NAME.next merged into NAME, NAME.next
 * removed. At every point NAME ∪ NAME.next holds every write since the pass began, and beginPass of the next
 * run makes NAME that union.
 */
export const FINISH_STEPS = ['clear', 'merge', 'remove'] as const;

export function finishStep(store: BitmapStore, name: string, step: (typeof FINISH_STEPS)[number]): void {
	const next = nextBitmap(name);
	switch (step) {
		case 'clear':
			store.clear(name);
			return;
		case 'merge':
			store.merge(next, name);
			return;
		case 'remove':
			store.remove(next);
			return;
	}
}

export function finishPass(store: BitmapStore, name: string): void {
	for (const step of FINISH_STEPS) {
		finishStep(store, name, step);
	}
}

/** Refuses a bitmap that is missing or records nothing (one line each, exit 1). */
export function checkBitmap(store: BitmapStore, name: string, file: string): void {
	const found = store.list().find(bitmap => bitmap.name === name);
	if (!found) {
		throw new UsageError(`SRC ${file} has no dirty bitmap ${name}: add one with qemu-img bitmap --add ${file} ${name} (the first pass then copies everything)`);
	}
	if (!found.enabled) {
		throw new UsageError(`SRC ${file}: its dirty bitmap ${name} is disabled and records no writes: qemu-img bitmap --enable ${file} ${name}`);
	}
}

/** A tool run to its end; its last line of stderr in the error. */
function run(tool: string, args: readonly string[], what: string): string {
	const result = spawnSync(tool, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
	if ((result.error as {code?: string} | undefined)?.code === 'ENOENT') {
		throw new UsageError(missingQemuTool(tool));
	}
	if (result.error || result.status !== 0) {
		const said = (result.stderr || result.error?.message || `exit status ${result.status}`).trim().split('\n').pop()!.replace(/^qemu-img: /, '');
		throw new UsageError(`${what}: ${said}`);
	}
	return result.stdout;
}

/** Whether this host's qemu-img has the bitmap subcommand (QEMU 5.0 and newer). */
export function qemuImgHasBitmap(): boolean {
	return /^\s*bitmap \(/m.test(qemuImgHelp());
}

/**
 * The bitmaps of an image file no VM runs, through qemu-img (which takes the image's write lock for each change).
 * list() is read once until the next change made through this store (checkBitmap then beginPass: one qemu-img info).
 */
export function qemuImgBitmaps(file: string, format: string): BitmapStore {
	let listed: Array<{readonly name: string; readonly enabled: boolean}> | undefined;
	const change = (args: string[], what: string): void => {
		listed = undefined;
		run('qemu-img', ['bitmap', '-f', format, ...args], `SRC ${file}: ${what}`);
	};
	return {
		list() {
			if (!listed) {
				const info = JSON.parse(run('qemu-img', ['info', '-U', '--output=json', '-f', format, file], `SRC ${file}`)) as {'format-specific'?: {data?: {bitmaps?: Array<{name: string; flags: string[]}>}}};
				listed = (info['format-specific']?.data?.bitmaps ?? []).map(bitmap => ({name: bitmap.name, enabled: bitmap.flags.includes('auto')}));
			}
			return listed;
		},
		add: name => change(['--add', file, name], `cannot add the bitmap ${name}`),
		clear: name => change(['--clear', file, name], `cannot clear the bitmap ${name}`),
		merge: (from, into) => change(['--merge', from, file, into], `cannot merge the bitmap ${from} into ${into}`),
		remove: name => change(['--remove', file, name], `cannot remove the bitmap ${name}`),
	};
}

/** The refusals before anything is touched: a raw SRC, a qemu-img without bitmaps, a missing or disabled bitmap. */
export function checkBitmapSource(file: string, format: string | undefined, name: string): BitmapStore {
	if (format === undefined || format === '' || format === 'raw') {
		throw new UsageError(`--bitmap ${name}: SRC ${file} is ${format === 'raw' ? 'raw' : 'read as raw bytes'}, which keeps no dirty bitmap; give --src-format qcow2 for a qcow2 SRC`);
	}
	if (!qemuImgHasBitmap()) {
		throw new UsageError(`--bitmap ${name}: qemu-img on this host is too old for dirty bitmaps (QEMU 5.0 or newer has qemu-img bitmap)`);
	}
	const store = qemuImgBitmaps(file, format);
	checkBitmap(store, name, file);
	return store;
}

/**
 * The record of the last completed pass with a bitmap, on SRC's host: which DST it brought up to date and DST's stamp
 * right after (doc/protocol.md, Dirty bitmaps). A pass uses the bitmap only when the record names this DST and its
 * stamp is unchanged; anything else is a full pass.
 */
export type PassRecord = {readonly dst: string; readonly stamp: string};

export function encodePassRecord(record: PassRecord): string {
	return JSON.stringify({dst: record.dst, stamp: record.stamp});
}

/** undefined for anything that is not a record (a damaged file reads as no record: a full pass). */
export function decodePassRecord(text: string | undefined): PassRecord | undefined {
	if (!text) {
		return undefined;
	}
	try {
		const value = JSON.parse(text) as {dst?: unknown; stamp?: unknown};
		return typeof value.dst === 'string' && typeof value.stamp === 'string' && value.stamp !== '' ? {dst: value.dst, stamp: value.stamp} : undefined;
	} catch {
		return undefined;
	}
}

/** ~/.cache/rblocksync/bitmaps, or /var/lib/rblocksync/bitmaps for root. */
export function defaultRecordDir(uid = process.getuid?.() ?? -1, home = os.homedir()): string {
	return uid === 0 ? '/var/lib/rblocksync/bitmaps' : path.join(home, '.cache', 'rblocksync', 'bitmaps');
}

/** The record's file: named after SRC's device and inode and the bitmap's name. */
export function recordPath(dir: string, stat: {dev: number | bigint; ino: number | bigint}, bitmap: string): string {
	return path.join(dir, `${createHash('sha256').update(`${stat.dev}:${stat.ino}\0${bitmap}`).digest('hex').slice(0, 32)}.pass`);
}

export function readPassRecord(file: string): string | undefined {
	try {
		return fs.readFileSync(file, 'utf8');
	} catch {
		return undefined;
	}
}

/** Removes the record, durably: done before the rotation, so a crash during it never leaves a record the bitmap no longer matches. */
export function dropPassRecord(file: string): void {
	fs.rmSync(file, {force: true});
	syncDirectory(path.dirname(file));
}

/** Writes the record: temp file, fsync, rename, directory fsync. */
export function writePassRecord(file: string, text: string): void {
	fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700});
	const temp = `${file}.${process.pid}.tmp`;
	const fd = fs.openSync(temp, 'w', 0o600);
	try {
		fs.writeSync(fd, text);
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
	fs.renameSync(temp, file);
	syncDirectory(path.dirname(file));
}

function syncDirectory(dir: string): void {
	let fd: number | undefined;
	try {
		fd = fs.openSync(dir, 'r');
		fs.fsyncSync(fd);
	} catch {
		// A directory that is gone or cannot be opened: nothing to make durable.
	} finally {
		if (fd !== undefined) {
			fs.closeSync(fd);
		}
	}
}

/**
 * DST's stamp, as its preparing agent reports it: a file's (or a formatted image's container's) device, inode, size,
 * mtime and ctime in ns, which any write changes; a block device's number and size (a device cannot show whether
 * someone else wrote it).
 */
export function dstStamp(stat: fs.BigIntStats): string {
	return stat.isBlockDevice() ? `block:${stat.rdev}:${stat.size}` : `file:${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}
