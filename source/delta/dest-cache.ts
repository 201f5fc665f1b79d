// DEST's digest cache through a run, as the agents on DST's host see it: the preparing agent takes the cache over
// (and reports its status), each worker reads and writes its range's records, the preparing agent commits at the end.
import fs from 'node:fs';
import os from 'node:os';
import type {Image} from '../image/image.js';
import {LocalImage} from '../image/local-image.js';
import {type Message, openFlags, RECORD_ONLY} from '../protocol/messages.js';
import {type WantedHeader, cacheLayout} from './digest-cache.js';
import {abandon, type CachePaths, cachePaths, cachePathsOf, commit, defaultCacheDir, FileRangeCache, fileIdentity, readCacheHeader, restore, takeOver} from './digest-cache-file.js';
import type {Hasher, HashName} from './hash.js';
import {checkSample, deviceIdentity, deviceKey} from './device-cache.js';

type OpenMessage = Extract<Message, {type: 'open'}>;

/** What DST's preparing agent keeps between taking the cache over and committing it. */
export type HeldCache = {readonly paths: CachePaths; readonly header: WantedHeader; status: string; readonly unchanged: boolean; committed: boolean};

function hashOf(open: OpenMessage): HashName {
	return open.hash === 'sha256' ? 'sha256' : 'blake3';
}

/** The cache directory on this host (~/.cache/rblocksync/digests; /var/lib/rblocksync/digests for root). */
export function cacheDir(): string {
	return defaultCacheDir(process.getuid?.() ?? -1, os.homedir());
}

/**
 * DST's prepare step with OPEN's cache flag, before any worker writes: the status for the CACHE frame, and what to
 * commit later (undefined: no cache this run, the status says why).
 */
/**
 * `created`: DST did not exist before this run, so a cache file named after its inode was a deleted file's.
 * `srcStamp`: SRC's quick-check stamp in this run (the driver's CACHE; '' when none): recorded at commit, and when it
 * is the one the cache recorded (and DST is unchanged too) the status is CACHE_UNCHANGED: the run reads nothing.
 * `hasher`: a block device's sample check (--trust-cache).
 */
export function prepareCache(open: OpenMessage, image: Image, dir = cacheDir(), created = false, srcStamp = '', hasher?: Hasher): {status: string; held?: HeldCache; warning?: string; bytesRead?: number} {
	if (!(image instanceof LocalImage)) {
		return {status: 'off: DST is not a local file'};
	}
	if (image.kind === 'block') {
		return prepareDeviceCache(open, image, dir, hasher);
	}
	const recordOnly = srcStamp.startsWith(RECORD_ONLY);
	const recorded = recordOnly ? srcStamp.slice(RECORD_ONLY.length) : srcStamp;
	try {
		const stat = fs.fstatSync(image.fd, {bigint: true});
		const paths = cachePaths(dir, stat);
		const header: WantedHeader = {hash: hashOf(open), blockSize: open.blockSize, size: open.srcSize, dstIdentity: fileIdentity(stat), srcStamp: recorded};
		// --copy writes DST in full whatever the stamp says.
		const taken = takeOver(paths, header, created, recordOnly || openFlags(open.flags).copy);
		if (typeof taken === 'string') {
			return {status: `off: ${taken}`};
		}
		return {status: taken.status, held: {paths, header, status: taken.status, unchanged: taken.unchanged, committed: false}};
	} catch (error) {
		return {status: `off: ${error instanceof Error ? error.message : String(error)}`};
	}
}

/**
 * A block device DST: the cache is bound to its size and stable id (device-cache.ts), and used only with --trust-cache
 * (OPEN's trustCache: the percentage of chunks read and checked against it now, before any worker writes); without
 * it the cache is built for a later trusted run but not used. A sample that differs discards it: a full read.
 */
function prepareDeviceCache(open: OpenMessage, image: LocalImage, dir: string, hasher: Hasher | undefined): {status: string; held?: HeldCache; warning?: string; bytesRead?: number} {
	try {
		const stat = fs.fstatSync(image.fd, {bigint: true});
		const paths = cachePathsOf(dir, deviceKey(stat.rdev));
		const header: WantedHeader = {hash: hashOf(open), blockSize: open.blockSize, size: open.srcSize, dstIdentity: deviceIdentity(stat.rdev, image.size), srcStamp: ''};
		// No quick check for a device: nothing shows that nobody wrote it.
		const taken = takeOver(paths, header, false, true);
		if (typeof taken === 'string') {
			return {status: `off: ${taken}`};
		}
		let status: string = taken.status;
		let warning: string | undefined;
		let bytesRead = 0;
		if (taken.usable) {
			const percent = open.trustCache === undefined ? Number.NaN : Number(open.trustCache);
			if (!(percent > 0 && percent <= 100) || !hasher) {
				status = 'built: DST is a block device, whose cache is used only with --trust-cache';
				fs.rmSync(paths.previous, {force: true});
			} else {
				const checked = checkSample(image, paths.previous, taken.layout, hasher, percent);
				const reason = checked.reason;
				bytesRead = checked.bytesRead;
				if (reason) {
					status = `stale: ${reason}`;
					warning = `DST ${image.name}: its digest cache was discarded: ${reason}; DST is read in full`;
					fs.rmSync(paths.previous, {force: true});
				}
			}
		}
		return {status, held: {paths, header, status, unchanged: false, committed: false}, ...(warning ? {warning} : {}), ...(bytesRead > 0 ? {bytesRead} : {})};
	} catch (error) {
		return {status: `off: ${error instanceof Error ? error.message : String(error)}`};
	}
}

/** The files of DST's cache: a file's named after its device and inode, a block device's after its stable id. */
function pathsFor(dir: string, image: LocalImage): CachePaths {
	const stat = fs.fstatSync(image.fd, {bigint: true});
	return image.kind === 'block' ? cachePathsOf(dir, deviceKey(stat.rdev)) : cachePaths(dir, stat);
}

/** A DEST worker's range cache (OPEN's cache flag), on the files its preparing agent took over; undefined when there are none. */
export function workerCache(open: OpenMessage, image: Image, dir = cacheDir()): FileRangeCache | undefined {
	const layout = cacheLayout(open.srcSize, open.blockSize);
	if (!(image instanceof LocalImage) || typeof layout === 'string') {
		return undefined;
	}
	const paths = pathsFor(dir, image);
	if (!fs.existsSync(paths.building)) {
		return undefined;
	}
	return new FileRangeCache(layout, paths, fs.existsSync(paths.previous));
}

/**
 * After every worker's DONE and the driver's checks: DST flushed, its identity now recorded, the cache put in place; after a
 * quick check, the cache put back if DST is still what it recorded. Returns the status for the summary.
 */
export function commitCache(held: HeldCache, image: Image): string {
	if (!(image instanceof LocalImage)) {
		return held.status;
	}
	if (held.unchanged) {
		const kept = restore(held.paths, fileIdentity(fs.fstatSync(image.fd, {bigint: true})));
		held.committed = true;
		held.status = kept ? held.status : 'stale: DST changed during the run';
		return held.status;
	}
	fs.fdatasyncSync(image.fd);
	const stat = fs.fstatSync(image.fd, {bigint: true});
	commit(held.paths, {...held.header, dstIdentity: image.kind === 'block' ? deviceIdentity(stat.rdev, image.size) : fileIdentity(stat)});
	held.committed = true;
	return held.status;
}

/** The agent ends without a commit (a failed or interrupted run): nothing is kept. */
export function dropCache(held: HeldCache | undefined): void {
	if (held && !held.committed) {
		try {
			abandon(held.paths);
		} catch {
			// Left over files are found and removed by the next run's prepare step.
		}
	}
}

/**
 * Whether `dstPath` is a block device a digest cache can be kept for at `blockSize` (blocks of 4 KiB or more): a local
 * run to it then takes the digest path, which builds the cache (and uses it with --trust-cache, after its sample).
 */
export function deviceCacheable(dstPath: string, blockSize: number): boolean {
	try {
		return fs.statSync(dstPath).isBlockDevice() && typeof cacheLayout(0, blockSize) !== 'string';
	} catch {
		return false;
	}
}

/**
 * Whether this host keeps a cache for the file at `dstPath` that the digest path can use (its header made with this hash
 * and block size, for DST as it is now): a local run then takes the digest path instead of comparing bytes.
 */
export function usableCacheFor(dstPath: string, hash: HashName, blockSize: number, dir = cacheDir()): boolean {
	try {
		const stat = fs.statSync(dstPath, {bigint: true});
		if (!stat.isFile()) {
			return false;
		}
		const header = readCacheHeader(cachePaths(dir, stat).final);
		return header !== undefined && header.hash === hash && header.blockSize === blockSize && header.dstIdentity === fileIdentity(stat);
	} catch {
		return false;
	}
}
