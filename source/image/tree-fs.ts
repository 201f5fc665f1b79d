// Directory trees on this host for runs over many files: the listing (lstat, never following a symlink below the
// root), and the three changes the driver makes around the files' syncs, each refusing a path whose directories
// below the root are not real directories (a symlink there could lead outside it).
import fs from 'node:fs';
import {describeSystemError} from '../errors.js';
import type {EntryKind, FileAttrs, Listing, TreeEntry} from '../tree/plan.js';
import {badRelativePath, joinPath} from '../tree/plan.js';

function kindOf(stat: fs.BigIntStats | fs.Stats): EntryKind {
	if (stat.isFile()) {
		return 'file';
	}
	if (stat.isDirectory()) {
		return 'dir';
	}
	if (stat.isSymbolicLink()) {
		return 'symlink';
	}
	if (stat.isBlockDevice() || stat.isCharacterDevice()) {
		return 'device';
	}
	if (stat.isFIFO()) {
		return 'fifo';
	}
	return stat.isSocket() ? 'socket' : 'other';
}

/** One entry from lstat. */
export function entryOf(path: string, stat: fs.BigIntStats): TreeEntry {
	const mtimeNs = stat.mtimeNs < 0n ? 0n : stat.mtimeNs;
	return {
		path, kind: kindOf(stat), size: Number(stat.size), mode: Number(stat.mode) & 0o7777, uid: Number(stat.uid), gid: Number(stat.gid),
		mtimeSec: Number(mtimeNs / 1_000_000_000n), mtimeNsec: Number(mtimeNs % 1_000_000_000n),
		stamp: stampOf(stat), changedMs: Math.max(0, Number(stat.ctimeNs / 1_000_000n)),
	};
}

/** "dev:ino:size:mtime-ns:ctime-ns". */
export function stampOf(stat: fs.BigIntStats): string {
	return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

/**
 * Every entry below `root` (the root itself followed if it is a symlink; nothing below it is), parents before
 * children; undefined when `root` does not exist. Throws a one-line Error when it is no directory or cannot be read.
 * An entry that vanishes while the listing runs is left out.
 */
export function listTree(root: string): Listing | undefined {
	const nowMs = Date.now();
	const entries = listEntries(root);
	return entries === undefined ? undefined : {entries, nowMs};
}

function listEntries(root: string): TreeEntry[] | undefined {
	let top: fs.Stats;
	try {
		top = fs.statSync(root);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			return undefined;
		}
		throw new Error(`${root}: ${describeSystemError(error)}`);
	}
	if (!top.isDirectory()) {
		throw new Error(`${root}: not a directory`);
	}
	const entries: TreeEntry[] = [];
	const walk = (relative: string): void => {
		const dir = joinPath(root, relative);
		let names: string[];
		try {
			names = fs.readdirSync(dir);
		} catch (error) {
			if (relative !== '' && (error as NodeJS.ErrnoException).code === 'ENOENT') {
				return;
			}
			throw new Error(`${dir}: ${describeSystemError(error)}`);
		}
		for (const name of names.sort()) {
			const path = relative === '' ? name : `${relative}/${name}`;
			let stat: fs.BigIntStats;
			try {
				stat = fs.lstatSync(joinPath(root, path), {bigint: true});
			} catch (error) {
				if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
					continue;
				}
				throw new Error(`${joinPath(root, path)}: ${describeSystemError(error)}`);
			}
			const entry = entryOf(path, stat);
			entries.push(entry);
			if (entry.kind === 'dir') {
				walk(path);
			}
		}
	};
	walk('');
	return entries;
}

/** Throws unless every directory of `relative` below `root` (not the last component) is a real directory. */
function checkParents(root: string, relative: string): void {
	const bad = badRelativePath(relative);
	if (bad !== undefined) {
		throw new Error(`${JSON.stringify(relative)}: ${bad}`);
	}
	const parts = relative.split('/');
	for (let depth = 1; depth < parts.length; depth++) {
		const dir = joinPath(root, parts.slice(0, depth).join('/'));
		const stat = fs.lstatSync(dir);
		if (!stat.isDirectory()) {
			throw new Error(`${dir}: not a directory${stat.isSymbolicLink() ? ' (a symlink: not followed)' : ''}`);
		}
	}
}

/** Creates `root` (with its parents) and then `relative`'s directories below it, none of them through a symlink. */
export function makeDirectories(root: string, relative: string): void {
	fs.mkdirSync(root, {recursive: true});
	if (relative === '') {
		return;
	}
	const bad = badRelativePath(relative);
	if (bad !== undefined) {
		throw new Error(`${JSON.stringify(relative)}: ${bad}`);
	}
	// One level at a time, each checked before the next is made in it.
	const parts = relative.split('/');
	for (let depth = 1; depth <= parts.length; depth++) {
		const dir = joinPath(root, parts.slice(0, depth).join('/'));
		try {
			fs.mkdirSync(dir, 0o755);
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
				throw error;
			}
			const stat = fs.lstatSync(dir);
			if (!stat.isDirectory()) {
				throw new Error(`${dir}: not a directory${stat.isSymbolicLink() ? ' (a symlink: not followed)' : ''}`);
			}
		}
	}
}

/** Removes the regular file `relative` below `root` (--delete); anything else there (a symlink, a directory) is refused. */
export function removeFile(root: string, relative: string): void {
	checkParents(root, relative);
	const path = joinPath(root, relative);
	const stat = fs.lstatSync(path);
	if (!stat.isFile()) {
		throw new Error(`${path}: not a regular file; not removed`);
	}
	fs.unlinkSync(path);
}

/**
 * Gives the regular file `relative` below `root` SRC's permission bits and mtime, and its owner when this process
 * runs as root (as `rsync -a` does); nothing is changed that is already so (a change of ctime would make DST's
 * digest cache stale for nothing). The file is opened without following a symlink. Returns its stamp after.
 */
export function setAttributes(root: string, relative: string, attrs: FileAttrs): string {
	checkParents(root, relative);
	const path = joinPath(root, relative);
	const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
	try {
		const stat = fs.fstatSync(fd, {bigint: true});
		if (!stat.isFile()) {
			throw new Error(`${path}: not a regular file`);
		}
		if (process.getuid?.() === 0 && (Number(stat.uid) !== attrs.uid || Number(stat.gid) !== attrs.gid)) {
			fs.fchownSync(fd, attrs.uid, attrs.gid);
		}
		if ((Number(stat.mode) & 0o7777) !== attrs.mode) {
			fs.fchmodSync(fd, attrs.mode);
		}
		const wanted = BigInt(attrs.mtimeSec) * 1_000_000_000n + BigInt(attrs.mtimeNsec);
		// futimes takes seconds as a double: right to about a microsecond, which is what is compared.
		const off = stat.mtimeNs / 1000n - wanted / 1000n;
		if (off > 1n || off < -1n) {
			const mtime = attrs.mtimeSec + attrs.mtimeNsec / 1e9;
			fs.futimesSync(fd, Number(stat.atimeNs / 1000n) / 1e6, mtime);
		}
		// The file's stamp as it is now, for the tree's record of this run (many.ts).
		return stampOf(fs.fstatSync(fd, {bigint: true}));
	} finally {
		fs.closeSync(fd);
	}
}
