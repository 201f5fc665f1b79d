// The one door to the native helper (native/rblocksync_native.c). Everything else asks nativeOps()
// and falls back to plain fs calls when it returns undefined.
import {nativeKnobs} from '../environment.js';
import {existsSync} from 'node:fs';
import {createRequire} from 'node:module';
import {resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

/** Synchronous Linux calls Node lacks; each throws an Error with code, errno (positive) and syscall. */
export interface NativeOps {
	/** Deallocates [offset, offset+length) keeping the file size (fallocate PUNCH_HOLE|KEEP_SIZE). */
	punchHole(fd: number, offset: number, length: number): void;
	/** Start of the first data at or after offset, or -1 when only a hole follows (lseek SEEK_DATA). */
	seekData(fd: number, offset: number): number;
	/** Start of the first hole at or after offset; the file end counts as a hole (lseek SEEK_HOLE). */
	seekHole(fd: number, offset: number): number;
	/** Size in bytes of the block device open on fd (ioctl BLKGETSIZE64); ENOTTY on a regular file. */
	blockDeviceSize(fd: number): number;
	/** Zeroes [offset, offset+length) of a block device (ioctl BLKZEROOUT); 512-byte aligned. */
	zeroOut(fd: number, offset: number, length: number): void;
	/** Page-cache hint for a range; length 0 means to the end of the file (posix_fadvise). */
	fadvise(fd: number, offset: number, length: number, advice: 'normal' | 'sequential' | 'dontneed'): void;
	/** Takes an advisory lock on the whole file without waiting (flock LOCK_EX or LOCK_SH, LOCK_NB); EAGAIN when held. */
	lock(fd: number, exclusive: boolean): void;
	/**
	 * A new fd on the open file description process `pid` has on its `fd` (pidfd_getfd), so a flock taken
	 * there lives as long as either holds it. ESRCH/EBADF when that process or fd is gone; EPERM or ENOSYS where not allowed.
	 */
	shareFd(pid: number, fd: number): number;
	/**
	 * The first lock another open file description holds on [start, start+length) of the file open on fd
	 * (fcntl F_OFD_GETLK testing a write lock: a read lock is found too), or null; length 0: to the end.
	 * Absent (undefined) in a helper built before it: callers read /proc/locks instead.
	 */
	ofdLock?: (fd: number, start: number, length: number) => {start: number; length: number; exclusive: boolean} | null;
	/** Takes an OFD read lock on [start, start+length) without waiting (F_OFD_SETLK); EAGAIN when a write lock is there. Absent in older helpers. */
	ofdReadLock?: (fd: number, start: number, length: number) => void;
	/** Starts writeback of a range without waiting (sync_file_range SYNC_FILE_RANGE_WRITE); length 0: to the end. Absent in older helpers. */
	startWriteback?: (fd: number, offset: number, length: number) => void;
	/** close(2) of an fd shareFd made (fs.closeSync warns about those in worker threads). */
	closeFd(fd: number): void;
	/**
	 * BLAKE3 (the official C code, SIMD picked at run time) of input[0, length) as blocks of blockSize
	 * bytes, the last possibly shorter: one 32-byte digest per block into out from outOffset, blocks
	 * flagged in skip left unhashed. Returns the number of blocks. Throws RangeError when out or skip is too small.
	 */
	blake3Blocks(input: Uint8Array, length: number, blockSize: number, out: Uint8Array, outOffset: number, skip: Uint8Array | null): number;
	/** zstd through Debian's libzstd.so.1, opened at run time; undefined where it cannot be loaded (or the helper predates it). */
	readonly zstd: ZstdOps | undefined;
}

/** zstd with one context per thread: no allocation per call. */
export interface ZstdOps {
	/** Compresses input[0, length) at `level` into out; returns the bytes written, 0 when they would not fit in out (not worth it). */
	compress(input: Uint8Array, length: number, out: Uint8Array, level: number): number;
	/** Decodes one zstd frame input[0, length) into out; throws unless it decodes to exactly `expected` bytes. */
	decompress(input: Uint8Array, length: number, out: Uint8Array, expected: number): number;
}

type Addon = Omit<NativeOps, 'fadvise' | 'lock' | 'ofdLock' | 'zstd'> & {
	ofdLock?: (fd: number, start: number, length: number) => [number, number, boolean] | null;
	zstdAvailable?(): boolean;
	zstdCompress?(input: Uint8Array, length: number, out: Uint8Array, level: number): number;
	zstdDecompress?(input: Uint8Array, length: number, out: Uint8Array, expected: number): number;
	fadvise(fd: number, offset: number, length: number, advice: number): void;
	lock(fd: number, exclusive: number): void;
	POSIX_FADV_NORMAL: number;
	POSIX_FADV_SEQUENTIAL: number;
	POSIX_FADV_DONTNEED: number;
};

const fileName = 'rblocksync_native.node';
let loaded: {ops?: NativeOps; error?: string} | undefined;

/** The addon, or undefined when it cannot be loaded (reason in nativeLoadError()). Loads once, lazily. */
export function nativeOps(): NativeOps | undefined {
	loaded ??= load();
	return loaded.ops;
}

/** Why nativeOps() is undefined (every path tried, with its error); undefined when it loaded. */
export function nativeLoadError(): string | undefined {
	loaded ??= load();
	return loaded.error;
}

// RBLOCKSYNC_NATIVE names the only file to try: a wrong override must show, not fall back silently.
function candidates(): string[] {
	const override = nativeKnobs(process.env).path;
	if (override) {
		return [resolve(override)];
	}
	// Beside a bundle (dist/bundle, /usr/share/rblocksync), else build/ from dist/native or source/native.
	return [`./${fileName}`, `../build/Release/${fileName}`, `../../build/Release/${fileName}`].map(path =>
		fileURLToPath(new URL(path, import.meta.url)),
	);
}

function load(): {ops?: NativeOps; error?: string} {
	if (nativeKnobs(process.env).disabled) {
		return {error: 'native helper disabled by RBLOCKSYNC_NO_NATIVE=1'};
	}
	const require = createRequire(import.meta.url);
	const problems: string[] = [];
	for (const path of candidates()) {
		if (!existsSync(path)) {
			problems.push(`${path}: not found`);
			continue;
		}
		try {
			const addon: unknown = require(path);
			if (isAddon(addon)) {
				return {ops: wrap(addon)};
			}
			problems.push(`${path}: not the rblocksync native helper`);
		} catch (error) {
			problems.push(`${path}: ${error instanceof Error ? error.message : String(error)}`);
		}
	}
	return {error: `cannot load the native helper (${problems.join('; ')})`};
}

function isAddon(value: unknown): value is Addon {
	const names = ['punchHole', 'seekData', 'seekHole', 'blockDeviceSize', 'zeroOut', 'fadvise', 'lock', 'shareFd', 'closeFd', 'blake3Blocks'];
	return typeof value === 'object' && value !== null && names.every(name => typeof Reflect.get(value, name) === 'function');
}

function wrap(addon: Addon): NativeOps {
	const advice = {normal: addon.POSIX_FADV_NORMAL, sequential: addon.POSIX_FADV_SEQUENTIAL, dontneed: addon.POSIX_FADV_DONTNEED};
	return {
		punchHole: addon.punchHole,
		seekData: addon.seekData,
		seekHole: addon.seekHole,
		blockDeviceSize: addon.blockDeviceSize,
		zeroOut: addon.zeroOut,
		fadvise: (fd, offset, length, kind) => addon.fadvise(fd, offset, length, advice[kind]),
		lock: (fd, exclusive) => addon.lock(fd, exclusive ? 1 : 0),
		shareFd: addon.shareFd,
		closeFd: addon.closeFd,
		...(typeof addon.startWriteback === 'function' ? {startWriteback: addon.startWriteback} : {}),
		blake3Blocks: addon.blake3Blocks,
		...(typeof addon.ofdLock === 'function' ? {ofdLock: ofdLockOf(addon.ofdLock)} : {}),
		...(typeof addon.ofdReadLock === 'function' ? {ofdReadLock: addon.ofdReadLock} : {}),
		zstd: addon.zstdAvailable?.() && addon.zstdCompress && addon.zstdDecompress
			? {compress: addon.zstdCompress, decompress: addon.zstdDecompress}
			: undefined,
	};
}

function ofdLockOf(call: NonNullable<Addon['ofdLock']>): NonNullable<NativeOps['ofdLock']> {
	return (fd, start, length) => {
		const found = call(fd, start, length);
		return found === null ? null : {start: found[0], length: found[1], exclusive: found[2]};
	};
}
