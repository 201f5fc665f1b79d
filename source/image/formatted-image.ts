// An endpoint given with a format other than raw (--src-format/--dst-format): the disk inside the file, served
// by a qemu-nbd this host starts for the run and read or written as an NbdImage. The run's preparing agent
// owns the server (and the container's lock); its workers connect to the socket it names.
import fs from 'node:fs';
import {describeSystemError, UsageError} from '../errors.js';
import type {WarnSink} from './local-image.js';
import type {Image, Range, WritableImage} from './image.js';
import {NbdImage} from './nbd-image.js';
import {plainChain} from './host-map.js';
import {nbdFilesKnob} from '../environment.js';
import {TFLAG} from '../nbd/protocol.js';
import {checkCreatable, emptyImage, imageKind, lockOrThrow, type OpenedSource, openSource, refuseDestinationInUse, type SourceIdentity, sourceInUseWarning, statOrThrow} from './preflight.js';
import {checkFormat, createImage, resizeImage, startServer, virtualSize} from './qemu-server.js';
import {beginPass, type BitmapStore, checkBitmapSource, defaultRecordDir, dropPassRecord, finishPass, readPassRecord, recordPath, writePassRecord} from './bitmap.js';
import {exportDisk} from './qmp-export.js';
import {qmpBitmaps, readyBitmap, settleBitmaps, type VmBitmapStore} from './qmp-bitmaps.js';

/** What serves a ServedImage: a qemu-nbd of the run's, or a running VM's export (--qmp). */
export type NbdServer = {readonly socket: string; stop(): void};

/** True for a format served through qemu-nbd; raw (and no format) is read as the bytes it is. */
export function servedFormat(format: string | undefined): format is string {
	return format !== undefined && format !== '' && format !== 'raw';
}

/** The preparing agent's image: the export, and on close() the server stopped and the container's fd (its lock) closed. */
export class ServedImage implements WritableImage {
	readonly kind = 'block' as const;
	readonly name: string;
	readonly size: number;

	/** `release`: after the server stops, closes what holds the container's lock. */
	constructor(private readonly nbd: NbdImage, private readonly server: NbdServer, private readonly release: () => void, private readonly exportName = '') {
		this.name = nbd.name;
		this.size = nbd.size;
	}

	/** What the workers connect to (OPENED's server, their OPEN's holder): the socket, or an NBD URI naming the export too. */
	get socket(): string {
		return this.exportName === '' ? this.server.socket : `nbd+unix:///${encodeURIComponent(this.exportName)}?socket=${this.server.socket}`;
	}

	read(buffer: Buffer, offset: number, length: number, position: number): void {
		this.nbd.read(buffer, offset, length, position);
	}

	write(buffer: Buffer, offset: number, length: number, position: number): void {
		this.nbd.write(buffer, offset, length, position);
	}

	zero(position: number, length: number): void {
		this.nbd.zero(position, length);
	}

	sync(): void {
		this.nbd.sync();
	}

	dataRanges(start: number, end: number): Range[] | undefined {
		return this.nbd.dataRanges(start, end);
	}

	/** Ends the connection and the server, keeping the container's lock (close() releases it). */
	stopServer(): void {
		try {
			this.nbd.close();
		} finally {
			this.server.stop();
		}
	}

	close(): void {
		try {
			this.stopServer();
		} finally {
			this.release();
		}
	}
}

/** SRC's --bitmap as its preparing agent holds it: the bitmaps' owner, and the record of the last pass (its file and what it said at prepare). */
export type SourceBitmap = {readonly name: string; readonly store: BitmapStore; readonly recordFile: string; readonly record: string | undefined};

/**
 * After a successful run (the driver's commit OPEN): the server stopped (qemu-img takes the image's write lock), the
 * record removed, the bitmap rotated (bitmap.ts), then the record of this pass written. A crash anywhere loses no dirty
 * bit, and leaves no record that the bitmap does not match.
 */
export function commitSourceBitmap(image: ServedImage, bitmap: SourceBitmap, record: string): void {
	image.stopServer();
	dropPassRecord(bitmap.recordFile);
	finishPass(bitmap.store, bitmap.name);
	writePassRecord(bitmap.recordFile, record);
}

/**
 * A SRC's files, when its reads may go to them past the server (host-map.ts): every layer a plain qcow2 or raw file.
 * RBLOCKSYNC_NBD_FILES=0 reads everything through the server.
 */
function sourceFiles(path: string, format: string): {file: string; format: string; files: readonly string[]} | undefined {
	if (!nbdFilesKnob(process.env)) {
		return undefined;
	}
	const files = plainChain(path, format);
	return files ? {file: path, format, files} : undefined;
}

function serve(role: 'SRC' | 'DST', path: string, format: string, readOnly: boolean, release: () => void, bitmap?: string, forceShare = false): ServedImage {
	const server = startServer(role, path, {format, readOnly, forceShare, ...(bitmap === undefined ? {} : {bitmap})});
	try {
		const hostFiles = role === 'SRC' ? sourceFiles(path, format) : undefined;
		const nbd = NbdImage.open({socket: server.socket, name: path, writable: !readOnly, ...(hostFiles ? {hostFiles} : {})});
		return new ServedImage(nbd, server, release);
	} catch (error) {
		server.stop();
		throw new UsageError(`${role} ${path}: ${error instanceof Error ? error.message : String(error)}`, {cause: error});
	}
}

/**
 * SRC at prepare: the container opened and locked as any SRC (its identity and version), the disk served read-only.
 * With --bitmap the bitmap is checked and, unless in a dry run, its pass begun (bitmap.ts: before SRC's version is
 * taken, since qemu-img changes the file), and exported with the disk.
 */
export function openServedSource(path: string, format: string, warn?: WarnSink, bitmap?: {readonly name: string; readonly dryRun: boolean}, forceShare = false): {source: OpenedSource; image: ServedImage; bitmap?: SourceBitmap} {
	checkFormat('SRC', path, format);
	let held: SourceBitmap | undefined;
	if (bitmap) {
		const store = checkBitmapSource(path, format, bitmap.name);
		const recordFile = recordPath(defaultRecordDir(), statOrThrow('SRC', path), bitmap.name);
		const record = readPassRecord(recordFile);
		if (!bitmap.dryRun) {
			beginPass(store, bitmap.name);
		}
		held = {name: bitmap.name, store, recordFile, record};
	}
	const source = openSource(path, warn);
	// --force-share says it already; without it, qemu-nbd refuses the image a VM holds (QEMU's lock), and a
	// process writing it the QEMU way does not show is warned of once the server runs.
	const writer = forceShare ? undefined : sourceInUseWarning(path);
	if (forceShare) {
		source.warning = `SRC ${path} is read past its lock (--force-share): the copy is consistent only while nothing writes it (the VM paused); a write during the run fails it at the end`;
	}
	try {
		const image = serve('SRC', path, format, true, () => source.image.close(), bitmap?.name, forceShare);
		if (writer) {
			warn?.(writer);
		}
		return {source, image, ...(held ? {bitmap: held} : {})};
	} catch (error) {
		source.image.close();
		throw error;
	}
}

export type ServedDestination = {readonly image: Image; readonly served: ServedImage | undefined; readonly kind: 'file' | 'block'};

/**
 * DST at prepare: checked as a local DST is (the same file as SRC, --truncate), then locked, created
 * (qemu-img create at SRC's virtual size) or resized when --truncate says so, and served: writable, or
 * read-only in a dry run, which creates nothing (a missing DST reads as empty).
 */
export function prepareServedDestination(path: string, format: string, srcSize: number, src: SourceIdentity | undefined, options: {truncate: boolean; dryRun: boolean; force: boolean}): ServedDestination {
	checkFormat('DST', path, format);
	let exists = true;
	try {
		fs.statSync(path);
	} catch (error) {
		if ((error as {code?: string}).code !== 'ENOENT') {
			throw new UsageError(`DST ${path}: ${describeSystemError(error)}`, {cause: error});
		}
		exists = false;
	}
	if (!exists) {
		if (!options.truncate) {
			throw new UsageError(`DST ${path} does not exist; use --truncate to create it`);
		}
		checkCreatable(path, options.dryRun);
		if (options.dryRun) {
			return {image: emptyImage(path), served: undefined, kind: 'file'};
		}
		createImage(path, format, srcSize);
	}
	const stat = statOrThrow('DST', path);
	const kind = imageKind('DST', path, stat);
	if (src && src.dev === stat.dev && src.ino === stat.ino) {
		throw new UsageError(`SRC and DST are the same ${kind === 'block' ? 'device' : 'file'}: ${path}`);
	}
	let fd: number;
	try {
		fd = fs.openSync(path, 'r');
	} catch (error) {
		throw new UsageError(`DST ${path}: ${describeSystemError(error)}`, {cause: error});
	}
	try {
		lockOrThrow(fd, 'DST', path, kind, !options.dryRun);
		// The container itself, before this run's qemu-nbd opens it (and takes QEMU's lock on it).
		refuseDestinationInUse(path, exists, options.force);
		const size = virtualSize(path, format, 'DST');
		if (size !== srcSize) {
			if (!options.truncate) {
				throw new UsageError(`DST ${path} holds a ${size}-byte ${format} disk but SRC is ${srcSize} bytes; use --truncate to resize DST`);
			}
			if (!options.dryRun) {
				resizeImage(path, format, srcSize);
			}
		}
		const served = serve('DST', path, format, options.dryRun, () => fs.closeSync(fd));
		return {image: served, served, kind};
	} catch (error) {
		try {
			fs.closeSync(fd);
		} catch {
			// Closed by the refusal already (a lock held elsewhere).
		}
		throw error;
	}
}

/**
 * SRC as a disk of the running VM at `qmp` (--qmp): the VM's QEMU exports it read-only over NBD for this run
 * and removes the export at close(). SRC's file is not opened (the VM has it; it changes while the guest runs).
 * With --bitmap the VM's bitmap is made ready (added on a first pass) and its pass begun (qmp-bitmaps.ts), in a
 * dry run too (a disabled NAME is what QEMU exports); close() without a commit merges NAME.next back.
 */
export function openQmpSource(path: string, qmp: string, bitmap?: {readonly name: string}): {image: ServedImage; bitmap?: SourceBitmap; warning?: string} {
	let held: SourceBitmap | undefined;
	let store: VmBitmapStore | undefined;
	let warning: string | undefined;
	const recordFile = bitmap ? recordPath(defaultRecordDir(), statOrThrow('SRC', path), bitmap.name) : '';
	const vm = exportDisk(qmp, path, {
		bitmaps: bitmap ? [bitmap.name] : [],
		beforeExport(disk, run) {
			if (!bitmap) {
				return;
			}
			const persistent = disk.bitmapDrv === 'qcow2';
			store = qmpBitmaps(run, disk.bitmapNode ?? disk.node, bitmap.name, persistent);
			const {fresh} = readyBitmap(store, bitmap.name);
			if (fresh) {
				dropPassRecord(recordFile); // The bitmap did not record the writes since that pass.
				warning = `--bitmap ${bitmap.name}: the VM's disk ${disk.label} had no such bitmap recording: ${persistent ? 'added, persistent in its qcow2' : 'added, kept by QEMU until the VM stops (a raw disk stores none)'}; this pass reads everything`;
			}
			held = {name: bitmap.name, store, recordFile, record: fresh ? undefined : readPassRecord(recordFile)};
			beginPass(store, bitmap.name);
		},
	});
	const settle = (): void => {
		if (store && bitmap) {
			settleBitmaps(store, bitmap.name);
		}
	};
	try {
		const nbd = NbdImage.open({socket: vm.socket, exportName: vm.exportName, name: path, ...(bitmap ? {bitmap: bitmap.name} : {})});
		const image = new ServedImage(nbd, {socket: vm.socket, stop: () => vm.remove()}, settle, vm.exportName);
		return {image, ...(held ? {bitmap: held} : {}), ...(warning ? {warning} : {})};
	} catch (error) {
		try {
			vm.remove();
		} finally {
			settle();
		}
		throw new UsageError(`SRC ${path}: the VM's export of ${vm.disk.label}: ${error instanceof Error ? error.message : String(error)}`, {cause: error});
	}
}

/** A worker's holder: a qemu-nbd's socket, or nbd+unix:///EXPORT?socket=PATH for a VM's export. */
function parseServer(server: string): {socket: string; exportName: string} {
	const match = /^nbd\+unix:\/\/\/([^?]*)\?socket=(.+)$/.exec(server);
	return match ? {socket: match[2]!, exportName: decodeURIComponent(match[1]!)} : {socket: server, exportName: ''};
}

/**
 * A worker's connection to the server its run's preparing agent started (`socket`, from that agent's OPENED).
 * `whole`: this worker's range is the whole image; several writing workers need a server that allows several
 * writing connections (NBD_FLAG_CAN_MULTI_CONN: a flush on one covers the writes of all).
 */
export function openServedWorker(role: 'SRC' | 'DST', path: string, socket: string, writable: boolean, whole: boolean, bitmap?: string, format?: string): NbdImage {
	let image: NbdImage;
	try {
		const server = parseServer(socket);
		// A qemu-nbd of this run's on SRC (not a running VM's export, whose disk the guest writes): its files are read.
		const hostFiles = role === 'SRC' && server.exportName === '' && format !== undefined ? sourceFiles(path, format) : undefined;
		image = NbdImage.open({...server, name: path, writable, ...(bitmap === undefined ? {} : {bitmap}), ...(hostFiles ? {hostFiles} : {})});
	} catch (error) {
		throw new UsageError(`${role} ${path}: ${error instanceof Error ? error.message : String(error)}`, {cause: error});
	}
	if (writable && !whole && (image.export.flags & TFLAG.CAN_MULTI_CONN) === 0) {
		image.close();
		throw new UsageError(`DST ${path}: its NBD server does not allow several writing connections (no multi-conn); run with --workers 1`);
	}
	return image;
}
