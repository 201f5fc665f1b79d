// Block-device facts from /proc and /sys: device numbers, mounts, holders.
import fs from 'node:fs';
import {listOrEmpty, readOrEmpty} from './proc-files.js';

/** "MAJ:MIN" of a Linux dev_t as Node reports it (glibc encoding). */
export function deviceNumber(rdev: number): string {
	const major = (Math.floor(rdev / 256) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
	const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
	return `${major}:${minor}`;
}

/** Mount points by "MAJ:MIN" from the text of /proc/self/mountinfo (field 3 is MAJ:MIN, field 5 the mount point). */
export function parseMountinfo(text: string): Map<string, string[]> {
	const mounts = new Map<string, string[]>();
	for (const line of text.split('\n')) {
		const fields = line.split(' ');
		const dev = fields[2];
		const point = fields[4];
		if (dev && point) {
			const decoded = point.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
			mounts.set(dev, [...(mounts.get(dev) ?? []), decoded]);
		}
	}
	return mounts;
}

/**
 * Why the block device `dev` ("MAJ:MIN") is busy: mounted (itself or a partition), or held by another
 * device (device-mapper, md, ...). undefined when it looks free.
 */
export function deviceInUse(dev: string, mountinfo = readOrEmpty('/proc/self/mountinfo'), sys = '/sys/dev/block'): string | undefined {
	const mounts = parseMountinfo(mountinfo);
	const candidates = [dev, ...partitionsOf(dev, sys)];
	for (const candidate of candidates) {
		const points = mounts.get(candidate);
		if (points?.length) {
			return `mounted on ${points.join(', ')}`;
		}
	}
	for (const candidate of candidates) {
		const holders = listOrEmpty(`${sys}/${candidate}/holders`);
		if (holders.length > 0) {
			return `in use by ${holders.join(', ')}`;
		}
	}
	return undefined;
}

/** "MAJ:MIN" of each partition of a whole-disk device. */
export function partitionsOf(dev: string, sys = '/sys/dev/block'): string[] {
	const base = `${sys}/${dev}`;
	const found: string[] = [];
	for (const name of listOrEmpty(base)) {
		const devFile = `${base}/${name}/dev`;
		if (fs.existsSync(`${base}/${name}/partition`)) {
			found.push(readOrEmpty(devFile).trim());
		}
	}
	return found.filter(Boolean);
}
