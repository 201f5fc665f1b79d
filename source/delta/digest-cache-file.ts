// DEST's digest cache on disk, on DST's host: which file belongs to which DST, taking the old one out of use before
// the first write, each worker's records streamed by range, and the new one put in place atomically after success.
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {KEY_SIZE, newKey} from './keyed.js';
import {CACHE_UNCHANGED} from '../protocol/messages.js';
import {type CachedChunk, type WantedHeader, type CacheHeader, type CacheLayout, cacheLayout, decodeHeader, encodeHeader, HEADER_SIZE, KEY_OFFSET, readRecord, recordPosition, type RangeCache, staleReason, writeRecord, CacheFormatError} from './digest-cache.js';

/** ~/.cache/rblocksync/digests, or /var/lib/rblocksync/digests for root. */
export function defaultCacheDir(uid: number, home: string): string {
	return uid === 0 ? '/var/lib/rblocksync/digests' : path.join(home, '.cache', 'rblocksync', 'digests');
}

/** A file DST's identity as a cache records it: device, inode, size, mtime and ctime in ns (taken after the final fdatasync). */
export function fileIdentity(stat: fs.BigIntStats): string {
	return `file:${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

/** The files of one DST's cache in `dir`: named after DST's device and inode, so another DST never finds it. */
export type CachePaths = {readonly final: string; readonly previous: string; readonly building: string};

export function cachePaths(dir: string, stat: fs.BigIntStats): CachePaths {
	return cachePathsOf(dir, createHash('sha256').update(`${stat.dev}:${stat.ino}`).digest('hex').slice(0, 32));
}

/** The files of the cache named `key` in `dir` (a file's from its device and inode, a block device's from its stable id). */
export function cachePathsOf(dir: string, key: string): CachePaths {
	const final = path.join(dir, `${key}.digests`);
	return {final, previous: `${final}.previous`, building: `${final}.building`};
}

/** What the prepare step found: `usable` (then `previous` holds the records), or why not. */
export type TakeOver = {
	readonly usable: boolean;
	/** SRC's stamp and DST match the cache (SRC's quick check): nothing to read or write; `.previous` is put back at commit. */
	readonly unchanged: boolean;
	readonly status: 'used' | 'built' | `stale: ${string}` | typeof CACHE_UNCHANGED;
	readonly layout: CacheLayout;
	readonly srcStamp: string;
	/** The key the records are made with: the previous cache's when it is used, else a fresh one. */
	readonly key: Buffer;
};

/**
 * Run by DST's lock holder before any worker writes: moves the cache out of its name (so a crash or a failure from
 * here on leaves no cache claiming DST's content), says whether it can stand for DST (`wanted`: this run's header,
 * with DST's identity as it is now), and creates the empty file the workers write their records into.
 */
export function takeOver(paths: CachePaths, wanted: WantedHeader, fresh = false, recordOnly = false): TakeOver | string {
	const layout = cacheLayout(wanted.size, wanted.blockSize);
	if (typeof layout === 'string') {
		return layout;
	}
	fs.mkdirSync(path.dirname(paths.final), {recursive: true, mode: 0o700});
	const leftOver = fs.existsSync(paths.building) || fs.existsSync(paths.previous);
	for (const name of [paths.building, paths.previous]) {
		fs.rmSync(name, {force: true});
	}
	let status: TakeOver['status'] = 'built';
	let srcStamp = '';
	let key = newKey();
	if (fresh) {
		// A DST created by this run: a cache under its device and inode was a deleted file's.
		fs.rmSync(paths.final, {force: true});
	} else if (fs.existsSync(paths.final)) {
		const reason = examine(paths.final, wanted);
		if (typeof reason === 'string') {
			status = `stale: ${reason}`;
		} else if (!recordOnly && reason.srcStamp !== '' && reason.srcStamp === wanted.srcStamp) {
			// SRC's quick check: SRC is the file the cache's last run copied, unchanged since, and DST too.
			fs.renameSync(paths.final, paths.previous);
			syncDirectory(path.dirname(paths.final));
			return {usable: true, unchanged: true, status: CACHE_UNCHANGED, layout, srcStamp: reason.srcStamp, key: reason.key};
		} else {
			status = 'used';
			srcStamp = reason.srcStamp;
			key = reason.key;
		}
		fs.renameSync(paths.final, paths.previous);
		syncDirectory(path.dirname(paths.final));
		if (status !== 'used') {
			fs.rmSync(paths.previous, {force: true});
		}
	} else if (leftOver) {
		status = 'stale: the run that was writing it did not finish';
	}
	const fd = fs.openSync(paths.building, 'w', 0o600);
	try {
		fs.ftruncateSync(fd, layout.fileSize);
		// The workers take the key from here (the header proper is written at commit).
		fs.writeSync(fd, key, 0, KEY_SIZE, KEY_OFFSET);
	} finally {
		fs.closeSync(fd);
	}
	return {usable: status === 'used', unchanged: false, status, layout, srcStamp, key};
}

/** The header of a cache file when it can stand for `wanted`, else the reason. */
function examine(file: string, wanted: WantedHeader): CacheHeader | string {
	let fd: number;
	try {
		fd = fs.openSync(file, 'r');
	} catch (error) {
		return `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
	}
	try {
		const bytes = Buffer.alloc(HEADER_SIZE);
		fs.readSync(fd, bytes, 0, HEADER_SIZE, 0);
		const found = decodeHeader(bytes);
		return staleReason(found, wanted, fs.fstatSync(fd).size) ?? found;
	} catch (error) {
		return error instanceof CacheFormatError ? error.message : 'cannot be read';
	} finally {
		fs.closeSync(fd);
	}
}

/** Chunks of records read ahead at once: the records of a range are streamed, never all in memory. */
const WINDOW_CHUNKS = 256;

/** One worker's view of the cache: reads the previous records (when usable) in windows, writes its own records at once. */
export class FileRangeCache implements RangeCache {
	private readonly input: number | undefined;
	private readonly output: number;
	private window: {first: number; bytes: Buffer} | undefined;
	private readonly record_: Buffer;
	readonly key = Buffer.alloc(KEY_SIZE);

	constructor(private readonly layout: CacheLayout, paths: CachePaths, usable: boolean) {
		this.input = usable ? fs.openSync(paths.previous, 'r') : undefined;
		this.output = fs.openSync(paths.building, 'r+');
		this.record_ = Buffer.alloc(layout.recordSize);
		fs.readSync(this.output, this.key, 0, KEY_SIZE, KEY_OFFSET);
	}

	known(offset: number, length: number): CachedChunk | undefined {
		if (this.input === undefined) {
			return undefined;
		}
		const index = (recordPosition(this.layout, offset) - HEADER_SIZE) / this.layout.recordSize;
		if (!this.window || index < this.window.first || index >= this.window.first + this.window.bytes.length / this.layout.recordSize) {
			const count = Math.min(WINDOW_CHUNKS, this.layout.chunks - index);
			const bytes = Buffer.alloc(count * this.layout.recordSize);
			fs.readSync(this.input, bytes, 0, bytes.length, HEADER_SIZE + index * this.layout.recordSize);
			this.window = {first: index, bytes};
		}
		return readRecord(this.layout, this.window.bytes, index - this.window.first, length);
	}

	record(offset: number, _length: number, chunk: CachedChunk): void {
		writeRecord(this.layout, this.record_, 0, chunk);
		fs.writeSync(this.output, this.record_, 0, this.record_.length, recordPosition(this.layout, offset));
	}

	close(): void {
		for (const fd of [this.input, this.output]) {
			if (fd !== undefined) {
				fs.closeSync(fd);
			}
		}
	}
}

/**
 * After DST's fdatasync and a successful run (every worker's records written): the header with DST's identity then,
 * fsync, rename over the cache's name, fsync the directory. Before this, no file under the cache's name exists.
 */
export function commit(paths: CachePaths, header: WantedHeader): void {
	const fd = fs.openSync(paths.building, 'r+');
	try {
		// The key takeOver put there, which the workers keyed the records with.
		const key = Buffer.alloc(KEY_SIZE);
		fs.readSync(fd, key, 0, KEY_SIZE, KEY_OFFSET);
		fs.writeSync(fd, encodeHeader({...header, key}), 0, HEADER_SIZE, 0);
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
	fs.renameSync(paths.building, paths.final);
	fs.rmSync(paths.previous, {force: true});
	syncDirectory(path.dirname(paths.final));
}

/**
 * After a successful run that SRC's quick check let read and write nothing: the cache goes back under its name when
 * DST's identity is still the one it recorded (`dstIdentity` now), else it is dropped. Returns whether it was kept.
 */
export function restore(paths: CachePaths, dstIdentity: string): boolean {
	const kept = examine(paths.previous, {...headerOf(paths.previous), dstIdentity});
	if (typeof kept === 'string') {
		abandon(paths);
		return false;
	}
	fs.renameSync(paths.previous, paths.final);
	syncDirectory(path.dirname(paths.final));
	return true;
}

/** The header of the cache file `file`, or undefined when there is none or it is no cache. */
export function readCacheHeader(file: string): CacheHeader | undefined {
	try {
		return headerOf(file);
	} catch {
		return undefined;
	}
}

function headerOf(file: string): CacheHeader {
	const bytes = Buffer.alloc(HEADER_SIZE);
	const fd = fs.openSync(file, 'r');
	try {
		fs.readSync(fd, bytes, 0, HEADER_SIZE, 0);
	} finally {
		fs.closeSync(fd);
	}
	return decodeHeader(bytes);
}

/** A failed or interrupted run: nothing is kept (the old cache was taken out of use before the first write). */
export function abandon(paths: CachePaths): void {
	for (const name of [paths.building, paths.previous]) {
		fs.rmSync(name, {force: true});
	}
}

function syncDirectory(dir: string): void {
	const fd = fs.openSync(dir, 'r');
	try {
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
}
