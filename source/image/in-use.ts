// Who else has an image open on this host, from /proc: the processes holding it (their fds, open flags and
// locks) and QEMU's image lock (F_OFD_GETLK through the native helper, else /proc/locks). Read-only.
import fs from 'node:fs';
import {listOrEmpty, readOrEmpty} from './proc-files.js';
import {nativeOps} from '../native/native.js';
import {deviceNumber, partitionsOf} from './device.js';
import {
	blockingHolder, destinationInUseMessage, guessVmId, type Holder, isQemu, type LockLine, parseFdinfo, parseLockLine,
	processName, QEMU_LOCK, QEMU_WRITER_BYTES, qemuLockState, sourceInUseMessage, writingHolder,
} from './holders.js';

export type ScanOptions = {
	/** Where /proc is (tests pass a fake tree). */
	readonly proc?: string;
	/** Processes of this run besides this one (never a reason to refuse). This process is always left out. */
	readonly exclude?: readonly number[];
};

/** The file or device an image is: what a process's fd must match (`path`: a file's real path). */
type Target = {readonly dev: number; readonly ino: number; readonly rdevs: ReadonlySet<number> | undefined; readonly path: string | undefined};

function targetOf(stat: fs.Stats, path: string | undefined): Target {
	if (!stat.isBlockDevice()) {
		return {dev: stat.dev, ino: stat.ino, rdevs: undefined, path};
	}
	// A device is also in use when a process holds one of its partitions.
	const rdevs = new Set([stat.rdev]);
	for (const partition of partitionsOf(deviceNumber(stat.rdev))) {
		const [major, minor] = partition.split(':').map(Number) as [number, number];
		rdevs.add(makeDev(major, minor));
	}
	return {dev: stat.dev, ino: stat.ino, rdevs, path: undefined};
}

/**
 * Whether an fd's link text may name the target: a device node under /dev (any node of the device or of
 * a partition), a file by its real path (another hard link or bind mount of it is not seen; QEMU's lock,
 * tested on the file itself, still is).
 */
function candidate(target: Target, link: string): boolean {
	return target.rdevs === undefined ? link === target.path : link.startsWith('/dev/');
}

/** glibc's makedev, the inverse of deviceNumber. */
function makeDev(major: number, minor: number): number {
	return (minor & 0xff) + (major & 0xfff) * 256 + (minor & ~0xff) * 4096 + Math.floor(major / 4096) * 2 ** 44;
}

function matches(target: Target, stat: fs.Stats): boolean {
	if (stat.dev === target.dev && stat.ino === target.ino) {
		return true;
	}
	return target.rdevs !== undefined && stat.isBlockDevice() && target.rdevs.has(stat.rdev);
}

/**
 * Every other process with the image `stat` describes open (a device: the same rdev or one of its
 * partitions, through whatever node), with its open flags and QEMU lock. Processes this user cannot
 * look into are not seen. One readlink per open file of every process (a few microseconds each).
 */
export function findHolders(path: string, stat: fs.Stats, options: ScanOptions = {}): Holder[] {
	const proc = options.proc ?? '/proc';
	const skip = new Set([process.pid, ...(options.exclude ?? [])]);
	const target = targetOf(stat, realPath(path));
	const holders: Holder[] = [];
	for (const entry of listOrEmpty(proc)) {
		const pid = Number(entry);
		if (!/^\d+$/.test(entry) || skip.has(pid)) {
			continue;
		}
		let writable = false;
		let found = false;
		const locks: LockLine[] = [];
		for (const fd of listOrEmpty(`${proc}/${entry}/fd`)) {
			// The link's text first: only a candidate is stat'ed, so no file of another process is ever
			// looked up (a dead NFS mount would hang a stat). A process whose fds this user may not follow
			// (EACCES on the first) is given up at once: an exception costs tens of microseconds.
			const link = `${proc}/${entry}/fd/${fd}`;
			let stat: fs.Stats | undefined;
			try {
				if (!candidate(target, fs.readlinkSync(link))) {
					continue;
				}
				stat = fs.statSync(link, {throwIfNoEntry: false});
			} catch (error) {
				if ((error as {code?: string}).code === 'ENOENT') {
					continue; // Closed meanwhile.
				}
				break;
			}
			if (stat === undefined || !matches(target, stat)) {
				continue;
			}
			found = true;
			const info = parseFdinfo(readOrEmpty(`${proc}/${entry}/fdinfo/${fd}`));
			writable ||= info.writable;
			locks.push(...info.locks);
		}
		if (found) {
			const argv = readOrEmpty(`${proc}/${entry}/cmdline`).split('\0').filter(Boolean);
			const name = processName(argv, readOrEmpty(`${proc}/${entry}/comm`));
			holders.push({pid, name, writable, qemuLock: qemuLockState(locks), vm: isQemu(name) ? guessVmId(argv) : undefined});
		}
	}
	return holders;
}

/**
 * QEMU's lock on the image at `path` held by anyone (whether this host shows the process or not):
 * F_OFD_GETLK on QEMU's lock bytes where the native helper has it, else the lines of /proc/locks.
 */
export function qemuLockOn(path: string, stat: fs.Stats, proc = '/proc'): {locked: boolean; writing: boolean} {
	const ofdLock = nativeOps()?.ofdLock;
	if (ofdLock) {
		let fd: number | undefined;
		try {
			fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
			const locked = ofdLock(fd, QEMU_LOCK.start, QEMU_LOCK.end - QEMU_LOCK.start) !== null;
			return {locked, writing: locked && ofdLock(fd, QEMU_LOCK.writeByte, 1) !== null};
		} catch {
			// Cannot open or test it here: /proc/locks may still tell.
		} finally {
			if (fd !== undefined) {
				fs.closeSync(fd);
			}
		}
	}
	return procLocksState(stat, proc);
}

/** QEMU's lock on the file `stat` describes, as /proc/locks lists it (the fallback without the native helper). */
export function procLocksState(stat: Pick<fs.Stats, 'dev' | 'ino'>, proc = '/proc'): {locked: boolean; writing: boolean} {
	const [major, minor] = deviceNumber(stat.dev).split(':').map(Number) as [number, number];
	const locks = readOrEmpty(`${proc}/locks`).split('\n').map(parseLockLine).filter((lock): lock is LockLine => lock !== undefined);
	return qemuLockState(locks, {major, minor, ino: stat.ino});
}

/**
 * Takes QEMU's writer locks (QEMU_WRITER_BYTES) on the open file description of `fd`, so that a VM or
 * qemu-nbd started on the image while this run writes it refuses to open it. Best effort: false where the
 * native helper lacks OFD locks or the filesystem refuses them; they go when the description's last fd closes.
 */
export function holdQemuLock(fd: number): boolean {
	const lock = nativeOps()?.ofdReadLock;
	if (!lock) {
		return false;
	}
	try {
		for (const byte of QEMU_WRITER_BYTES) {
			lock(fd, byte, 1);
		}
		return true;
	} catch {
		return false;
	}
}

/** The refusal (UsageError's message) when another process uses DST: a QEMU or any writer; undefined when none does. */
export function destinationInUse(path: string, stat: fs.Stats, options: ScanOptions = {}): string | undefined {
	const holder = blockingHolder(findHolders(path, stat, options));
	if (holder) {
		return destinationInUseMessage(path, holder);
	}
	return qemuLockOn(path, stat, options.proc).locked ? destinationInUseMessage(path, undefined) : undefined;
}

/** The warning when another process writes SRC (a running VM, most often); undefined when none does. */
export function sourceInUse(path: string, stat: fs.Stats, options: ScanOptions = {}): string | undefined {
	const holder = writingHolder(findHolders(path, stat, options));
	if (holder) {
		return sourceInUseMessage(path, holder);
	}
	return qemuLockOn(path, stat, options.proc).writing ? sourceInUseMessage(path, undefined) : undefined;
}

function realPath(path: string): string | undefined {
	try {
		return fs.realpathSync(path);
	} catch {
		return undefined;
	}
}
