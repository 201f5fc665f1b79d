// An NBD export (the disk inside a qcow2 or any format qemu-nbd reads) as a synchronous Image. The client
// is asynchronous and runs in a worker thread of its own; each call posts one operation and blocks in
// Atomics.wait until the thread answers, so a read of a 4 MiB batch costs one handoff, not one per block.
import fs from 'node:fs';
import {fileURLToPath} from 'node:url';
import {MessageChannel, type MessagePort, receiveMessageOnPort, Worker} from 'node:worker_threads';
import type {Range, WritableImage} from './image.js';
import {firstRangeEndingAfter} from '../blocks/blocks.js';
import type {NbdExport} from '../nbd/client.js';
import {BASE_ALLOCATION, dirtyBitmapContext, dirtySpans, STATE_ZERO, TFLAG} from '../nbd/protocol.js';
import {type Answer, type Operation, SIGNAL, type Span} from './nbd-thread.js';
import {HostFileReader} from './host-map.js';

export type NbdImageOptions = {
	/** The server's Unix socket (qemu-nbd -k PATH). */
	readonly socket: string;
	readonly exportName?: string;
	/** How errors name the image; default the NBD URI, nbd+unix:///EXPORT?socket=PATH. */
	readonly name?: string;
	/** Refuse to open a read-only export (write(), zero() would fail on it). */
	readonly writable?: boolean;
	/** Contexts besides base:allocation, e.g. dirtyBitmapContext('b0') for qemu-nbd -B b0. */
	readonly extraContexts?: readonly string[];
	/**
	 * The export's dirty bitmap (qemu-nbd -B NAME, or a QEMU export with that bitmap): its context is selected,
	 * the open fails when the server does not offer it, and changedRanges() reads it.
	 */
	readonly bitmap?: string;
	/** Longest wait for one operation (and for the connection) before the image fails; default 120 s. */
	readonly timeoutMs?: number;
	/** Size of the READ requests a read is split into (see READ_REQUEST_BYTES). */
	readonly readRequestBytes?: number;
	/**
	 * The exported image's files when reads may bypass the server (host-map.ts, plainChain: the container and its
	 * backing files): data is read from them where qemu-img map gives an offset, the rest through the server.
	 */
	readonly hostFiles?: {readonly file: string; readonly format: string; readonly files: readonly string[]};
};

/**
 * How far a hinted read fetches ahead (readAhead): one handoff and 32 READ requests in flight instead of one handoff
 * per chunk (a 1 MiB read at a time reached 121 MiB/s from qemu-nbd here, 4 MiB ones 282 MiB/s). A fetch runs on
 * over the next hinted ranges (SOURCE's data chunks, or the chunks a dirty bitmap marks: 1 MiB apart on a disk
 * the guest wrote here and there) until it holds this much, in at most MAX_PIECES of them.
 */
const READ_AHEAD = 8 * 1024 * 1024;
const MAX_PIECES = 256;

/**
 * Fetches kept (a buffer of READ_AHEAD each, allocated as used): SOURCE reads a changed chunk a second time to send
 * the blocks DEST asked for, up to its credit window (32 chunks of 1 MiB) behind its front; those reads are served
 * from here, not by another round trip to the server (a --bitmap pass read each dirty MiB twice through qemu-nbd).
 */
const AHEAD_BUFFERS = 5;

/** What one fetch put where: [start, end) of the export at `at` in `buffer`. */
type Segment = {start: number; end: number; buffer: Buffer; at: number};

/** The largest shared data area, and so the largest piece one handoff moves: bigger reads and writes take several. */
const MAX_AREA = 32 * 1024 * 1024;

/** The compiled worker beside this module, its source (under tsx, in the tests), or the bundle's worker file. */
export function workerUrl(): URL {
	const names = import.meta.url.endsWith('.ts') ? ['./nbd-worker.ts'] : ['./nbd-worker.js', './rblocksync-nbd-worker.mjs'];
	for (const name of names) {
		const url = new URL(name, import.meta.url);
		if (fs.existsSync(fileURLToPath(url))) {
			return url;
		}
	}
	throw Object.assign(new Error(`the NBD worker thread's module (${names.join(' or ')}) is missing beside ${fileURLToPath(import.meta.url)}`), {code: 'ENOENT'});
}

/**
 * Loads the worker module and answers the first operation with the error if that fails: the caller is
 * blocked in Atomics.wait and would never see the Worker's 'error' event. A .ts module gets tsx's loader
 * first (tsx's --import does not reach worker threads).
 */
export const BOOTSTRAP = `const {workerData} = require('node:worker_threads');
(async () => {
	if (workerData.tsx) {
		(await import(workerData.tsx)).register();
	}
	await import(workerData.url);
})().catch(error => {
	workerData.port.postMessage({ok: false, message: 'the NBD worker thread did not start: ' + error.message, code: 'EIO'});
	const signal = new Int32Array(workerData.signal);
	Atomics.store(signal, 0, 1);
	Atomics.notify(signal, 0);
});`;

/** One NBD connection, served by its own thread. Not shareable between threads: open one per engine worker. */
export class NbdImage implements WritableImage {
	/** A fixed-size disk, like a block device: never truncated, no mtime to check. */
	readonly kind = 'block' as const;
	readonly name: string;
	readonly size: number;
	/** What the handshake agreed (flags, size constraints, the contexts the server selected). */
	readonly export: NbdExport;
	private readonly signal = new Int32Array(new SharedArrayBuffer(4));
	private readonly port: MessagePort;
	private readonly worker: Worker;
	private area = new SharedArrayBuffer(0);
	private fresh = false;
	private closed = false;
	private broken: Error | undefined;
	private readonly timeoutMs: number;
	private readonly bitmapContext: string | undefined;
	/** readAhead's hint, and the bytes fetched ahead: ascending segments over the ring of `buffers` (oldest first). */
	private hinted: readonly Range[] = [];
	private readonly buffers: Buffer[] = [];
	private nextBuffer = 0;
	private segments: Segment[] = [];
	/** The end of the furthest fetch ahead: reads before it are not fetched ahead again. */
	private frontier = 0;
	/** Reads from the image's own files (options.hostFiles), past the server. */
	private host: HostFileReader | undefined;
	/** Operations handed to the thread (each a round trip): for tests and traces. */
	handoffs = 0;
	/** Bytes read through the export (reads served from the fetches kept are not). */
	private exportBytesRead = 0;

	private constructor(options: NbdImageOptions) {
		const exportName = options.exportName ?? '';
		this.name = options.name ?? `nbd+unix:///${encodeURIComponent(exportName)}?socket=${options.socket}`;
		this.timeoutMs = options.timeoutMs ?? 120_000;
		const channel = new MessageChannel();
		this.port = channel.port1;
		const url = workerUrl();
		const tsx = url.pathname.endsWith('.ts') ? (import.meta as unknown as {resolve(specifier: string): string}).resolve('tsx/esm/api') : undefined;
		this.worker = new Worker(BOOTSTRAP, {eval: true, workerData: {url: url.href, tsx, port: channel.port2, signal: this.signal.buffer}, transferList: [channel.port2]});
		this.worker.unref();
		this.port.unref();
		this.bitmapContext = options.bitmap === undefined ? undefined : dirtyBitmapContext(options.bitmap);
		const contexts = [BASE_ALLOCATION, ...(options.extraContexts ?? []), ...(this.bitmapContext ? [this.bitmapContext] : [])];
		let info: NbdExport | undefined;
		try {
			info = this.call({op: 'open', socket: options.socket, exportName, metaContexts: contexts, timeoutMs: this.timeoutMs, readRequestBytes: options.readRequestBytes}, 'open').info;
		} catch (error) {
			void this.worker.terminate();
			throw error;
		}
		this.export = info!;
		this.size = this.export.size;
		if (options.hostFiles) {
			const {file, format, files} = options.hostFiles;
			try {
				this.host = new HostFileReader(file, format, files, this.size);
			} catch (error) {
				this.close();
				throw error;
			}
		}
	}

	/** Bytes read from the storage: through the export (not what the fetches kept served again), and from the image's files. */
	get storageBytesRead(): number {
		return this.exportBytesRead + (this.host?.bytesRead ?? 0);
	}

	/** Whether reads go to the image's files where they can (hostFiles). */
	get readsFiles(): boolean {
		return this.host !== undefined;
	}

	/** Connects and negotiates (blocking until done); throws naming the socket when the server refuses. */
	static open(options: NbdImageOptions): NbdImage {
		const image = new NbdImage(options);
		if (image.bitmapContext && !image.export.contexts.has(image.bitmapContext)) {
			image.close();
			throw Object.assign(new Error(`${image.name}: open: the NBD server does not offer the dirty bitmap ${options.bitmap} (${image.bitmapContext})`), {code: 'ENOENT'});
		}
		if (options.writable && image.readOnly) {
			image.close();
			throw Object.assign(new Error(`${image.name}: open: the NBD export is read-only`), {code: 'EROFS'});
		}
		return image;
	}

	get readOnly(): boolean {
		return (this.export.flags & TFLAG.READ_ONLY) !== 0;
	}

	readAhead(ranges: readonly Range[]): void {
		this.hinted = ranges;
		this.segments = [];
		this.frontier = 0;
	}

	read(buffer: Buffer, offset: number, length: number, position: number): void {
		while (this.host && length > 0 && position < this.size) {
			const inside = Math.min(length, this.size - position);
			let piece = this.host.read(buffer, offset, inside, position);
			if (piece === 0) {
				// A run of extents only the server has (compressed clusters): through it, fetched ahead within that run.
				const until = this.host.servedUntil(position);
				piece = Math.min(inside, until - position);
				this.readThroughServer(buffer, offset, piece, position, until);
			}
			offset += piece;
			position += piece;
			length -= piece;
		}
		this.readThroughServer(buffer, offset, length, position, this.size);
	}

	/** A read through the export: from the fetches kept, else a fetch ahead (not past `limit`), else as asked. */
	private readThroughServer(buffer: Buffer, offset: number, length: number, position: number, limit: number): void {
		while (length > 0) {
			const index = firstRangeEndingAfter(this.segments, position);
			const segment = this.segments[index];
			if (segment && segment.start <= position) {
				const piece = Math.min(length, segment.end - position);
				segment.buffer.copy(buffer, offset, segment.at + position - segment.start, segment.at + position - segment.start + piece);
				offset += piece;
				position += piece;
				length -= piece;
				continue;
			}
			// Only reads moving forward fetch ahead: a read behind what was fetched and no longer kept is served as
			// asked, or it would fetch megabytes for a few blocks.
			if (length < READ_AHEAD && position >= this.frontier && this.fetch(position, length, limit)) {
				continue;
			}
			this.readDirect(buffer, offset, length, position);
			return;
		}
	}

	/**
	 * Fetches from `position` on, inside the hinted ranges and before `limit`, up to READ_AHEAD bytes into the next
	 * buffer of the ring: false (nothing fetched) when `position` is in no hinted range or the read goes on past them.
	 */
	private fetch(position: number, length: number, limit: number): boolean {
		let index = firstRangeEndingAfter(this.hinted, position);
		if (!this.hinted[index] || this.hinted[index]!.start > position) {
			return false;
		}
		const pieces: number[] = [];
		let total = 0;
		for (let at = position; index < this.hinted.length && total < READ_AHEAD && pieces.length < 2 * MAX_PIECES; index++) {
			const range = this.hinted[index]!;
			const start = Math.max(at, range.start);
			const end = Math.min(range.end, limit, start + READ_AHEAD - total);
			if (end > start) {
				pieces.push(start, end - start);
				total += end - start;
				at = end;
			}
			if (end < range.end) {
				break;
			}
		}
		if (total < length) {
			return false;
		}
		const slot = this.nextBuffer;
		this.nextBuffer = (slot + 1) % AHEAD_BUFFERS;
		// Shared with the thread, which reads into it: no copy out of the data area.
		const target = this.buffers[slot] ??= Buffer.from(new SharedArrayBuffer(READ_AHEAD));
		this.segments = this.segments.filter(segment => segment.buffer !== target);
		this.call({op: 'read', position, length: total, pieces, into: target.buffer as SharedArrayBuffer}, 'read', position);
		this.exportBytesRead += total;
		for (let piece = 0, at = 0; piece < pieces.length; piece += 2) {
			this.segments.push({start: pieces[piece]!, end: pieces[piece]! + pieces[piece + 1]!, buffer: target, at});
			at += pieces[piece + 1]!;
		}
		this.frontier = pieces[pieces.length - 2]! + pieces[pieces.length - 1]!;
		return true;
	}

	private readDirect(buffer: Buffer, offset: number, length: number, position: number): void {
		const available = Math.max(0, Math.min(length, this.size - position));
		this.exportBytesRead += available;
		for (let done = 0; done < available;) {
			const piece = Math.min(MAX_AREA, available - done);
			const view = this.reserve(piece);
			this.call({op: 'read', position: position + done, length: piece, data: this.handOver()}, 'read', position + done);
			view.copy(buffer, offset + done, 0, piece);
			done += piece;
		}
		buffer.fill(0, offset + available, offset + length);
	}

	write(buffer: Buffer, offset: number, length: number, position: number): void {
		this.refuseReadOnly('write', position);
		this.segments = [];
		if (position + length > this.size) {
			throw Object.assign(new Error(`${this.name}: write at offset ${position}: past the end of the ${this.size}-byte export`), {code: 'ENOSPC'});
		}
		for (let done = 0; done < length;) {
			const piece = Math.min(MAX_AREA, length - done);
			const view = this.reserve(piece);
			buffer.copy(view, 0, offset + done, offset + done + piece);
			this.call({op: 'write', position: position + done, length: piece, data: this.handOver()}, 'write', position + done);
			done += piece;
		}
	}

	/** NBD_CMD_WRITE_ZEROES without NBD_CMD_FLAG_NO_HOLE: the server may deallocate (qcow2: zero clusters, raw: a punched hole). */
	zero(position: number, length: number): void {
		this.zeroRange(position, length, false);
	}

	/** Zeroes that stay allocated (NBD_CMD_FLAG_NO_HOLE). */
	zeroAllocated(position: number, length: number): void {
		this.zeroRange(position, length, true);
	}

	/** NBD_CMD_TRIM of the whole minimum blocks inside the range: a hint; the content there is undefined afterwards. */
	trim(position: number, length: number): void {
		this.refuseReadOnly('trim', position);
		const end = Math.min(this.size, position + length);
		if (end > position) {
			this.call({op: 'trim', position, length: end - position}, 'trim', position);
		}
	}

	/** Ranges not flagged NBD_STATE_ZERO by base:allocation. A hole without the zero flag is data: its content is undefined, so it is read. */
	dataRanges(start: number, end: number): Range[] | undefined {
		if (!this.export.contexts.has(BASE_ALLOCATION)) {
			return undefined;
		}
		const ranges: Range[] = [];
		for (const span of this.extents(start, end, BASE_ALLOCATION)) {
			if (span.flags & STATE_ZERO) {
				continue;
			}
			const last = ranges[ranges.length - 1];
			if (last && last.end === span.start) {
				last.end = span.end;
			} else {
				ranges.push({start: span.start, end: span.end});
			}
		}
		return ranges;
	}

	/** Only with `bitmap`: the ranges its context marks dirty (NBD_STATE_DIRTY), as whole extents of the bitmap's granularity. */
	changedRanges(start: number, end: number): Range[] {
		if (!this.bitmapContext) {
			throw Object.assign(new Error(`${this.name}: this connection selected no dirty bitmap`), {code: 'EINVAL'});
		}
		return dirtySpans(this.extents(start, end, this.bitmapContext));
	}

	/** The extents of a selected metadata context over [start, end) (clipped to the size), with its flags: for dirty bitmaps. */
	extents(start: number, end: number, context: string): Span[] {
		return Math.min(end, this.size) > start ? this.call({op: 'extents', start, end, context}, 'block status', start).spans! : [];
	}

	/** NBD_CMD_FLUSH (nothing when the server has no flush). */
	sync(): void {
		this.call({op: 'flush'}, 'flush');
	}

	/** NBD_CMD_DISC, then the thread ends. qemu-nbd without -t exits when its last client leaves. */
	close(): void {
		if (this.closed) {
			return;
		}
		this.closed = true;
		this.host?.close();
		try {
			if (!this.broken) {
				this.call({op: 'close'}, 'close');
			}
		} finally {
			this.port.close();
			void this.worker.terminate();
		}
	}

	private zeroRange(position: number, length: number, noHole: boolean): void {
		this.refuseReadOnly('zero', position);
		this.segments = [];
		const end = Math.min(this.size, position + length);
		if (end > position) {
			this.call({op: 'zero', position, length: end - position, noHole}, 'zero', position);
		}
	}

	/** The server would refuse it anyway (qemu-nbd with EINVAL): say why, in the words of a read-only file. */
	private refuseReadOnly(what: string, position: number): void {
		if (this.readOnly) {
			throw Object.assign(new Error(`${this.name}: ${what} at offset ${position}: the NBD export is read-only`), {code: 'EROFS'});
		}
	}

	/** A view of the shared data area of at least `length` bytes, growing it (the thread gets the new one with the next operation). */
	private reserve(length: number): Buffer {
		if (this.area.byteLength < length) {
			this.area = new SharedArrayBuffer(Math.min(MAX_AREA, 2 ** Math.ceil(Math.log2(Math.max(length, 1024 * 1024)))));
			this.fresh = true;
		}
		return Buffer.from(this.area, 0, length);
	}

	private handOver(): SharedArrayBuffer | undefined {
		const fresh = this.fresh ? this.area : undefined;
		this.fresh = false;
		return fresh;
	}

	/** Posts one operation and blocks until the thread answers; errors name the image, the operation and the offset. */
	private call(operation: Operation, what: string, position?: number): Extract<Answer, {ok: true}> {
		const where = `${this.name}: ${what}${position === undefined ? '' : ` at offset ${position}`}`;
		if (this.broken) {
			throw Object.assign(new Error(`${where}: ${this.broken.message}`), {code: 'EIO'});
		}
		if (this.closed && operation.op !== 'close') {
			throw Object.assign(new Error(`${where}: the image is closed`), {code: 'EBADF'});
		}
		Atomics.store(this.signal, SIGNAL, 0);
		this.handoffs += 1;
		this.port.postMessage(operation);
		const deadline = Date.now() + this.timeoutMs;
		while (Atomics.wait(this.signal, SIGNAL, 0, Math.max(1, deadline - Date.now())) === 'timed-out' || Atomics.load(this.signal, SIGNAL) === 0) {
			if (Date.now() >= deadline) {
				this.broken = new Error(`no answer from the NBD server within ${Math.round(this.timeoutMs / 1000)} s`);
				void this.worker.terminate();
				throw Object.assign(new Error(`${where}: ${this.broken.message}`), {code: 'ETIMEDOUT'});
			}
		}
		const answer = receiveMessageOnPort(this.port)?.message as Answer | undefined;
		if (!answer) {
			this.broken = new Error('the NBD worker thread answered nothing');
			throw Object.assign(new Error(`${where}: ${this.broken.message}`), {code: 'EIO'});
		}
		if (!answer.ok) {
			if (answer.code === 'ECONNRESET' || answer.code === 'EPIPE') {
				this.broken = new Error(answer.message);
			}
			throw Object.assign(new Error(`${where}: ${answer.message}`), {code: answer.code});
		}
		return answer;
	}
}
