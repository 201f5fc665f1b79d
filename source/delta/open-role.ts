// Opens the image an OPEN message names, with the local engine's precondition checks, on whichever host runs the role.
import fs from 'node:fs';
import {describeSystemError, RblocksyncError, UsageError} from '../errors.js';
import {openDestination, openSource, planDestination, type SourceIdentity} from '../image/preflight.js';
import {LocalImage, type WarnSink} from '../image/local-image.js';
import type {Image, WritableImage} from '../image/image.js';
import {ErrorKind, ImageKindCode, type Message, openFlags, Role} from '../protocol/messages.js';

type OpenMessage = Extract<Message, {type: 'open'}>;

export type OpenedRole = {
	readonly image: Image;
	readonly writable: WritableImage | undefined;
	readonly reply: Extract<Message, {type: 'opened'}>;
	readonly warning?: string;
};

/** What a role knows of the host it runs on, read once per agent. */
export type RoleHost = {
	/** This machine's boot id: tells whether SRC and DST agents run on the same host, whatever the aliases. */
	readonly bootId: string | undefined;
	/** Where the images' warnings go (a WARN frame). */
	readonly warn: WarnSink;
};

/** Runs the checks and opens the image; `prepare` also creates/resizes DST and closes it. Throws UsageError on refusal. */
export function openRole(open: OpenMessage, host: RoleHost): OpenedRole | undefined {
	const {prepare, ...options} = openFlags(open.flags);
	const {bootId, warn} = host;
	if (open.role === Role.source) {
		const source = openSource(open.path, warn);
		const {dev, ino, rdev, kind} = source.identity;
		const identity = bootId === undefined ? '' : `${bootId}:${dev}:${ino}:${rdev}:${kind}`;
		const reply = {type: 'opened', size: source.image.size, kind: ImageKindCode[source.image.kind], dstExtraBytes: 0, identity} as const;
		return {image: source.image, writable: undefined, reply, ...(source.warning ? {warning: source.warning} : {})};
	}
	const plan = planDestination(open.path, open.srcSize, parseIdentity(open.srcIdentity, bootId), options);
	const reply = {type: 'opened', size: open.srcSize, kind: ImageKindCode[plan.kind], dstExtraBytes: plan.extraBytes, identity: ''} as const;
	if (prepare || options.dryRun) {
		// The prepare step takes DST's lock, and its agent holds it (keeps the image open) until the run
		// ends; the workers' own opens do not lock, as the local engine's threads do not.
		const opened = openDestination(plan, options, prepare, warn);
		return {image: opened.image, writable: undefined, reply};
	}
	if (plan.resizeTo !== undefined) {
		throw new UsageError(`DST ${open.path} is ${plan.size} bytes, not the ${open.srcSize} bytes it was just given; is something else writing it?`);
	}
	// Each worker opens DST itself: O_EXCL, which the prepare step used, would lock the others out of a device.
	let fd: number;
	try {
		fd = fs.openSync(open.path, fs.constants.O_RDWR);
	} catch (error) {
		throw new UsageError(`DST ${open.path}: ${describeSystemError(error)}`, {cause: error});
	}
	const image = new LocalImage(fd, open.path, plan.kind, plan.size, warn);
	return {image, writable: image, reply};
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
