// Where the disk inside a qcow2 lives in its files: `qemu-img map`'s extents (guest range, the layer of the backing
// chain holding it, its offset in that layer's file), so a SRC's data is read with pread from the files themselves
// instead of through qemu-nbd (one copy less, no socket: qemu-nbd served 1 GiB in ~3 s here, pread in ~0.5 s).
// Only where QEMU gives a plain offset in a plain file: qcow2 layers without an external data file or encryption
// (a compressed or encrypted cluster has no offset: it is read through NBD), raw layers. The server still runs (it
// holds QEMU's locks on the image, answers block status and dirty bitmaps, and serves what has no offset).
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** One extent of the guest disk: zeros, bytes at `offset` of layer `depth`'s file, or bytes only the server can give. */
export const enum Extent {
	zero = 0,
	file = 1,
	served = 2,
}

/** The extents of [start, end) of the guest disk, ascending and adjacent: parallel arrays, no object per extent. */
export type ExtentMap = {
	readonly start: number;
	readonly end: number;
	readonly starts: Float64Array;
	readonly ends: Float64Array;
	readonly kinds: Uint8Array;
	readonly depths: Uint16Array;
	readonly offsets: Float64Array;
};

type MapEntry = {start: number; length: number; depth: number; present: boolean; zero: boolean; data: boolean; offset?: number};

/**
 * Parses `qemu-img map --output=json` for [start, end): a zero extent reads as zeros (QEMU's zero flag wins over an
 * allocated offset: a preallocated zero cluster holds old bytes), an extent with data and an offset is read from
 * its layer's file, any other (compressed, or no offset) from the server. Throws on a map that does not cover the range.
 */
export function parseExtentMap(json: string, start: number, end: number): ExtentMap {
	const entries = JSON.parse(json) as MapEntry[];
	const count = entries.length;
	const map = {start, end, starts: new Float64Array(count), ends: new Float64Array(count), kinds: new Uint8Array(count), depths: new Uint16Array(count), offsets: new Float64Array(count)};
	let at = start;
	entries.forEach((entry, index) => {
		if (entry.start !== at || !(entry.length > 0)) {
			throw new Error(`qemu-img map: extent ${index} starts at ${entry.start}, expected ${at}`);
		}
		map.starts[index] = entry.start;
		map.ends[index] = entry.start + entry.length;
		const zero = entry.zero || !entry.present;
		map.kinds[index] = zero ? Extent.zero : entry.data && typeof entry.offset === 'number' ? Extent.file : Extent.served;
		map.depths[index] = entry.depth;
		map.offsets[index] = entry.offset ?? -1;
		at = entry.start + entry.length;
	});
	if (at < end) {
		throw new Error(`qemu-img map: the extents end at ${at}, before ${end}`);
	}
	return map;
}

/** The index of the extent holding `position` (binary search); -1 outside the map. */
export function extentAt(map: ExtentMap, position: number): number {
	let low = 0;
	let high = map.starts.length - 1;
	while (low <= high) {
		const middle = (low + high) >>> 1;
		if (map.ends[middle]! <= position) {
			low = middle + 1;
		} else if (map.starts[middle]! > position) {
			high = middle - 1;
		} else {
			return middle;
		}
	}
	return -1;
}

/** Whether any extent of the map is read through the server. */
export function needsServer(map: ExtentMap): boolean {
	return map.kinds.includes(Extent.served);
}

type ChainEntry = {filename: string; format: string; encrypted?: boolean; 'backing-filename'?: string; 'full-backing-filename'?: string; 'format-specific'?: {type?: string; data?: {'data-file'?: string}}};

/** Formats whose map offsets are offsets in the layer's own file. */
const PLAIN_LAYERS = new Set(['qcow2', 'raw']);

/**
 * The files of `file`'s backing chain, top first (the map's depth indexes it), when every layer is a qcow2 without an
 * external data file or encryption, or a raw file; undefined otherwise (the image is then read through the server).
 */
export function plainChain(file: string, format: string): string[] | undefined {
	const result = spawnSync('qemu-img', ['info', '-U', '--backing-chain', '--output=json', '-f', format, file], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24});
	if (result.status !== 0) {
		return undefined;
	}
	let chain: ChainEntry[];
	try {
		const parsed = JSON.parse(result.stdout) as ChainEntry[] | ChainEntry;
		chain = Array.isArray(parsed) ? parsed : [parsed];
	} catch {
		return undefined;
	}
	const files: string[] = [];
	let expected = path.resolve(file);
	for (const [index, layer] of chain.entries()) {
		if (!PLAIN_LAYERS.has(layer.format) || layer.encrypted || layer['format-specific']?.data?.['data-file'] !== undefined) {
			return undefined;
		}
		// A backing file named by anything but a path (json:{...}, nbd:, a protocol): not a file to read.
		if (index > 0 && path.resolve(layer.filename) !== expected) {
			return undefined;
		}
		files.push(expected);
		const backing = layer['full-backing-filename'] ?? layer['backing-filename'];
		if (backing !== undefined) {
			expected = path.resolve(path.dirname(expected), backing);
		} else if (index < chain.length - 1) {
			return undefined;
		}
	}
	return files.length > 0 ? files : undefined;
}

/** Ranges remembered as just read (HostFileReader.recent): SOURCE's credit window, 32 chunks, and more. */
const RECENT = 64;

/** How much of the guest disk one `qemu-img map` covers: a process per 8 GiB read, a bounded map in memory. */
export const MAP_WINDOW = 8 * 1024 ** 3;

/**
 * Reads the disk inside a plain chain (plainChain) from its files: `read` serves what the map places in a file or
 * as zeros and returns how many bytes it served from `position` on (less than asked at an extent only the server has).
 */
export class HostFileReader {
	private readonly fds: number[] = [];
	private map: ExtentMap | undefined;
	/** Bytes read from the files (holes and zero extents are not, nor a read again of a range just read: see `recent`). */
	bytesRead = 0;
	/**
	 * The last RECENT ranges read ([start, end) pairs, a ring): SOURCE reads a changed chunk again for the blocks DEST
	 * asks for, from the page cache; as through the server (whose fetches ahead serve those), that is not counted again.
	 */
	private readonly recent = new Float64Array(2 * RECENT);
	private nextRecent = 0;

	constructor(private readonly file: string, private readonly format: string, private readonly files: readonly string[], private readonly size: number) {
		for (const name of files) {
			this.fds.push(fs.openSync(name, 'r'));
		}
	}

	read(buffer: Buffer, offset: number, length: number, position: number): number {
		const counted = !this.readRecently(position, position + length);
		const before = this.bytesRead;
		let served = 0;
		while (served < length) {
			const at = position + served;
			const map = this.mapAt(at);
			const index = extentAt(map, at);
			const kind = map.kinds[index]!;
			const piece = Math.min(length - served, map.ends[index]! - at);
			if (kind === Extent.served) {
				break;
			}
			if (kind === Extent.zero) {
				buffer.fill(0, offset + served, offset + served + piece);
			} else {
				this.pread(map.depths[index]!, buffer, offset + served, piece, map.offsets[index]! + (at - map.starts[index]!));
			}
			served += piece;
		}
		if (!counted) {
			this.bytesRead = before;
		}
		if (served > 0) {
			this.recent[2 * this.nextRecent] = position;
			this.recent[2 * this.nextRecent + 1] = position + served;
			this.nextRecent = (this.nextRecent + 1) % RECENT;
		}
		return served;
	}

	private readRecently(start: number, end: number): boolean {
		for (let index = 0; index < RECENT; index++) {
			if (this.recent[2 * index]! <= start && end <= this.recent[2 * index + 1]! && end > start) {
				return true;
			}
		}
		return false;
	}

	/** Where the run of extents only the server has, from `position` on, ends (within the loaded map). */
	servedUntil(position: number): number {
		const map = this.mapAt(position);
		let index = extentAt(map, position);
		while (index + 1 < map.kinds.length && map.kinds[index + 1] === Extent.served) {
			index += 1;
		}
		return map.ends[index]!;
	}

	close(): void {
		for (const fd of this.fds.splice(0)) {
			fs.closeSync(fd);
		}
	}

	private pread(depth: number, buffer: Buffer, offset: number, length: number, position: number): void {
		const fd = this.fds[depth];
		if (fd === undefined) {
			throw Object.assign(new Error(`${this.file}: qemu-img map names layer ${depth} of a ${this.files.length}-layer chain`), {code: 'EIO'});
		}
		for (let done = 0; done < length;) {
			const got = fs.readSync(fd, buffer, offset + done, length - done, position + done);
			if (got === 0) {
				throw Object.assign(new Error(`${this.files[depth]}: end of file at ${position + done}, inside an extent qemu-img map placed there`), {code: 'EIO'});
			}
			done += got;
		}
		this.bytesRead += length;
	}

	/** The map holding `position`: the one loaded, or the window from there (qemu-img map --start-offset, --max-length). */
	private mapAt(position: number): ExtentMap {
		if (this.map && position >= this.map.start && position < this.map.end) {
			return this.map;
		}
		const start = position - (position % (64 * 1024));
		const end = Math.min(this.size, start + MAP_WINDOW);
		const result = spawnSync('qemu-img', ['map', '-U', '--output=json', '-f', this.format, `--start-offset=${start}`, `--max-length=${end - start}`, this.file], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30});
		if (result.status !== 0) {
			throw Object.assign(new Error(`${this.file}: qemu-img map: ${(result.stderr || result.error?.message || `exit status ${result.status}`).trim()}`), {code: 'EIO'});
		}
		this.map = parseExtentMap(result.stdout, start, end);
		return this.map;
	}
}
