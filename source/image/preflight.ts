// Preconditions, checked before anything is written: a failure here leaves DST untouched (exit 1).
import fs from 'node:fs';
import {describeSystemError, UsageError} from '../errors.js';
import {blockDeviceSize, LocalImage, type WarnSink} from './local-image.js';
import {deviceInUse, deviceNumber} from './device.js';
import {nativeOps} from '../native/native.js';
import {type SourceVersion, sourceVersion} from './source-version.js';
import type {Image, Range, WritableImage} from './image.js';
import {HEADER_BYTES, headerFormat, headerRefusal} from './format-header.js';
import {destinationInUse, holdQemuLock, sourceInUse} from './in-use.js';

/**
 * Safety by default: an image given without a format (--src-format/--dst-format) whose first bytes are a
 * qcow2, vmdk, vhdx, vdi or qed header is refused (UsageError), since its bytes are a container, not a disk.
 * `path` is read (DST: when it exists); nothing is written.
 */
export function refuseFormatHeader(role: 'SRC' | 'DST', path: string): void {
	let fd: number;
	try {
		fd = fs.openSync(path, 'r');
	} catch {
		return; // Missing or unreadable: the open that follows says so.
	}
	const head = Buffer.alloc(HEADER_BYTES);
	let got = 0;
	try {
		got = fs.readSync(fd, head, 0, HEADER_BYTES, 0);
	} catch {
		return;
	} finally {
		fs.closeSync(fd);
	}
	const format = headerFormat(head.subarray(0, got));
	if (format !== undefined) {
		throw new UsageError(headerRefusal(role, path, format));
	}
}

/**
 * Refuses (UsageError, exit 1) a DST that another process on this host uses: a running VM or any QEMU
 * (its image lock, or the process holding DST or one of the device's partitions), or any process with it
 * open for writing; the message names the process. `force` skips it; a DST this run created has no
 * user. Called once per run, by whoever takes DST's lock, right after it (another rblocksync run is told
 * apart by that lock) and before anything is written: the run's own agents, workers and qemu-nbd open
 * DST only after it, and this process is never counted.
 */
export function refuseDestinationInUse(path: string, exists: boolean, force: boolean): void {
	if (!exists || force) {
		return;
	}
	let stat: fs.Stats;
	try {
		stat = fs.statSync(path);
	} catch {
		return; // Gone meanwhile: the open that follows says so.
	}
	const busy = destinationInUse(path, stat);
	if (busy !== undefined) {
		throw new UsageError(busy);
	}
}

/** The warning for a SRC that another process (a running VM, mostly) writes while it is copied; once per run. */
export function sourceInUseWarning(path: string): string | undefined {
	try {
		return sourceInUse(path, fs.statSync(path));
	} catch {
		return undefined;
	}
}

/** Identity of a SRC, to refuse syncing a file onto itself. */
export type SourceIdentity = {readonly dev: number; readonly ino: number; readonly rdev: number; readonly kind: 'file' | 'block'};

/** `version`: SRC as opened, compared again once the sync has read it (source-version.ts). */
export type OpenedSource = {image: LocalImage; identity: SourceIdentity; version: SourceVersion; warning?: string};

/** Opens SRC read-only; throws UsageError naming the path and the cause. */
export function openSource(path: string, warn?: WarnSink): OpenedSource {
	const stat = statOrThrow('SRC', path);
	const kind = imageKind('SRC', path, stat);
	let fd: number;
	try {
		fd = fs.openSync(path, 'r');
	} catch (error) {
		throw new UsageError(`SRC ${path}: ${describeSystemError(error)}`, {cause: error});
	}
	lockOrThrow(fd, 'SRC', path, kind, false);
	const size = kind === 'block' ? blockDeviceSize(fd, stat.rdev) : stat.size;
	const busy = kind === 'block' ? deviceInUse(deviceNumber(stat.rdev)) : undefined;
	return {
		image: new LocalImage(fd, path, kind, size, warn),
		identity: {dev: stat.dev, ino: stat.ino, rdev: stat.rdev, kind},
		version: {...sourceVersion(fd, kind), size},
		...(busy?.startsWith('mounted') ? {warning: `SRC ${path} is ${busy}; if it is written to during the sync, DST will be inconsistent (sync from a snapshot)`} : {}),
	};
}

export type DestinationOptions = {readonly truncate: boolean; readonly dryRun: boolean; readonly force: boolean};

/** What was found at DST and what will be done to it; computing it changes nothing. */
export type DestinationPlan = {
	readonly path: string;
	readonly kind: 'file' | 'block';
	readonly exists: boolean;
	/** DST's size now (0 when missing). */
	readonly size: number;
	/** Bytes of a block device beyond SRC's size, left alone. */
	readonly extraBytes: number;
	/** The size to give the file (--truncate), when it differs. */
	readonly resizeTo: number | undefined;
};

/** Checks DST against SRC's size (and identity, when SRC is local); throws UsageError on refusal. */
export function planDestination(path: string, srcSize: number, src: SourceIdentity | undefined, options: DestinationOptions): DestinationPlan {
	let stat: fs.Stats | undefined;
	try {
		stat = fs.statSync(path);
	} catch (error) {
		if ((error as {code?: string}).code !== 'ENOENT') {
			throw new UsageError(`DST ${path}: ${describeSystemError(error)}`, {cause: error});
		}
	}
	if (!stat) {
		if (!options.truncate) {
			throw new UsageError(`DST ${path} does not exist; use --truncate to create it`);
		}
		checkCreatable(path, options.dryRun);
		return {path, kind: 'file', exists: false, size: 0, extraBytes: 0, resizeTo: srcSize};
	}
	const kind = imageKind('DST', path, stat);
	if (src && ((src.dev === stat.dev && src.ino === stat.ino) || (src.kind === 'block' && kind === 'block' && src.rdev === stat.rdev))) {
		throw new UsageError(`SRC and DST are the same ${kind === 'block' ? 'device' : 'file'}: ${path}`);
	}
	if (kind === 'block') {
		if (!options.force) {
			const busy = deviceInUse(deviceNumber(stat.rdev));
			if (busy) {
				throw new UsageError(`DST ${path} is ${busy}; use --force to write to it anyway`);
			}
		}
		const size = withFd(path, fd => blockDeviceSize(fd, stat.rdev));
		if (size < srcSize) {
			throw new UsageError(`DST ${path} is ${size} bytes, smaller than SRC (${srcSize} bytes)`);
		}
		return {path, kind, exists: true, size, extraBytes: size - srcSize, resizeTo: undefined};
	}
	if (stat.size !== srcSize && !options.truncate) {
		throw new UsageError(`DST ${path} is ${stat.size} bytes but SRC is ${srcSize} bytes; use --truncate to resize DST`);
	}
	return {path, kind, exists: true, size: stat.size, extraBytes: 0, resizeTo: stat.size === srcSize ? undefined : srcSize};
}

/**
 * Opens DST as planned; with dryRun read-only (or an empty image when missing), else creating/resizing it.
 * It takes DST's lock (see lockOrThrow) unless `lock` is false: a worker of a run that holds it already;
 * with the lock, it refuses a DST another process uses (refuseDestinationInUse) and, writing, takes QEMU's
 * writer locks on it (holdQemuLock), so that no VM starts on it meanwhile.
 */
export function openDestination(plan: DestinationPlan, options: DestinationOptions, lock = true, warn?: WarnSink): {image: Image; writable: WritableImage | undefined; knownData: Range} {
	if (options.dryRun) {
		if (!plan.exists) {
			return {image: emptyImage(plan.path), writable: undefined, knownData: {start: 0, end: 0}};
		}
		const fd = openOrThrow(plan.path, fs.constants.O_RDONLY);
		if (lock) {
			lockOrThrow(fd, 'DST', plan.path, plan.kind, false);
			closeIfThrows(fd, () => refuseDestinationInUse(plan.path, true, options.force));
		}
		return {image: new LocalImage(fd, plan.path, plan.kind, plan.size, warn), writable: undefined, knownData: {start: 0, end: plan.size}};
	}
	let flags = fs.constants.O_RDWR;
	if (!plan.exists) {
		flags |= fs.constants.O_CREAT | fs.constants.O_EXCL;
	} else if (plan.kind === 'block' && !options.force) {
		flags |= fs.constants.O_EXCL; // Linux: EBUSY when the kernel holds the device (mounted, dm, md).
	}
	const fd = openOrThrow(plan.path, flags);
	if (lock) {
		lockOrThrow(fd, 'DST', plan.path, plan.kind, true);
		closeIfThrows(fd, () => refuseDestinationInUse(plan.path, plan.exists, options.force));
		holdQemuLock(fd);
	}
	const image = new LocalImage(fd, plan.path, plan.kind, plan.size, warn);
	if (plan.resizeTo !== undefined) {
		try {
			image.truncate(plan.resizeTo);
		} catch (error) {
			image.close();
			throw new UsageError(`DST ${plan.path}: cannot resize to ${plan.resizeTo} bytes: ${describeSystemError(error)}`, {cause: error});
		}
	}
	return {image, writable: image, knownData: {start: 0, end: plan.size}};
}

function closeIfThrows(fd: number, check: () => void): void {
	try {
		check();
	} catch (error) {
		fs.closeSync(fd);
		throw error;
	}
}

function openOrThrow(path: string, flags: number): number {
	try {
		return fs.openSync(path, flags, 0o644);
	} catch (error) {
		const code = (error as {code?: string}).code;
		const reason = code === 'EBUSY' ? 'the device is in use (mounted or held by the kernel); use --force to write to it anyway' : describeSystemError(error);
		throw new UsageError(`DST ${path}: ${reason}`, {cause: error});
	}
}

/** How long a block device may stay locked by someone else before that is a refusal (udev probes briefly). */
const DEVICE_LOCK_PATIENCE_MS = 3000;

/**
 * Takes the advisory lock that keeps two rblocksync runs apart: shared on what is read, exclusive on
 * the DST being written (flock, released when the fd closes). A conflicting lock held by another
 * process is a refusal (the fd is closed, nothing was written); on a block device it is retried for a
 * few seconds first, since systemd-udevd holds a shared lock on a device while it probes it. A
 * filesystem without flock, or no native helper, goes on unlocked.
 */
export function lockOrThrow(fd: number, role: 'SRC' | 'DST', path: string, kind: 'file' | 'block', exclusive: boolean): void {
	const native = nativeOps();
	const deadline = Date.now() + (kind === 'block' ? DEVICE_LOCK_PATIENCE_MS : 0);
	for (;;) {
		try {
			native?.lock(fd, exclusive);
			return;
		} catch (error) {
			if ((error as {code?: string}).code !== 'EAGAIN') {
				return;
			}
			if (Date.now() >= deadline) {
				fs.closeSync(fd);
				const how = exclusive ? 'is locked by another process' : 'is locked for writing by another process';
				throw new UsageError(`${role} ${path} ${how} (another rblocksync run?); try again when it has finished`, {cause: error});
			}
			Atomics.wait(sleeper, 0, 0, 50);
		}
	}
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The directory holding `path` (".", for a bare name). */
function parentOf(path: string): string {
	return path.includes('/') ? path.slice(0, path.lastIndexOf('/')) || '/' : '.';
}

/** Makes the directory entry of a DST this run created durable (fdatasync of the file does not). */
export function syncCreatedEntry(plan: DestinationPlan): void {
	if (plan.exists) {
		return;
	}
	const fd = fs.openSync(parentOf(plan.path), 'r');
	try {
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
}

export function checkCreatable(path: string, dryRun: boolean): void {
	const dir = parentOf(path);
	try {
		fs.accessSync(dir, dryRun ? fs.constants.F_OK : fs.constants.W_OK);
	} catch (error) {
		throw new UsageError(`DST ${path}: cannot create it in ${dir}: ${describeSystemError(error)}`, {cause: error});
	}
}

export function statOrThrow(role: 'SRC' | 'DST', path: string): fs.Stats {
	try {
		return fs.statSync(path);
	} catch (error) {
		throw new UsageError(`${role} ${path}: ${describeSystemError(error)}`, {cause: error});
	}
}

export function imageKind(role: 'SRC' | 'DST', path: string, stat: fs.Stats): 'file' | 'block' {
	if (stat.isFile()) {
		return 'file';
	}
	if (stat.isBlockDevice()) {
		return 'block';
	}
	throw new UsageError(stat.isDirectory() ? `${role} ${path} is a directory` : `${role} ${path} is not a regular file or block device`);
}

function withFd<T>(path: string, use: (fd: number) => T): T {
	const fd = fs.openSync(path, 'r');
	try {
		return use(fd);
	} finally {
		fs.closeSync(fd);
	}
}

/** A missing DST seen by a dry run: size 0, reads as zeros. */
export function emptyImage(name: string): Image {
	return {
		name,
		kind: 'file',
		size: 0,
		read: (buffer, offset, length) => void buffer.fill(0, offset, offset + length),
		dataRanges: () => [],
		close() {},
	};
}
