// DST's lock across the agents of one run: the prepare step's agent takes it, each DEST worker writes
// through that agent's open file description, so the lock lives exactly as long as anything of the run
// can write DST (doc/protocol.md, "Opening an image").
import fs from 'node:fs';
import {processExists} from './proc-files.js';
import {describeSystemError, UsageError} from '../errors.js';
import {nativeOps} from '../native/native.js';
import {LocalImage, type WarnSink} from './local-image.js';
import type {WritableImage} from './image.js';

/** Who holds DST's lock: a process on this host and its fd, as "bootid:pid:fd" (the prepare step's OPENED identity). */
export type LockHolder = {readonly bootId: string; readonly pid: number; readonly fd: number};

/** The token naming this process as the holder of the lock taken on `fd`. */
export function holderToken(bootId: string | undefined, fd: number): string {
	return `${bootId ?? ''}:${process.pid}:${fd}`;
}

/** Parses a token; throws when it is malformed or names another host (another boot id). */
export function parseHolder(token: string, bootId: string | undefined): LockHolder {
	const match = /^([0-9a-f-]*):(\d+):(\d+)$/.exec(token);
	if (!match || match[1] !== (bootId ?? '')) {
		throw new Error(`the agent holding DST's lock (${token}) is not on this host`);
	}
	return {bootId: match[1], pid: Number(match[2]), fd: Number(match[3])};
}

/** The error of a worker whose holder is gone: the lock may be another run's by now. */
export function holderEnded(holder: LockHolder): Error {
	return new Error(`the agent holding DST's lock (pid ${holder.pid}) ended`);
}

/**
 * Opens DST for a worker of the run whose lock `holder` holds. Where the kernel allows it (pidfd_getfd:
 * Linux >= 5.6, the same user or CAP_SYS_PTRACE), the worker writes through the holder's own open file
 * description: the flock (and a device's O_EXCL) then lasts until the last of them closes it, whoever is
 * killed first. Elsewhere it opens DST itself and checks before every write that the holder is alive.
 * Throws holderEnded() when the holder is gone already (its fd no longer names DST).
 */
export function openOnHolder(path: string, kind: 'file' | 'block', size: number, holder: LockHolder, warn: WarnSink): {image: LocalImage; writable: WritableImage} {
	const shared = shareHolderFd(path, holder);
	if (shared !== undefined) {
		const image = new LocalImage(shared, path, kind, size, warn, fd => nativeOps()!.closeFd(fd));
		return {image, writable: image};
	}
	let fd: number;
	try {
		fd = fs.openSync(path, fs.constants.O_RDWR);
	} catch (error) {
		throw new UsageError(`DST ${path}: ${describeSystemError(error)}`, {cause: error});
	}
	const image = new LocalImage(fd, path, kind, size, warn);
	if (!processExists(holder.pid)) {
		image.close();
		throw holderEnded(holder);
	}
	return {image, writable: whileHolderLives(image, holder)};
}

/** The holder's description of DST as a new fd; undefined where it cannot be had (EPERM, ENOSYS, no native helper). */
function shareHolderFd(path: string, holder: LockHolder): number | undefined {
	const native = nativeOps();
	if (!native) {
		return undefined;
	}
	let fd: number;
	try {
		fd = native.shareFd(holder.pid, holder.fd);
	} catch (error) {
		const code = (error as {code?: string}).code;
		if (code === 'ESRCH' || code === 'EBADF') {
			throw holderEnded(holder);
		}
		return undefined;
	}
	// A reused pid or fd number names something else: DST's holder is gone.
	let same = false;
	try {
		const got = fs.fstatSync(fd);
		const want = fs.statSync(path);
		same = got.dev === want.dev && got.ino === want.ino;
	} finally {
		if (!same) {
			native.closeFd(fd);
		}
	}
	if (!same) {
		throw holderEnded(holder);
	}
	return fd;
}


/**
 * DST's writes, each refused once the holder has ended (one kill(pid, 0), well under a microsecond, per
 * write or zeroed run): the fallback where the worker cannot share the holder's lock. What remains is a
 * write already under way when the holder dies.
 */
function whileHolderLives(image: LocalImage, holder: LockHolder): WritableImage {
	const check = (): void => {
		if (!processExists(holder.pid)) {
			throw holderEnded(holder);
		}
	};
	return {
		name: image.name,
		kind: image.kind,
		get size() {
			return image.size;
		},
		read: (buffer, offset, length, position) => image.read(buffer, offset, length, position),
		dataRanges: (start, end) => image.dataRanges(start, end),
		close: () => image.close(),
		write(buffer, offset, length, position) {
			check();
			image.write(buffer, offset, length, position);
		},
		zero(position, length) {
			check();
			image.zero(position, length);
		},
		sync: () => image.sync(),
	};
}
