// Opens the image an OPEN message names, with the local engine's precondition checks, on whichever host runs the role.
import fs from 'node:fs';
import {describeSystemError, RblocksyncError, TransferError, UsageError} from '../errors.js';
import {emptyImage, openDestination, type OpenedSource, openSource, planDestination, refuseFormatHeader, type SourceIdentity, sourceInUseWarning, syncCreatedEntry} from '../image/preflight.js';
import {openQmpSource, openServedSource, openServedWorker, prepareServedDestination, servedFormat, type ServedImage, type SourceBitmap} from '../image/formatted-image.js';
import {checkBitmapSource, dstStamp} from '../image/bitmap.js';
import {sourceChange, sourceChangedMessage} from '../image/source-version.js';
import {LocalImage, type WarnSink} from '../image/local-image.js';
import {holderToken, openOnHolder, parseHolder} from '../image/lock-holder.js';
import {nativeOps} from '../native/native.js';
import type {Image, WritableImage} from '../image/image.js';
import {ErrorKind, ImageKindCode, type Message, openFlags, Role} from '../protocol/messages.js';

type OpenMessage = Extract<Message, {type: 'open'}>;

export type OpenedRole = {
	readonly image: Image;
	readonly writable: WritableImage | undefined;
	readonly reply: Extract<Message, {type: 'opened'}>;
	readonly warning?: string;
	/** SOURCE: SRC as opened, for checkSource. */
	readonly source?: OpenedSource;
	/** DEST's prepare: DST did not exist before this run (a cache named after its inode belongs to a deleted file). */
	readonly created?: boolean;
	/** SOURCE's prepare with --bitmap: the bitmap it began a pass of, committed at the driver's commit OPEN. */
	readonly bitmap?: SourceBitmap;
	/** The served image a formatted SRC's preparing agent holds (its server stops before the bitmap's rotation). */
	readonly served?: ServedImage;
};

/** What a role knows of the host it runs on, read once per agent. */
export type RoleHost = {
	/** This machine's boot id: tells whether SRC and DST agents run on the same host, whatever the aliases. */
	readonly bootId: string | undefined;
	/** Where the images' warnings go (a WARN frame). */
	readonly warn: WarnSink;
};

/** How an agent turns OPEN into an image: openRole on this host's files and devices (tests pass memory images). */
export type RoleOpener = (open: OpenMessage, host: RoleHost) => OpenedRole | undefined;

/** Runs the checks and opens the image; `prepare` also creates/resizes DST and closes it. Throws UsageError on refusal. */
export function openRole(open: OpenMessage, host: RoleHost): OpenedRole | undefined {
	const {prepare, ...options} = openFlags(open.flags);
	const {bootId, warn} = host;
	if (open.qmp && open.role === Role.source) {
		return openServed(open, 'qmp', bootId, warn);
	}
	// DST's stamp before this run touches it (--truncate may resize it below): --bitmap's record names it.
	const stamp = prepare && open.role === Role.dest && open.bitmap !== undefined ? stampOf(open.path) : undefined;
	if (servedFormat(open.format)) {
		const opened = openServed(open, open.format, bootId, warn);
		return stamp ? {...opened, reply: {...opened.reply, pass: stamp}} : opened;
	}
	if (open.role === Role.source && open.bitmap !== undefined) {
		checkBitmapSource(open.path, open.format, open.bitmap); // Refuses a raw SRC with one line.
	}
	if (open.format === undefined && (prepare || open.role === Role.source)) {
		refuseFormatHeader(open.role === Role.source ? 'SRC' : 'DST', open.path);
	}
	if (open.role === Role.source) {
		const source = openSource(open.path, warn);
		const writer = prepare ? sourceInUseWarning(open.path) : undefined;
		if (writer) {
			warn(writer);
		}
		const {dev, ino, rdev, kind} = source.identity;
		const identity = bootId === undefined ? '' : `${bootId}:${dev}:${ino}:${rdev}:${kind}`;
		const reply = {type: 'opened', size: source.image.size, kind: ImageKindCode[source.image.kind], dstExtraBytes: 0, identity} as const;
		return {image: source.image, writable: undefined, reply, source, ...(source.warning ? {warning: source.warning} : {})};
	}
	const plan = planDestination(open.path, open.srcSize, parseIdentity(open.srcIdentity, bootId), options);
	const reply = {type: 'opened', size: open.srcSize, kind: ImageKindCode[plan.kind], dstExtraBytes: plan.extraBytes, identity: ''} as const;
	if (prepare || options.dryRun) {
		// The prepare step takes DST's lock, and its agent holds it (keeps the image open) until the run
		// ends. A writing one names itself in OPENED (lock-holder.ts): each worker then writes through its
		// open file description, which keeps the lock for as long as any of them lives.
		const opened = openDestination(plan, options, prepare, warn);
		if (prepare && !options.dryRun && !plan.exists) {
			// A DST this run created: its directory entry made durable now (the workers' fdatasync covers its data and
			// size, not the entry), so a crash after "in sync" cannot lose it.
			try {
				syncCreatedEntry(plan);
			} catch (error) {
				opened.image.close();
				throw new TransferError(`DST ${open.path}: flushing its directory entry failed: ${describeSystemError(error)}; DST may be lost on a crash`, {cause: error});
			}
		}
		const holder = prepare && !options.dryRun && opened.image instanceof LocalImage && nativeOps() ? holderToken(bootId, opened.image.fd) : '';
		return {image: opened.image, writable: undefined, reply: {...reply, identity: holder, ...(stamp ? {pass: stamp} : {})}, created: !plan.exists};
	}
	if (plan.resizeTo !== undefined) {
		throw new UsageError(`DST ${open.path} is ${plan.size} bytes, not the ${open.srcSize} bytes it was just given; is something else writing it?`);
	}
	if (open.holder) {
		const opened = openOnHolder(open.path, plan.kind, plan.size, parseHolder(open.holder, bootId), warn);
		return {...opened, reply};
	}
	// Without a holder (an agent that names none) each worker opens DST itself: O_EXCL, which the prepare step used, would lock the others out of a device.
	let fd: number;
	try {
		fd = fs.openSync(open.path, fs.constants.O_RDWR);
	} catch (error) {
		throw new UsageError(`DST ${open.path}: ${describeSystemError(error)}`, {cause: error});
	}
	const image = new LocalImage(fd, open.path, plan.kind, plan.size, warn);
	return {image, writable: image, reply};
}

/**
 * A formatted image (qcow2, ...): the preparing agent starts qemu-nbd and names its socket in OPENED's
 * server; each worker connects to the socket its OPEN's holder names (image/formatted-image.ts).
 */
function openServed(open: OpenMessage, format: string, bootId: string | undefined, warn: WarnSink): OpenedRole {
	const {prepare, ...options} = openFlags(open.flags);
	const whole = open.start === 0 && open.end >= open.srcSize;
	if (open.role === Role.source) {
		if (!prepare) {
			const image = openServedWorker('SRC', open.path, serverOf(open, 'SRC'), false, whole, open.bitmap, format);
			return {image, writable: undefined, reply: {type: 'opened', size: image.size, kind: ImageKindCode.block, dstExtraBytes: 0, identity: ''}};
		}
		if (open.qmp) {
			return openVmSource(open, open.qmp, bootId);
		}
		const {source, image, bitmap} = openServedSource(open.path, format, warn, open.bitmap === undefined ? undefined : {name: open.bitmap, dryRun: options.dryRun}, open.locking === 'off');
		const {dev, ino, rdev, kind} = source.identity;
		const identity = bootId === undefined ? '' : `${bootId}:${dev}:${ino}:${rdev}:${kind}`;
		const reply = {type: 'opened', size: image.size, kind: ImageKindCode.block, dstExtraBytes: 0, identity, server: image.socket, ...(bitmap?.record ? {pass: bitmap.record} : {})} as const;
		return {image, writable: undefined, reply, source, served: image, ...(bitmap ? {bitmap} : {}), ...(source.warning ? {warning: source.warning} : {})};
	}
	const reply = {type: 'opened', size: open.srcSize, kind: ImageKindCode.block, dstExtraBytes: 0, identity: ''} as const;
	if (prepare) {
		const prepared = prepareServedDestination(open.path, format, open.srcSize, parseIdentity(open.srcIdentity, bootId), options);
		return {image: prepared.image, writable: undefined, reply: prepared.served ? {...reply, server: prepared.served.socket} : reply};
	}
	if (options.dryRun && !open.holder) {
		return {image: emptyImage(open.path), writable: undefined, reply}; // A missing DST, which a dry run does not create.
	}
	const image = openServedWorker('DST', open.path, serverOf(open, 'DST'), !options.dryRun, whole);
	return {image, writable: options.dryRun ? undefined : image, reply};
}

/** SRC as a disk of its running VM (--qmp): exported by the VM's QEMU for the run, SRC's file never opened. */
function openVmSource(open: OpenMessage, qmp: string, bootId: string | undefined): OpenedRole {
	const {image, bitmap, warning} = openQmpSource(open.path, qmp, open.bitmap === undefined ? undefined : {name: open.bitmap});
	let identity = '';
	try {
		const stat = fs.statSync(open.path);
		identity = bootId === undefined ? '' : `${bootId}:${stat.dev}:${stat.ino}:${stat.rdev}:${stat.isBlockDevice() ? 'block' : 'file'}`;
	} catch {
		// A file name QEMU knows that is no path here (rbd:, iscsi:): nothing for DEST to compare.
	}
	const reply = {type: 'opened', size: image.size, kind: ImageKindCode.block, dstExtraBytes: 0, identity, server: image.socket, ...(bitmap?.record ? {pass: bitmap.record} : {})} as const;
	return {image, writable: undefined, reply, served: image, ...(bitmap ? {bitmap} : {}), ...(warning ? {warning} : {})};
}

function serverOf(open: OpenMessage, role: 'SRC' | 'DST'): string {
	if (!open.holder) {
		throw new UsageError(`${role} ${open.path}: this worker's OPEN names no NBD server for its ${open.format} image`);
	}
	return open.holder;
}

/**
 * The answer to a second prepare OPEN for SOURCE, which the driver sends once every worker's range is done:
 * OPENED as at prepare when SRC (`held`, opened then) is unchanged; throws a TransferError naming SRC otherwise.
 */
export function checkSource(held: OpenedRole): Extract<Message, {type: 'opened'}> {
	const source = held.source;
	if (!source) {
		return held.reply; // An image that is not a local file or device (tests' memory images): nothing to compare.
	}
	const change = sourceChange(source.image.name, source.image.fd, source.version);
	if (change !== undefined) {
		throw new TransferError(sourceChangedMessage(source.image.name), {cause: new Error(change)});
	}
	return held.reply;
}

/** DST's stamp now (bitmap.ts): '' for a DST that does not exist (a dry run's new DST). */
export function stampOf(path: string): string {
	try {
		return dstStamp(fs.statSync(path, {bigint: true}));
	} catch {
		return '';
	}
}

/** OPEN's dropCache flag (the verify phase): the role's range of its image leaves the page cache before it is read. */
export function dropCacheFor(open: OpenMessage, opened: OpenedRole): void {
	if (openFlags(open.flags).dropCache && opened.image instanceof LocalImage && open.end > open.start) {
		opened.image.dropCache(open.start, open.end - open.start);
	}
}

/** This machine's boot id, or undefined where /proc does not tell. */
export function readBootId(): string | undefined {
	try {
		return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
	} catch {
		return undefined;
	}
}

/** SRC's "bootid:dev:ino:rdev:kind" from OPENED; undefined unless SRC is on this very host. */
function parseIdentity(text: string, bootId: string | undefined): SourceIdentity | undefined {
	const match = /^([0-9a-f-]+):(\d+):(\d+):(\d+):(file|block)$/.exec(text);
	if (!match || bootId === undefined || match[1] !== bootId) {
		return undefined;
	}
	return {dev: Number(match[2]), ino: Number(match[3]), rdev: Number(match[4]), kind: match[5] as 'file' | 'block'};
}

/** The ERROR message for a failure: precondition (exit 1) for UsageError, I/O (exit 2) otherwise, naming the path. */
export function errorMessage(error: unknown, path?: string): Extract<Message, {type: 'error'}> {
	if (error instanceof RblocksyncError && error.exitCode === 1) {
		return {type: 'error', kind: ErrorKind.precondition, message: error.message};
	}
	if (error && typeof error === 'object' && 'syscall' in error && 'code' in error) {
		const target = 'path' in error ? String(error.path) : path;
		return {type: 'error', kind: ErrorKind.io, message: `${String(error.syscall)} ${target === undefined ? '' : `${target}: `}${describeSystemError(error)}`};
	}
	return {type: 'error', kind: ErrorKind.io, message: error instanceof Error ? error.message : String(error)};
}
