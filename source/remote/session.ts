// Drives links: the handshake and OPEN on one link, and the relay of one worker's session between SOURCE and DEST.
import {LinkDownError, LinkLostError, TransferError, UsageError} from '../errors.js';
import type {Counters} from '../engine/progress.js';
import {type Frame, ProtocolError} from '../protocol/frame.js';
import {baseCounters, Capability, countersFromTuple, decode, encode, ErrorKind, frameName, type Message, PROTOCOL_VERSION, sessionFrameAllowed, TYPE_CODE} from '../protocol/messages.js';
import {helloMessage, versionMismatch} from '../agent/agent-core.js';
import {seconds} from './bounds.js';
import {StallWatch} from './stall-watch.js';
import {PacedSender, type Pacer} from './pacer.js';

import type {Link} from './link.js';

type Opened = Extract<Message, {type: 'opened'}>;

/** "ssh pve: " for remote links, "" for local ones. */
export function prefixOf(link: Link): string {
	return link.remote ? `ssh ${link.label}: ` : '';
}

/** What a WARN frame's line starts with: its host for an agent over SSH, nothing on this host (as the local engine words it). */
function warningOf(link: Link, message: string): string {
	return link.remote ? `${link.label}: ${message}` : message;
}

/** The error for an ERROR frame: exit 1 for preconditions, exit 2 (DST may be partially updated) otherwise. */
export function linkError(link: Link, message: Extract<Message, {type: 'error'}>, dstTouched: boolean): Error {
	if (message.kind === ErrorKind.precondition) {
		return new UsageError(`${prefixOf(link)}${message.message}`);
	}
	return new TransferError(`${prefixOf(link)}${message.message}${dstTouched ? '; DST may be partially updated' : ''}`);
}

/** The error for a role that broke the session rules (doc/protocol.md), named by its link: exit 2. */
export function protocolError(link: Link, what: string): Error {
	return new TransferError(`${prefixOf(link)}protocol error: ${what}; DST may be partially updated`);
}

/** Frames (and the end) that arrived after OPENED, before the relay took the link over. */
export type Held = {frames: Frame[]; closed: boolean; reason: string | undefined};

function hold(link: Link): Held {
	const held: Held = {frames: [], closed: false, reason: undefined};
	link.onFrame = frame => held.frames.push(frame);
	link.onClose = reason => {
		held.closed = true;
		held.reason = reason;
	};
	return held;
}

/**
 * Sends HELLO (once per link) and OPEN at once, without waiting for the agent's HELLO in between (the agent reads them
 * in order; one that refuses our HELLO answers ERROR and ignores the OPEN), and waits for HELLO and OPENED. Returns the agent's capabilities, the reply, and what came after it.
 * An agent that answers neither within `replyMs` (a stopped process, a program that only reads) fails it, the link closed.
 */
/** `before`: a frame to send ahead of OPEN, given the agent's HELLO capabilities (undefined: none). */
/** `hello`: the driver's HELLO (without Capability.checkpoints under --retries 0). */
export async function openLink(link: Link, open: Message, warn: (message: string) => void, replyMs = Number.POSITIVE_INFINITY, before?: (caps: number) => Message | undefined, hello: Message = helloMessage()): Promise<{caps: number; opened: Opened; held: Held; cache?: string; cacheBytesRead?: number}> {
	return new Promise((resolve, reject) => {
		let caps = link.greeted ?? 0;
		/** DEST's CACHE frame before OPENED (only when OPEN asked for the cache). */
		let cache: string | undefined;
		let cacheBytesRead = 0;
		let step: 'hello' | 'opened' = link.greeted === undefined ? 'hello' : 'opened';
		let timer: ReturnType<typeof setTimeout> | undefined;
		const wait = (): void => {
			clearTimeout(timer);
			if (Number.isFinite(replyMs)) {
				timer = setTimeout(() => fail(new UsageError(`${prefixOf(link)}the agent did not answer ${step === 'hello' ? 'HELLO' : 'OPEN'} within ${seconds(replyMs)}`)), replyMs);
			}
		};
		const fail = (error: Error): void => {
			clearTimeout(timer);
			link.onFrame = () => {};
			link.onClose = () => {};
			link.close();
			reject(error);
		};
		link.onFrame = frame => {
			let message: Message;
			try {
				message = decode(frame);
			} catch (error) {
				fail(new TransferError(`${prefixOf(link)}protocol error: ${error instanceof ProtocolError ? error.message : String(error)}`));
				return;
			}
			if (message.type === 'warn') {
				warn(warningOf(link, message.message));
			} else if (message.type === 'error') {
				fail(linkError(link, message, false));
			} else if (step === 'hello' && message.type === 'hello') {
				if (message.protocol !== PROTOCOL_VERSION) {
					fail(new UsageError(`${prefixOf(link)}${versionMismatch(message)}`));
					return;
				}
				caps = message.caps;
				link.greeted = caps;
				step = 'opened';
				wait();
				sendOpen();
			} else if (step === 'opened' && message.type === 'cache') {
				cache = message.status;
				cacheBytesRead = message.bytesRead ?? 0;
			} else if (step === 'opened' && message.type === 'opened') {
				clearTimeout(timer);
				resolve({caps, opened: message, held: hold(link), ...(cache === undefined ? {} : {cache}), ...(cacheBytesRead > 0 ? {cacheBytesRead} : {})});
			} else {
				fail(new TransferError(`${prefixOf(link)}protocol error: unexpected ${message.type} before OPENED`));
			}
		};
		let openSent = false;
		const sendOpen = (): void => {
			if (openSent) {
				return;
			}
			openSent = true;
			const first = before?.(caps);
			if (first) {
				link.send(encode(first));
			}
			link.send(encode(open));
		};
		link.onClose = reason => fail(link.failure ?? new LinkDownError(`${prefixOf(link)}the agent ended before the session opened${reason ? `: ${reason}` : ''}`));
		if (link.ended) {
			// It ended before anyone listened (its agent could not be started).
			link.onClose(link.endReason);
			return;
		}
		wait();
		if (step === 'hello') {
			link.send(encode(hello));
			// OPEN goes at once unless a frame before it depends on the agent's HELLO (sent when it arrives).
			if (!before) {
				sendOpen();
			}
		} else {
			sendOpen();
		}
	});
}

/** Whether HELLO said the agent sends and reads the read counters (STATS from SOURCE, ten counters in STATS and DONE). */
export function countsReads(caps: number): boolean {
	return (caps & Capability.readCounters) !== 0;
}

/** Whether HELLO said the agent can punch holes. */
export function canPunch(caps: number): boolean {
	return (caps & Capability.holes) !== 0;
}

export type SessionHooks = {
	/** DEST's running counters (STATS) with SOURCE's srcBytesRead, at most ~10 times a second each. */
	stats(counters: Counters): void;
	warn(message: string): void;
	/** Aborts the session: both links are closed and the promise rejects with this error. */
	readonly signal?: AbortSignal;
	/** Neither role sending a frame for this long fails the session, naming the role that holds it (StallWatch). */
	readonly stallMs?: number;
	/** --bwlimit: SOURCE's frames reach DEST at the run's one rate (absent: at once). */
	readonly pacer?: Pacer;
	/** Adds up SOURCE's data runs going by: their bytes (raw) and their frames' payloads (wire), for the compression ratio. */
	readonly dataBytes?: {raw: number; wire: number};
	/** DEST's CHECKPOINT: [start, offset) is on DST's disk (--retries resumes there); an error refuses it (a protocol error). */
	readonly checkpoint?: (offset: number) => string | undefined;
};

/** Relays one opened session until DEST's DONE; resolves with DEST's final counters and SOURCE's srcBytesRead. */
export async function relaySession(source: Link, dest: Link, held: {source: Held; dest: Held}, hooks: SessionHooks, abortError: () => Error): Promise<Counters> {
	return new Promise((resolve, reject) => {
		let done = false;
		let settled = false;
		const paced = hooks.pacer ? new PacedSender(hooks.pacer, dest, source) : undefined;
		const toDest = (bytes: Buffer): void => (paced ? paced.send(bytes) : dest.send(bytes));
		const settle = (error: Error | undefined, counters?: Counters): void => {
			if (settled) {
				return;
			}
			settled = true;
			watch?.stop();
			paced?.stop();
			hooks.signal?.removeEventListener('abort', onAbort);
			if (error) {
				source.close();
				dest.close();
				reject(error);
			} else {
				resolve(counters!);
			}
		};
		const onAbort = (): void => settle(abortError());
		hooks.signal?.addEventListener('abort', onAbort);
		const watch = hooks.stallMs === undefined ? undefined : new StallWatch(hooks.stallMs, peer => {
			const link = peer === 'SOURCE' ? source : dest;
			settle(new TransferError(`${prefixOf(link)}${peer} sent nothing for ${seconds(hooks.stallMs!)}; DST may be partially updated`));
		});
		// The relay's own rules: each role sends only its direction's frames, and DEST's DONE follows SOURCE's SOURCE_END.
		let sourceEnded = false;
		/** SOURCE's last STATS (srcBytesRead) and DEST's last counters, reported together. */
		let srcBytesRead = 0;
		let latest = countersFromTuple([]);
		const refused = (from: Link, role: 'source' | 'dest', frame: {type: number}): boolean => {
			if (!sessionFrameAllowed(role, frame.type)) {
				const name = frameName(frame.type);
				const what = name === undefined ? `unknown frame type 0x${frame.type.toString(16).padStart(2, '0')}` : `unexpected ${name} frame`;
				settle(protocolError(from, `${what} from ${role === 'source' ? 'SOURCE' : 'DEST'}`));
				return true;
			}
			if (frame.type === TYPE_CODE.sourceEnd) {
				sourceEnded = true;
			} else if (frame.type === TYPE_CODE.done && !sourceEnded) {
				settle(protocolError(from, 'DONE before SOURCE_END'));
				return true;
			}
			return false;
		};
		const intercept = (from: Link, frame: {type: number; payload: Buffer}): Message | undefined => {
			// Only driver-addressed frames are decoded here; the rest are forwarded as they are.
			if (frame.type !== TYPE_CODE.error && frame.type !== TYPE_CODE.warn && frame.type !== TYPE_CODE.stats && frame.type !== TYPE_CODE.done && frame.type !== TYPE_CODE.checkpoint) {
				return undefined;
			}
			try {
				return decode(frame);
			} catch (error) {
				settle(new TransferError(`${prefixOf(from)}protocol error: ${error instanceof Error ? error.message : String(error)}; DST may be partially updated`));
				return undefined;
			}
		};
		source.onFrame = frame => {
			watch?.saw('SOURCE', frame);
			if (refused(source, 'source', frame)) {
				return;
			}
			const message = intercept(source, frame);
			if (message?.type === 'warn') {
				hooks.warn(warningOf(source, message.message));
			} else if (message?.type === 'error') {
				settle(message.kind === ErrorKind.protocol ? protocolError(dest, message.message) : linkError(source, message, true));
			} else if (message?.type === 'stats') {
				// SOURCE's reads, for the driver only (sent when HELLO said the driver counts reads).
				srcBytesRead = countersFromTuple(message.counters).srcBytesRead;
				hooks.stats({...latest, srcBytesRead});
			} else if (!settled) {
				const counted = hooks.dataBytes;
				if (counted && frame.type === TYPE_CODE.data) {
					counted.raw += frame.payload.length - 8;
					counted.wire += frame.payload.length - 8;
				} else if (counted && (frame.type === TYPE_CODE.dataz || frame.type === TYPE_CODE.datazs) && frame.payload.length >= 12) {
					counted.raw += frame.payload.readUInt32BE(8);
					counted.wire += frame.payload.length - 12;
				}
				toDest(frameBytes(frame));
			}
		};
		dest.onFrame = frame => {
			watch?.saw('DEST', frame);
			if (refused(dest, 'dest', frame)) {
				return;
			}
			const message = intercept(dest, frame);
			if (message?.type === 'warn') {
				hooks.warn(warningOf(dest, message.message));
			} else if (message?.type === 'error') {
				settle(message.kind === ErrorKind.protocol ? protocolError(source, message.message) : linkError(dest, message, true));
			} else if (message?.type === 'stats') {
				latest = countersFromTuple(message.counters);
				hooks.stats({...latest, srcBytesRead});
			} else if (message?.type === 'checkpoint') {
				// For the driver only, never forwarded (SOURCE refuses it).
				const problem = hooks.checkpoint?.(message.offset);
				if (problem !== undefined) {
					settle(protocolError(dest, problem));
				}
			} else if (message?.type === 'done') {
				done = true;
				const counters = {...countersFromTuple(message.counters), srcBytesRead};
				hooks.stats(counters);
				// A SOURCE that does not count reads decodes DONE's eight counters only.
				source.send(message.counters.length > 8 && !countsReads(source.greeted ?? 0) ? encode({type: 'done', counters: baseCounters(message.counters)}) : frameBytes(frame));
				settle(undefined, counters);
			} else if (!settled) {
				source.send(frameBytes(frame));
			}
		};
		const closed = (link: Link) => (reason: string | undefined): void => {
			if (!done) {
				settle(reason?.startsWith('protocol error: ')
					? protocolError(link, reason.slice('protocol error: '.length))
					: new LinkLostError(`${prefixOf(link)}${reason ?? 'the connection closed'} before the sync finished; DST may be partially updated`));
			}
		};
		source.onClose = closed(source);
		dest.onClose = closed(dest);
		for (const [link, kept] of [[source, held.source], [dest, held.dest]] as const) {
			kept.frames.forEach(frame => link.onFrame(frame));
			if (kept.closed) {
				link.onClose(kept.reason);
			}
		}
	});
}

function frameBytes(frame: {type: number; payload: Buffer; bytes?: Buffer}): Buffer {
	if (frame.bytes) {
		return frame.bytes;
	}
	const bytes = Buffer.allocUnsafe(5 + frame.payload.length);
	bytes.writeUInt32BE(frame.payload.length + 1, 0);
	bytes.writeUInt8(frame.type, 4);
	frame.payload.copy(bytes, 5);
	return bytes;
}
