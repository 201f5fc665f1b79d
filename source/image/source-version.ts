// What tells that SRC changed while it was read: its size, and for a file its mtime and ctime (ns), and which file its path names.
import fs from 'node:fs';
import {blockDeviceSize} from './local-image.js';

/** SRC as the prepare step saw it. A block device has no mtime that writes update: only its size is compared. */
export type SourceVersion = {
	readonly kind: 'file' | 'block';
	readonly dev: bigint;
	readonly ino: bigint;
	readonly size: number;
	/** Files only (undefined for a block device). */
	readonly mtimeNs: bigint | undefined;
	readonly ctimeNs: bigint | undefined;
};

/** SRC's version through its open fd (ctime included: a write that resets mtime with utimes still moves ctime). */
export function sourceVersion(fd: number, kind: 'file' | 'block'): SourceVersion {
	const stat = fs.fstatSync(fd, {bigint: true});
	const file = kind === 'file';
	return {
		kind, dev: stat.dev, ino: stat.ino,
		size: file ? Number(stat.size) : blockDeviceSize(fd, Number(stat.rdev)),
		mtimeNs: file ? stat.mtimeNs : undefined,
		ctimeNs: file ? stat.ctimeNs : undefined,
	};
}

/**
 * What changed in SRC since `before` (its fd `fd`, its path `path`), in words, or undefined when nothing did.
 * The path is checked too: the workers of an SSH sync open it each, so a file renamed over it would be read in part.
 */
export function sourceChange(path: string, fd: number, before: SourceVersion): string | undefined {
	const now = sourceVersion(fd, before.kind);
	if (now.size !== before.size) {
		return `its size went from ${before.size} to ${now.size} bytes`;
	}
	if (now.mtimeNs !== before.mtimeNs || now.ctimeNs !== before.ctimeNs) {
		return 'it was written to (mtime or ctime moved)';
	}
	let named: fs.BigIntStats;
	try {
		named = fs.statSync(path, {bigint: true});
	} catch {
		return 'its path no longer names it';
	}
	return named.dev === before.dev && named.ino === before.ino ? undefined : 'its path now names another file';
}

/** The one wording of a changed SRC (exit 2), locally and in an agent's ERROR. */
export function sourceChangedMessage(path: string): string {
	return `${path}: SRC changed during the sync; DST is not a consistent copy: sync from a snapshot, or run again`;
}

/**
 * How long SRC's mtime and ctime must lie behind this host's clock before a run may record SRC's quick-check stamp:
 * a write in the same clock tick as the stamp (ticks are 1-10 ms; some filesystems keep whole or even 2 seconds)
 * would leave both unchanged, so a stamp that recent is not recorded (the next run reads SRC).
 */
export const STAMP_SETTLE_NS = 2_000_000_000n;

/**
 * SRC's quick-check stamp (doc/protocol.md, "SRC's quick check"): `src:bootid:dev:ino:size:mtimeNs:ctimeNs` of a file,
 * taken from `version` (what prepare saw, which the end-of-run check compares again); empty for a block device,
 * without the host's boot id, or when mtime or ctime is within STAMP_SETTLE_NS of `nowNs` (or ahead of it).
 */
export function quickStamp(version: SourceVersion, bootId: string | undefined, nowNs: bigint): string {
	if (version.kind !== 'file' || bootId === undefined || bootId === '' || version.mtimeNs === undefined || version.ctimeNs === undefined) {
		return '';
	}
	const settled = nowNs - STAMP_SETTLE_NS;
	if (version.mtimeNs > settled || version.ctimeNs > settled) {
		return '';
	}
	return `src:${bootId}:${version.dev}:${version.ino}:${version.size}:${version.mtimeNs}:${version.ctimeNs}`;
}

/**
 * SRC's version as one string (`kind:dev:ino:size:mtimeNs:ctimeNs`), for a preparing agent's OPENED: after a reconnect the
 * driver hands it to SRC's next preparing agent (OPEN's version), which refuses a SRC that is not that very one.
 */
export function versionString(version: SourceVersion): string {
	return `${version.kind}:${version.dev}:${version.ino}:${version.size}:${version.mtimeNs ?? ''}:${version.ctimeNs ?? ''}`;
}
