// A block device DST's digest cache: what binds it to one device (its size and stable identifiers from /sys), and the
// random sample of chunks read and checked against it every run (--trust-cache), since a device has no ctime to tell
// that someone else wrote it.
import {createHash, randomInt} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type {Image} from '../image/image.js';
import {ChunkState, type Geometry} from './chunks.js';
import {type CacheLayout, readRecord, recordPosition} from './digest-cache.js';
import type {Hasher} from './hash.js';

/** Linux's major and minor of a dev_t (glibc's gnu_dev_major/minor). */
export function majorMinor(rdev: bigint): {major: number; minor: number} {
	const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
	const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
	return {major, minor};
}

/** Reads a /sys attribute, trimmed; undefined when absent or empty. */
function attribute(file: string): string | undefined {
	try {
		const value = fs.readFileSync(file, 'utf8').trim();
		return value === '' ? undefined : value;
	} catch {
		return undefined;
	}
}

/**
 * What names a device across reboots and renames, from /sys/dev/block/MAJ:MIN: a dm/LVM UUID, a loop device's
 * backing file (its device, inode, offset and size limit), a WWN/WWID or serial (of the whole disk, and the
 * partition number for a partition), else major:minor. `sys`: the sysfs root (tests).
 */
export function deviceId(rdev: bigint, sys = '/sys'): string {
	const {major, minor} = majorMinor(rdev);
	const dir = path.join(sys, 'dev', 'block', `${major}:${minor}`);
	const uuid = attribute(path.join(dir, 'dm', 'uuid'));
	if (uuid) {
		return `dm:${uuid}`;
	}
	const backing = attribute(path.join(dir, 'loop', 'backing_file'));
	if (backing) {
		const offset = attribute(path.join(dir, 'loop', 'offset')) ?? '0';
		const limit = attribute(path.join(dir, 'loop', 'sizelimit')) ?? '0';
		try {
			const stat = fs.statSync(backing, {bigint: true});
			return `loop:${stat.dev}:${stat.ino}:${offset}:${limit}`;
		} catch {
			// A deleted backing file ("(deleted)"): nothing stable to name; major:minor below, with its old path.
			return `loop:${major}:${minor}:${backing}:${offset}:${limit}`;
		}
	}
	const partition = attribute(path.join(dir, 'partition'));
	let disk = dir;
	try {
		disk = partition ? path.dirname(fs.realpathSync(dir)) : dir;
	} catch {
		// Keep dir.
	}
	const wwid = attribute(path.join(disk, 'device', 'wwid')) ?? attribute(path.join(disk, 'wwid'));
	const serial = attribute(path.join(disk, 'device', 'serial')) ?? attribute(path.join(disk, 'serial'));
	const part = partition ? `:part${partition}` : '';
	if (wwid) {
		return `wwid:${wwid}${part}`;
	}
	if (serial) {
		return `serial:${serial}${part}`;
	}
	return `devno:${major}:${minor}`;
}

/** A block device DST's identity as a cache records it: its size and stable id. */
export function deviceIdentity(rdev: bigint, size: number, sys = '/sys'): string {
	return `block:${size}:${deviceId(rdev, sys)}`;
}

/** The cache's file key of a device: its stable id (not the /dev node's inode, which changes on every boot). */
export function deviceKey(rdev: bigint, sys = '/sys'): string {
	return createHash('sha256').update(`block:${deviceId(rdev, sys)}`).digest('hex').slice(0, 32);
}

/** How many chunks a sample of `percent` of `chunks` checks: at least 8 (all when there are fewer). */
export function sampleCount(chunks: number, percent: number): number {
	return Math.min(chunks, Math.max(8, Math.ceil((chunks * percent) / 100)));
}

/** `count` distinct chunk indexes below `chunks`, uniformly at random. */
export function sampleChunks(chunks: number, count: number, random: (below: number) => number = below => randomInt(below)): number[] {
	const picked = new Set<number>();
	if (count >= chunks) {
		return Array.from({length: chunks}, (_, index) => index);
	}
	while (picked.size < count) {
		picked.add(random(chunks));
	}
	return [...picked].sort((a, b) => a - b);
}

/**
 * Reads a random sample of DST's chunks and compares each chunk digest with the cache's record (`file`: the cache
 * taken over, `.previous`). Returns the first mismatch as a stale reason, else undefined; and the bytes read.
 */
export function checkSample(image: Image, file: string, layout: CacheLayout, hasher: Hasher, percent: number): {reason: string | undefined; bytesRead: number} {
	const geometry: Geometry = layout.geometry;
	const size = Math.min(image.size, layout.size);
	const chunk = new ChunkState(geometry, hasher);
	const record = Buffer.alloc(layout.recordSize);
	let bytesRead = 0;
	const fd = fs.openSync(file, 'r');
	try {
		for (const index of sampleChunks(layout.chunks, sampleCount(layout.chunks, percent))) {
			const offset = index * geometry.chunkSize;
			const length = Math.min(geometry.chunkSize, size - offset);
			if (length <= 0) {
				continue;
			}
			fs.readSync(fd, record, 0, record.length, recordPosition(layout, offset));
			const cached = readRecord(layout, record, 0, length);
			chunk.load(image, [{start: offset, end: offset + length}], offset, length);
			bytesRead += length;
			if (cached.chunkDigest && !cached.chunkDigest.equals(chunk.chunkDigest())) {
				return {reason: `the chunk at offset ${offset} differs from the cache (DST was written by someone else)`, bytesRead};
			}
		}
	} finally {
		fs.closeSync(fd);
	}
	return {reason: undefined, bytesRead};
}
