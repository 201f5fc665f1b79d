// Local files and block devices as Images, through synchronous fd calls and the native helper.
import fs from 'node:fs';
import {type NativeOps, nativeLoadError, nativeOps} from '../native/native.js';
import {alignDown, alignUp} from '../blocks/blocks.js';
import {zeroBuffer} from '../blocks/zero.js';
import {describeSystemError} from '../errors.js';
import {deviceNumber} from './device.js';
import type {ImageKind, Range, WritableImage} from './image.js';

/** Where an image's warnings go (missing native helper, no hole support): the reporter, the parent thread, a WARN frame. */
export type WarnSink = (message: string) => void;

/** Without a sink: stderr, as the CLI words its warnings. */
export const stderrWarn: WarnSink = message => process.stderr.write(`rblocksync: warning: ${message}\n`);

/** Size in bytes of an open block device: the ioctl, else /sys/dev/block/MAJ:MIN/size x 512. */
export function blockDeviceSize(fd: number, rdev: number): number {
	const ops = nativeOps();
	if (ops) {
		return ops.blockDeviceSize(fd);
	}
	return Number(fs.readFileSync(`/sys/dev/block/${deviceNumber(rdev)}/size`, 'utf8').trim()) * 512;
}

/** How many bytes written start their writeback (LocalImage.wrote). */
const WRITEBACK_BYTES = 8 * 1024 * 1024;

/** A file or block device open on `fd`; the image owns the fd. */
export class LocalImage implements WritableImage {
	readonly name: string;
	readonly kind: ImageKind;
	size: number;
	readonly fd: number;
	private readonly native: NativeOps | undefined;
	private canPunch: boolean;
	private canZeroOut: boolean;
	private canSeek: boolean;
	private closed = false;
	/** Each warning once per image (the run's reporter also drops repeats across images and workers). */
	private readonly warned = new Set<string>();
	/** Written since writeback was last started: [from, to), and how many bytes. */
	private dirtyFrom = Number.POSITIVE_INFINITY;
	private dirtyTo = 0;
	private dirtyBytes = 0;

	/** `closeFd`: how the fd is closed (fs.closeSync unless the fd came from elsewhere, e.g. the native helper's shareFd). */
	constructor(fd: number, name: string, kind: 'file' | 'block', size: number, private readonly warn: WarnSink = stderrWarn, private readonly closeFd: (fd: number) => void = fs.closeSync) {
		this.fd = fd;
		this.name = name;
		this.kind = kind;
		this.size = size;
		this.native = nativeOps();
		this.canPunch = kind === 'file' && this.native !== undefined;
		this.canZeroOut = kind === 'block' && this.native !== undefined;
		this.canSeek = kind === 'file' && this.native !== undefined;
	}

	read(buffer: Buffer, offset: number, length: number, position: number): void {
		let done = 0;
		while (done < length) {
			const n = this.io('read', position + done, () => fs.readSync(this.fd, buffer, offset + done, length - done, position + done));
			if (n === 0) {
				if (position + done < this.size) {
					// Zeros here would be copied as SRC's content: a file (or device) that shrank while it was read.
					throw Object.assign(new Error(`${this.name}: read at offset ${position + done}: end of file inside its size of ${this.size} bytes (did it shrink during the sync?)`), {code: 'ESHORTREAD'});
				}
				buffer.fill(0, offset + done, offset + length);
				return;
			}
			done += n;
		}
	}

	write(buffer: Buffer, offset: number, length: number, position: number): void {
		let done = 0;
		while (done < length) {
			done += this.io('write', position + done, () => fs.writeSync(this.fd, buffer, offset + done, length - done, position + done));
		}
		this.wrote(position, length);
	}

	/**
	 * Every WRITEBACK_BYTES written, writeback of what they dirtied starts (not waited for): the disk writes while the
	 * run goes on, and the closing fdatasync waits for little (1 GiB copied: 1.7 s in that fdatasync otherwise).
	 */
	private wrote(position: number, length: number): void {
		const start = this.native?.startWriteback;
		if (!start) {
			return;
		}
		this.dirtyFrom = Math.min(this.dirtyFrom, position);
		this.dirtyTo = Math.max(this.dirtyTo, position + length);
		this.dirtyBytes += length;
		if (this.dirtyBytes >= WRITEBACK_BYTES) {
			try {
				start(this.fd, this.dirtyFrom, this.dirtyTo - this.dirtyFrom);
			} catch {
				// Only a hint: the fdatasync at the end writes what is left, and reports any error.
			}
			this.dirtyFrom = Number.POSITIVE_INFINITY;
			this.dirtyTo = 0;
			this.dirtyBytes = 0;
		}
	}

	/** Runs one system call, naming the image and offset in any error (the code is kept). */
	private io<T>(what: string, position: number, call: () => T): T {
		try {
			return call();
		} catch (error) {
			if (error instanceof Error && error.message.startsWith(`${this.name}: `)) {
				throw error; // Already named (a zero fallback that writes).
			}
			const code = (error as {code?: unknown} | null)?.code;
			throw Object.assign(new Error(`${this.name}: ${what} at offset ${position}: ${describeSystemError(error)}`, {cause: error}), {code});
		}
	}

	zero(position: number, length: number): void {
		this.io('zero', position, () => this.zeroRange(position, length));
	}

	private zeroRange(position: number, length: number): void {
		if (this.canPunch) {
			try {
				this.native!.punchHole(this.fd, position, length);
				return;
			} catch (error) {
				if (!isUnsupported(error, false)) {
					throw error;
				}
				this.canPunch = false;
				this.warnOnce(`punch:${this.name}`, `${this.name}: the file system cannot punch holes; zero blocks are written as zeros`);
			}
		} else if (this.kind === 'file' && !this.native) {
			this.warnOnce('native', `native helper unavailable (${nativeLoadError() ?? 'unknown reason'}): holes are written as zeros and read in full`);
		}
		// BLKZEROOUT takes whole 512-byte sectors (EINVAL otherwise): the short last block of a SRC whose
		// size is not a multiple of 512, on a larger device, is zeroed by writing. A device whose logical
		// block is larger than the range's alignment (EINVAL too) gets writes for that range.
		const end = position + length;
		const alignedStart = Math.min(end, alignUp(position, 512));
		const alignedEnd = Math.max(alignedStart, alignDown(end, 512));
		if (this.canZeroOut && alignedEnd > alignedStart) {
			try {
				this.native!.zeroOut(this.fd, alignedStart, alignedEnd - alignedStart);
				this.writeZeros(position, alignedStart - position);
				this.writeZeros(alignedEnd, end - alignedEnd);
				return;
			} catch (error) {
				if (isUnsupported(error, false)) {
					this.canZeroOut = false;
				} else if ((error as {code?: unknown} | null)?.code !== 'EINVAL') {
					throw error;
				}
			}
		}
		this.writeZeros(position, length);
	}

	private writeZeros(position: number, length: number): void {
		const zeros = zeroBuffer(Math.min(length, 1024 * 1024));
		for (let at = 0; at < length; at += zeros.length) {
			this.write(zeros, 0, Math.min(zeros.length, length - at), position + at);
		}
	}

	dataRanges(start: number, end: number): Range[] | undefined {
		if (!this.canSeek) {
			if (this.kind === 'file' && !this.native) {
				this.warnOnce('native', `native helper unavailable (${nativeLoadError() ?? 'unknown reason'}): holes are written as zeros and read in full`);
			}
			return undefined;
		}
		const stop = Math.min(end, this.size);
		const ranges: Range[] = [];
		let at = start;
		try {
			while (at < stop) {
				const data = this.native!.seekData(this.fd, at);
				if (data < 0 || data >= stop) {
					break;
				}
				const hole = Math.min(stop, this.native!.seekHole(this.fd, data));
				ranges.push({start: data, end: hole});
				at = hole;
			}
		} catch (error) {
			if (!isUnsupported(error, true)) {
				throw error;
			}
			this.canSeek = false;
			return undefined;
		}
		return ranges;
	}

	/** Sets the file size (files only). */
	truncate(size: number): void {
		fs.ftruncateSync(this.fd, size);
		this.size = size;
	}

	sync(): void {
		this.io('fdatasync', 0, () => fs.fdatasyncSync(this.fd));
	}

	/** Drops cached pages of [start, start+length) (length 0: to the end) so a later read comes from the disk (before --verify). */
	dropCache(start = 0, length = 0): void {
		try {
			this.native?.fadvise(this.fd, start, length, 'dontneed');
		} catch {
			// Advice only.
		}
	}

	close(): void {
		if (!this.closed) {
			this.closed = true;
			this.closeFd(this.fd);
		}
	}

	private warnOnce(key: string, message: string): void {
		if (!this.warned.has(key)) {
			this.warned.add(key);
			this.warn(message);
		}
	}
}

/** Errors meaning "this file system or device cannot do that" (EINVAL too for lseek's SEEK_DATA). */
function isUnsupported(error: unknown, einval: boolean): boolean {
	const code = (error as {code?: unknown} | null)?.code;
	return code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'ENOTTY' || code === 'ENOSYS' || (einval && code === 'EINVAL');
}
