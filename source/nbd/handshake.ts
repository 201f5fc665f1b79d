// The client's side of the NBD handshake over a connected socket: fixed newstyle, structured replies, the
// metadata contexts, then NBD_OPT_GO with the export name (NBD_OPT_EXPORT_NAME on a server without GO).
import type net from 'node:net';
import {decodeInfo, decodeMetaContext, HandshakeDecoder, type HandshakeMessage} from './handshake-codec.js';
import {BASE_ALLOCATION, encodeClientFlags, encodeExportName, encodeGo, encodeMetaContext, encodeOption, FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, INFO, NbdProtocolError, OPT, optionReplyName, REP} from './protocol.js';

export type NbdConnectOptions = {
	/** Path of the server's Unix socket. */
	readonly socket: string;
	/** Export name; '' is the default export (qemu-nbd's, unless -x). */
	readonly exportName?: string;
	/** Metadata contexts to select (NBD_OPT_SET_META_CONTEXT); default base:allocation. Unknown ones are simply not selected. */
	readonly metaContexts?: readonly string[];
	/** Milliseconds for the connection and the handshake. */
	readonly timeoutMs?: number;
	/** A longer read is split into requests of this size, all in flight together (default READ_REQUEST_BYTES). */
	readonly readRequestBytes?: number;
};

/** What the handshake agreed. `contexts` maps each selected context's name to the server's id for it. */
export type NbdExport = {
	readonly size: number;
	readonly flags: number;
	readonly structuredReplies: boolean;
	readonly contexts: ReadonlyMap<string, number>;
	/** Size constraints (the spec's defaults when the server sends none: 1, 4096, 32 MiB). */
	readonly minimumBlock: number;
	readonly preferredBlock: number;
	readonly maximumPayload: number;
};

/** An error the server returned for one request (the connection stays usable), or a refused option. */
export class NbdError extends Error {
	/** `detail`: the cause without the operation and offset (for callers that name those themselves). */
	constructor(message: string, readonly code: string, readonly detail = message) {
		super(message);
		this.name = 'NbdError';
	}
}

const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;

/** Reads handshake messages off the socket one at a time; stop() hands the socket over to the transmission phase. */
function messageReader(socket: net.Socket, decoder: HandshakeDecoder, path: string): {next(): Promise<HandshakeMessage>; stop(): void} {
	const queue: HandshakeMessage[] = [];
	let waiting: {resolve(message: HandshakeMessage): void; reject(error: Error): void} | undefined;
	let failure: Error | undefined;
	const failWith = (error: Error): void => {
		failure ??= error;
		waiting?.reject(failure);
		waiting = undefined;
	};
	socket.on('data', onData);
	socket.on('error', error => failWith(error instanceof NbdError ? error : new NbdError(`NBD server at ${path}: ${error.message}`, (error as {code?: string}).code ?? 'EIO')));
	socket.once('close', () => failWith(new NbdError('the NBD server closed the connection during the handshake', 'ECONNRESET')));
	function onData(chunk: Buffer): void {
		try {
			queue.push(...decoder.push(chunk));
		} catch (error) {
			failWith(error as Error);
			return;
		}
		if (waiting && queue.length > 0) {
			waiting.resolve(queue.shift()!);
			waiting = undefined;
		}
	}
	const next = (): Promise<HandshakeMessage> => {
		if (queue.length > 0) {
			return Promise.resolve(queue.shift()!);
		}
		if (failure) {
			return Promise.reject(failure);
		}
		return new Promise((resolve, reject) => {
			waiting = {resolve, reject};
		});
	};
	const stop = (): void => {
		socket.off('data', onData);
		socket.removeAllListeners('error');
		socket.removeAllListeners('close');
	};
	return {next, stop};
}

/** Negotiates on `socket`; returns what was agreed and any bytes that came after it. */
export async function handshake(socket: net.Socket, options: NbdConnectOptions): Promise<{info: NbdExport; rest: Buffer}> {
	const exportName = options.exportName ?? '';
	const decoder = new HandshakeDecoder();
	const {next, stop} = messageReader(socket, decoder, options.socket);
	const greeting = await next();
	if (greeting.kind !== 'greeting') {
		throw new NbdProtocolError('expected the NBD greeting');
	}
	if (!(greeting.flags & FLAG_FIXED_NEWSTYLE)) {
		throw new NbdError('the NBD server does not support the fixed newstyle handshake', 'ENOTSUP');
	}
	const noZeroes = (greeting.flags & FLAG_NO_ZEROES) !== 0;
	socket.write(encodeClientFlags(FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0)));

	/** Sends an option; returns its replies up to and including the final one (ACK or an error). */
	const option = async (code: number, bytes: Buffer): Promise<Array<HandshakeMessage & {kind: 'option-reply'}>> => {
		socket.write(bytes);
		const replies: Array<HandshakeMessage & {kind: 'option-reply'}> = [];
		for (;;) {
			const reply = await next();
			if (reply.kind !== 'option-reply' || reply.option !== code) {
				throw new NbdProtocolError(`NBD reply for option ${reply.kind === 'option-reply' ? reply.option : '?'} while waiting for option ${code}`);
			}
			replies.push(reply);
			if (reply.type === REP.ACK || reply.type & 0x80000000) {
				return replies;
			}
		}
	};
	const final = (replies: ReadonlyArray<{type: number; data: Buffer}>): {type: number; data: Buffer} => replies[replies.length - 1]!;
	const refusal = (what: string, reply: {type: number; data: Buffer}): NbdError =>
		new NbdError(`the NBD server refused ${what}: ${optionReplyName(reply.type)}${reply.data.length > 0 ? ` (${reply.data.toString('utf8')})` : ''}`, reply.type === REP.ERR_UNKNOWN ? 'ENOENT' : 'EPROTO');

	const structured = final(await option(OPT.STRUCTURED_REPLY, encodeOption(OPT.STRUCTURED_REPLY))).type === REP.ACK;
	const contexts = new Map<string, number>();
	const queries = options.metaContexts ?? [BASE_ALLOCATION];
	if (structured && queries.length > 0) {
		const replies = await option(OPT.SET_META_CONTEXT, encodeMetaContext(exportName, queries));
		// On an error none is selected, and block status is simply unavailable; NBD_OPT_GO says whether the export is there.
		if (final(replies).type === REP.ACK) {
			for (const reply of replies.slice(0, -1)) {
				if (reply.type === REP.META_CONTEXT) {
					const context = decodeMetaContext(reply.data);
					contexts.set(context.name, context.id);
				}
			}
		}
	}

	const replies = await option(OPT.GO, encodeGo(exportName, [INFO.BLOCK_SIZE]));
	let size: number | undefined;
	let flags = 0;
	let blockSize = {minimum: 1, preferred: 4096, maximum: DEFAULT_MAX_PAYLOAD};
	if (final(replies).type === REP.ACK) {
		for (const reply of replies) {
			const info = reply.type === REP.INFO ? decodeInfo(reply.data) : undefined;
			if (info?.type === 'export') {
				({size, flags} = info.export);
			} else if (info?.type === 'block-size') {
				blockSize = info.blockSize;
			}
		}
		if (size === undefined) {
			throw new NbdProtocolError('NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
		}
	} else if (final(replies).type === REP.ERR_UNSUP) {
		// A server older than NBD_OPT_GO: NBD_OPT_EXPORT_NAME, which has no error reply (the contexts stay: same export name).
		decoder.expectExportReply(noZeroes);
		socket.write(encodeExportName(exportName));
		const reply = await next();
		if (reply.kind !== 'export') {
			throw new NbdProtocolError('expected the reply to NBD_OPT_EXPORT_NAME');
		}
		({size, flags} = reply);
	} else {
		throw refusal(`the export "${exportName}"`, final(replies));
	}
	stop();
	const maximum = Math.min(blockSize.maximum, DEFAULT_MAX_PAYLOAD);
	return {
		info: {
			size, flags, structuredReplies: structured, contexts,
			minimumBlock: blockSize.minimum, preferredBlock: blockSize.preferred,
			// Whole minimum blocks per request.
			maximumPayload: maximum - (maximum % blockSize.minimum),
		},
		rest: decoder.rest(),
	};
}
