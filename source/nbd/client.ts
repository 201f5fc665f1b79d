// An NBD client over a Unix socket (qemu-nbd -k) in the transmission phase: pipelined requests matched to
// their replies by cookie, reads reassembled from structured chunks. Asynchronous; NbdImage bridges it.
import net from 'node:net';
import {handshake, type NbdConnectOptions, NbdError, type NbdExport} from './handshake.js';
import {CMD, CMD_FLAG, encodeOption, encodeRequest, errnoCode, NbdProtocolError, OPT, REPLY_FLAG_DONE, REPLY_TYPE, TFLAG} from './protocol.js';
import {decodeBlockStatus, decodeError, decodeOffsetData, decodeOffsetHole, type Extent, isErrorChunk, type Reply, ReplyDecoder} from './reply-codec.js';

export {type NbdConnectOptions, NbdError, type NbdExport};

/**
 * Reads are split into requests of 256 KiB, in flight together: qemu-nbd then reads the file for some while
 * it sends others. A 4 MiB batch sent as one request read at a third of the speed, 64 KiB requests at about
 * half (bench/nbd-read.mjs, qemu-nbd 7.2, raw file in the page cache); 1 MiB was close to 256 KiB.
 */
export const READ_REQUEST_BYTES = 256 * 1024;

type Pending = {
	readonly type: number;
	readonly offset: number;
	readonly length: number;
	/** READ: where the data goes (holes are zero-filled). */
	readonly target?: Buffer;
	/** READ: content chunks seen, to check that they cover the request exactly. */
	readonly spans?: Array<[number, number]>;
	/** BLOCK_STATUS: extents by context id. */
	readonly extents?: Map<number, Extent[]>;
	error?: NbdError;
	resolve(): void;
	reject(error: Error): void;
};

/** One connection in the transmission phase. */
export class NbdClient {
	private readonly pending = new Map<number, Pending>();
	private nextCookie = 1;
	private failure: Error | undefined;
	private readonly decoder: ReplyDecoder;
	private closed = false;
	private readonly ended: Promise<void>;
	/** Set by disconnect() while replies are in flight. */
	private drained: (() => void) | undefined;

	private readonly readStep: number;

	private constructor(private readonly socket: net.Socket, readonly info: NbdExport, rest: Buffer, readRequestBytes: number) {
		// Whole minimum blocks, at most the maximum payload.
		const step = Math.min(info.maximumPayload, Math.max(readRequestBytes, info.minimumBlock));
		this.readStep = step - (step % info.minimumBlock);
		this.decoder = new ReplyDecoder(cookie => {
			const request = this.pending.get(cookie);
			return request?.type === CMD.READ && !info.structuredReplies ? request.length : 0;
		});
		this.ended = new Promise(resolve => socket.once('close', () => resolve()));
		socket.on('data', chunk => this.receive(chunk));
		socket.on('error', error => this.fail(new NbdError(`NBD connection failed: ${error.message}`, (error as {code?: string}).code ?? 'EIO')));
		socket.on('close', () => this.fail(new NbdError('the NBD server closed the connection', 'ECONNRESET')));
		if (rest.length > 0) {
			this.receive(rest);
		}
	}

	/** Connects and negotiates: fixed newstyle, structured replies, the metadata contexts, then NBD_OPT_GO (EXPORT_NAME on an old server). */
	static async connect(options: NbdConnectOptions): Promise<NbdClient> {
		const socket = net.createConnection({path: options.socket});
		const timer = setTimeout(() => socket.destroy(new NbdError(`NBD handshake with ${options.socket} timed out`, 'ETIMEDOUT')), options.timeoutMs ?? 30_000);
		try {
			const {info, rest} = await handshake(socket, options);
			return new NbdClient(socket, info, rest, options.readRequestBytes ?? READ_REQUEST_BYTES);
		} catch (error) {
			// A refusal ends with NBD_OPT_ABORT (a soft disconnect, as the spec asks); a broken stream with a hard one.
			if (error instanceof NbdError && socket.writable) {
				socket.end(encodeOption(OPT.ABORT));
				setTimeout(() => socket.destroy(), 1000).unref();
			} else {
				socket.destroy();
			}
			throw error;
		} finally {
			clearTimeout(timer);
		}
	}

	/** Fills target[targetOffset, +length) from the export at `offset` (split at the maximum payload, pipelined). */
	async read(offset: number, length: number, target: Buffer, targetOffset = 0): Promise<void> {
		const parts: Array<Promise<void>> = [];
		const step = this.readStep;
		for (let at = 0; at < length; at += step) {
			const size = Math.min(step, length - at);
			const slice = target.subarray(targetOffset + at, targetOffset + at + size);
			parts.push(this.request(CMD.READ, 0, offset + at, size, undefined, {target: slice, spans: []}));
		}
		await settleAll(parts);
	}

	async write(offset: number, data: Buffer): Promise<void> {
		const parts: Array<Promise<void>> = [];
		const step = this.info.maximumPayload;
		for (let at = 0; at < data.length; at += step) {
			const size = Math.min(step, data.length - at);
			parts.push(this.request(CMD.WRITE, 0, offset + at, size, data.subarray(at, at + size)));
		}
		await settleAll(parts);
	}

	/** NBD_CMD_WRITE_ZEROES; `noHole` asks the server to keep the range allocated (NBD_CMD_FLAG_NO_HOLE). */
	async writeZeroes(offset: number, length: number, noHole = false): Promise<void> {
		this.require(TFLAG.SEND_WRITE_ZEROES, 'NBD_CMD_WRITE_ZEROES');
		await this.spread(CMD.WRITE_ZEROES, noHole ? CMD_FLAG.NO_HOLE : 0, offset, length);
	}

	/** NBD_CMD_TRIM: a hint that the range is unused; its content is undefined until written again. */
	async trim(offset: number, length: number): Promise<void> {
		this.require(TFLAG.SEND_TRIM, 'NBD_CMD_TRIM');
		await this.spread(CMD.TRIM, 0, offset, length);
	}

	async flush(): Promise<void> {
		this.require(TFLAG.SEND_FLUSH, 'NBD_CMD_FLUSH');
		await this.request(CMD.FLUSH, 0, 0, 0);
	}

	/**
	 * NBD_CMD_BLOCK_STATUS over [offset, offset+length) (length below 2^32): the extents of each selected
	 * context, by name, from `offset` on; the server may describe less (or a little more) than asked.
	 */
	async blockStatus(offset: number, length: number, reqOne = false): Promise<Map<string, Extent[]>> {
		if (this.info.contexts.size === 0) {
			throw new NbdError('the NBD server selected no metadata context: block status is not available', 'ENOTSUP');
		}
		const extents = new Map<number, Extent[]>();
		await this.request(CMD.BLOCK_STATUS, reqOne ? CMD_FLAG.REQ_ONE : 0, offset, length, undefined, {extents});
		const byName = new Map<string, Extent[]>();
		for (const [name, id] of this.info.contexts) {
			const found = extents.get(id);
			if (!found) {
				throw new NbdProtocolError(`the NBD server's block status has no extents for ${name}`);
			}
			byName.set(name, found);
		}
		return byName;
	}

	/** NBD_CMD_DISC once the replies in flight are in; then the server closes the connection. */
	async disconnect(): Promise<void> {
		if (!this.closed) {
			this.closed = true;
			if (this.pending.size > 0) {
				await new Promise<void>(resolve => {
					this.drained = resolve;
				});
			}
			if (!this.failure) {
				this.socket.end(encodeRequest({type: CMD.DISC, cookie: this.nextCookie++}));
			}
		}
		const timer = setTimeout(() => this.socket.destroy(), 5000);
		await this.ended;
		clearTimeout(timer);
	}

	/** Drops the connection at once (a hard disconnect). */
	destroy(): void {
		this.closed = true;
		this.socket.destroy();
	}

	private require(flag: number, what: string): void {
		if (!(this.info.flags & flag)) {
			throw new NbdError(`the NBD server does not support ${what}`, 'ENOTSUP');
		}
	}

	/** A command without payload over a range of any size: pieces of at most 1 GiB (aligned), in flight together. */
	private async spread(type: number, flags: number, offset: number, length: number): Promise<void> {
		const step = 1024 * 1024 * 1024;
		const parts: Array<Promise<void>> = [];
		for (let at = 0; at < length; at += step) {
			parts.push(this.request(type, flags, offset + at, Math.min(step, length - at)));
		}
		await settleAll(parts);
	}

	private request(type: number, flags: number, offset: number, length: number, data?: Buffer, extra?: Partial<Pick<Pending, 'target' | 'spans' | 'extents'>>): Promise<void> {
		if (this.failure) {
			return Promise.reject(this.failure);
		}
		if (this.closed) {
			return Promise.reject(new NbdError('the NBD connection is closed', 'EBADF'));
		}
		const cookie = this.nextCookie++;
		return new Promise<void>((resolve, reject) => {
			this.pending.set(cookie, {type, offset, length, ...extra, resolve, reject});
			this.socket.write(encodeRequest({type, flags, cookie, offset, length}));
			if (data) {
				this.socket.write(data);
			}
		});
	}

	private receive(chunk: Buffer): void {
		if (this.failure) {
			return;
		}
		try {
			for (const reply of this.decoder.push(chunk)) {
				this.handle(reply);
			}
		} catch (error) {
			// A malformed stream cannot be resynchronised: hard disconnect.
			this.fail(error instanceof Error ? error : new Error(String(error)));
			this.socket.destroy();
		}
	}

	private handle(reply: Reply): void {
		const request = this.pending.get(reply.cookie);
		if (!request) {
			throw new NbdProtocolError(`NBD reply for cookie ${reply.cookie}, which no request in flight has`);
		}
		if (reply.kind === 'simple') {
			if (request.type === CMD.READ && this.info.structuredReplies) {
				throw new NbdProtocolError('a simple reply to NBD_CMD_READ after structured replies were negotiated');
			}
			if (reply.error !== 0) {
				request.error = serverError(reply.error, '', request);
			} else if (reply.data) {
				reply.data.copy(request.target!);
				request.spans?.push([request.offset, request.offset + request.length]);
			}
			this.finish(reply.cookie, request);
			return;
		}
		const {type, payload} = reply;
		if (isErrorChunk(type)) {
			const failure = decodeError(type, payload);
			request.error ??= serverError(failure.error, failure.message, request, failure.offset);
		} else if (type === REPLY_TYPE.OFFSET_DATA && request.type === CMD.READ) {
			const {offset, data} = decodeOffsetData(payload);
			this.place(request, offset, data.length).set(data);
		} else if (type === REPLY_TYPE.OFFSET_HOLE && request.type === CMD.READ) {
			const hole = decodeOffsetHole(payload);
			this.place(request, hole.offset, hole.length).fill(0);
		} else if (type === REPLY_TYPE.BLOCK_STATUS && request.type === CMD.BLOCK_STATUS) {
			const status = decodeBlockStatus(payload);
			if (request.extents!.has(status.contextId) || ![...this.info.contexts.values()].includes(status.contextId)) {
				throw new NbdProtocolError(`NBD block status for context id ${status.contextId}, repeated or never selected`);
			}
			request.extents!.set(status.contextId, status.extents);
		} else if (type !== REPLY_TYPE.NONE || payload.length !== 0) {
			throw new NbdProtocolError(`unexpected NBD reply chunk of type ${type} for command ${request.type}`);
		}
		if (reply.flags & REPLY_FLAG_DONE) {
			if (!request.error && request.type === CMD.READ) {
				checkCoverage(request);
			}
			this.finish(reply.cookie, request);
		} else if (type === REPLY_TYPE.NONE) {
			throw new NbdProtocolError('NBD_REPLY_TYPE_NONE without NBD_REPLY_FLAG_DONE');
		}
	}

	/** The part of a READ's target that a content chunk at `offset` of `length` bytes fills; it must lie inside the request. */
	private place(request: Pending, offset: number, length: number): Buffer {
		if (offset < request.offset || offset + length > request.offset + request.length) {
			throw new NbdProtocolError(`NBD content chunk [${offset}, ${offset + length}) outside the read [${request.offset}, ${request.offset + request.length})`);
		}
		request.spans!.push([offset, offset + length]);
		return request.target!.subarray(offset - request.offset, offset - request.offset + length);
	}

	private finish(cookie: number, request: Pending): void {
		this.pending.delete(cookie);
		if (request.error) {
			request.reject(request.error);
			if (request.error.code === 'ESHUTDOWN') {
				// The server is shutting down: the spec asks for a soft disconnect once the replies in flight are in.
				void this.disconnect();
			}
		} else {
			request.resolve();
		}
		if (this.pending.size === 0) {
			this.drained?.();
		}
	}

	private fail(error: Error): void {
		if (this.failure) {
			return;
		}
		this.failure = error;
		for (const [cookie, request] of this.pending) {
			this.pending.delete(cookie);
			request.reject(error);
		}
		this.drained?.();
	}
}

/** A successful READ's content chunks cover it exactly once. */
function checkCoverage(request: Pending): void {
	const spans = request.spans!.sort((a, b) => a[0] - b[0]);
	let at = request.offset;
	for (const [start, end] of spans) {
		if (start !== at) {
			throw new NbdProtocolError(start < at ? `overlapping NBD content chunks at offset ${start}` : `NBD read reply with no content for [${at}, ${start})`);
		}
		at = end;
	}
	if (at !== request.offset + request.length) {
		throw new NbdProtocolError(`NBD read reply with no content for [${at}, ${request.offset + request.length})`);
	}
}

const COMMAND_NAMES: Record<number, string> = {0: 'read', 1: 'write', 3: 'flush', 4: 'trim', 6: 'write zeroes', 7: 'block status'};

function serverError(error: number, message: string, request: Pending, offset?: number): NbdError {
	const code = errnoCode(error);
	const where = request.type === CMD.FLUSH ? '' : ` at offset ${offset ?? request.offset}`;
	const detail = `${code}${message ? ` (${message})` : ''}`;
	return new NbdError(`NBD ${COMMAND_NAMES[request.type] ?? `command ${request.type}`}${where}: ${detail}`, code, detail);
}

/** Waits for every part (so none is left in flight), then throws the first failure. */
async function settleAll(parts: ReadonlyArray<Promise<void>>): Promise<void> {
	const results = await Promise.allSettled(parts);
	const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
	if (failed) {
		throw failed.reason;
	}
}

