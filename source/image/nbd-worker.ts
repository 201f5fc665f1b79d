// The NBD worker thread of one NbdImage: runs the asynchronous NbdClient and serves the image's
// operations one at a time, in whole minimum blocks of the export (read-modify-write at unaligned edges).
// The same module runs a synchronous QMP session's thread (qmp-session.ts): one file for the agent bundle.
import {type MessagePort, workerData} from 'node:worker_threads';
import {NbdClient, NbdError} from '../nbd/client.js';
import {TFLAG} from '../nbd/protocol.js';
import {qmpSession} from '../qmp/client.js';
import type {Answer, Operation, Span} from './nbd-thread.js';
import {SIGNAL} from './nbd-thread.js';

const {port, signal: signalBuffer} = workerData as {port: MessagePort; signal: SharedArrayBuffer};
const signal = new Int32Array(signalBuffer);
let client: NbdClient | undefined;
let data: Buffer = Buffer.alloc(0);

function answer(result: Answer): void {
	port.postMessage(result);
	Atomics.store(signal, SIGNAL, 1);
	Atomics.notify(signal, SIGNAL);
}

port.on('message', (operation: Operation) => {
	serve(operation).then(answer, (error: unknown) => {
		const failure = error as {message?: string; code?: string; detail?: string} | undefined;
		answer({ok: false, message: failure?.detail ?? failure?.message ?? String(error), code: failure?.code});
	});
});

// Nothing may leave the caller waiting: an exception outside an operation still answers.
process.on('uncaughtException', error => answer({ok: false, message: `NBD worker thread: ${error.message}`, code: 'EIO'}));

async function serve(operation: Operation): Promise<Answer> {
	if (operation.op === 'open') {
		client = await NbdClient.connect({socket: operation.socket, exportName: operation.exportName, metaContexts: operation.metaContexts, timeoutMs: operation.timeoutMs, readRequestBytes: operation.readRequestBytes});
		return {ok: true, info: client.info};
	}
	if (operation.op === 'qmp') {
		return {ok: true, results: await qmpSession(operation.socket, operation.commands, {timeoutMs: operation.timeoutMs, keepGoing: operation.keepGoing})};
	}
	if (!client) {
		throw new NbdError('the NBD connection is not open', 'EBADF');
	}
	const nbd = client;
	switch (operation.op) {
		case 'read':
		case 'write':
			if (operation.op === 'read' && 'pieces' in operation) {
				await readPieces(nbd, operation.pieces, Buffer.from(operation.into) as unknown as Buffer);
				return {ok: true};
			}
			if (operation.data) {
				data = Buffer.from(operation.data) as unknown as Buffer;
			}
			await (operation.op === 'read' ? readAligned(nbd, operation.position, data.subarray(0, operation.length)) : writeAligned(nbd, operation.position, data.subarray(0, operation.length)));
			return {ok: true};
		case 'zero':
			await zeroAligned(nbd, operation.position, operation.length, operation.noHole);
			return {ok: true};
		case 'trim': {
			const start = alignUp(operation.position, nbd.info.minimumBlock);
			const end = alignDown(operation.position + operation.length, nbd.info.minimumBlock);
			if (end > start) {
				await nbd.trim(start, end - start);
			}
			return {ok: true};
		}
		case 'flush':
			if (nbd.info.flags & TFLAG.SEND_FLUSH) {
				await nbd.flush();
			}
			return {ok: true};
		case 'extents':
			return {ok: true, spans: await extents(nbd, operation.start, operation.end, operation.context)};
		case 'close':
			client = undefined;
			await nbd.disconnect();
			setImmediate(() => port.close());
			return {ok: true};
	}
}

function alignDown(value: number, unit: number): number {
	return value - (value % unit);
}

function alignUp(value: number, unit: number): number {
	return alignDown(value + unit - 1, unit);
}

async function readAligned(nbd: NbdClient, position: number, target: Buffer): Promise<void> {
	const unit = nbd.info.minimumBlock;
	const start = alignDown(position, unit);
	const end = alignUp(position + target.length, unit);
	if (start === position && end === position + target.length) {
		await nbd.read(position, target.length, target);
		return;
	}
	const whole = Buffer.allocUnsafe(end - start);
	await nbd.read(start, whole.length, whole);
	whole.copy(target, 0, position - start, position - start + target.length);
}

/** [position, length, ...] of the export, one after another into `target`, every piece's requests in flight together. */
async function readPieces(nbd: NbdClient, pieces: readonly number[], target: Buffer): Promise<void> {
	const reads: Array<Promise<void>> = [];
	for (let piece = 0, at = 0; piece < pieces.length; piece += 2) {
		const length = pieces[piece + 1]!;
		reads.push(readAligned(nbd, pieces[piece]!, target.subarray(at, at + length)));
		at += length;
	}
	const results = await Promise.allSettled(reads);
	const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
	if (failed) {
		throw failed.reason;
	}
}

async function writeAligned(nbd: NbdClient, position: number, bytes: Buffer): Promise<void> {
	const unit = nbd.info.minimumBlock;
	const start = alignDown(position, unit);
	const end = alignUp(position + bytes.length, unit);
	if (start === position && end === position + bytes.length) {
		await nbd.write(position, bytes);
		return;
	}
	// Read-modify-write of the partial first and last blocks.
	const whole = Buffer.alloc(end - start);
	await nbd.read(start, unit, whole);
	if (end - unit > start) {
		await nbd.read(end - unit, unit, whole, whole.length - unit);
	}
	bytes.copy(whole, position - start);
	await nbd.write(start, whole);
}

async function zeroAligned(nbd: NbdClient, position: number, length: number, noHole: boolean): Promise<void> {
	const unit = nbd.info.minimumBlock;
	const end = position + length;
	const innerStart = Math.min(end, alignUp(position, unit));
	const innerEnd = Math.max(innerStart, alignDown(end, unit));
	if (innerEnd > innerStart) {
		if (nbd.info.flags & TFLAG.SEND_WRITE_ZEROES) {
			await nbd.writeZeroes(innerStart, innerEnd - innerStart, noHole);
		} else {
			// No NBD_CMD_WRITE_ZEROES: zeros are written (TRIM would leave the content undefined).
			const zeros = Buffer.alloc(Math.min(innerEnd - innerStart, 4 * 1024 * 1024));
			for (let at = innerStart; at < innerEnd; at += zeros.length) {
				await nbd.write(at, zeros.subarray(0, Math.min(zeros.length, innerEnd - at)));
			}
		}
	}
	if (innerStart > position) {
		await writeAligned(nbd, position, Buffer.alloc(innerStart - position));
	}
	if (end > innerEnd) {
		await writeAligned(nbd, innerEnd, Buffer.alloc(end - innerEnd));
	}
}

/** Largest block status query (the length field is 32 bits): 2 GiB. */
const STATUS_STEP = 2 ** 31;

/** The extents of `context` covering [start, end) exactly, adjacent ones with the same flags merged. */
async function extents(nbd: NbdClient, start: number, end: number, context: string): Promise<Span[]> {
	if (!nbd.info.contexts.has(context)) {
		throw new NbdError(`the NBD server did not select the metadata context ${context}`, 'ENOTSUP');
	}
	const unit = nbd.info.minimumBlock;
	const stop = Math.min(end, nbd.info.size);
	const spans: Span[] = [];
	let at = alignDown(start, unit);
	while (at < stop) {
		const length = Math.min(STATUS_STEP, alignUp(stop, unit) - at, nbd.info.size - at);
		const found = (await nbd.blockStatus(at, length)).get(context)!;
		for (const extent of found) {
			const from = Math.max(at, start);
			const to = Math.min(at + extent.length, stop);
			if (to > from) {
				const last = spans[spans.length - 1];
				if (last && last.end === from && last.flags === extent.flags) {
					last.end = to;
				} else {
					spans.push({start: from, end: to, flags: extent.flags});
				}
			}
			at += extent.length;
			if (at >= stop) {
				break;
			}
		}
	}
	return spans;
}
