// A QMP session run to its end from synchronous code (the agent's OPEN, an image's close()): the asynchronous
// client (qmp/client.ts) on a short-lived thread of the NBD worker's module, the caller in Atomics.wait.
import {MessageChannel, receiveMessageOnPort, Worker} from 'node:worker_threads';
import {type Answer, SIGNAL} from './nbd-thread.js';
import {BOOTSTRAP, workerUrl} from './nbd-image.js';
import type {QmpCommand, QmpResult} from '../qmp/client.js';

export type {QmpCommand, QmpResult};

/** A session that failed as a whole (no monitor, no answer, not QEMU); `code` as the client's (ENOENT, ECONNREFUSED, ETIMEDOUT...). */
export class QmpSessionError extends Error {
	constructor(message: string, readonly code: string | undefined) {
		super(message);
	}
}

/** Runs `commands` in one session on `socket`; one result per command run (it stops at the first error unless keepGoing). */
export function qmpRun(socket: string, commands: readonly QmpCommand[], options: {timeoutMs?: number; keepGoing?: boolean} = {}): QmpResult[] {
	const timeoutMs = options.timeoutMs ?? 30_000;
	const signal = new Int32Array(new SharedArrayBuffer(4));
	const channel = new MessageChannel();
	const url = workerUrl();
	const tsx = url.pathname.endsWith('.ts') ? (import.meta as unknown as {resolve(specifier: string): string}).resolve('tsx/esm/api') : undefined;
	const worker = new Worker(BOOTSTRAP, {eval: true, workerData: {url: url.href, tsx, port: channel.port2, signal: signal.buffer}, transferList: [channel.port2]});
	worker.unref();
	channel.port1.unref();
	try {
		channel.port1.postMessage({op: 'qmp', socket, commands, timeoutMs, keepGoing: options.keepGoing ?? false});
		// The session bounds itself (timeoutMs); the margin covers the thread's start.
		const deadline = Date.now() + timeoutMs + 10_000;
		while (Atomics.load(signal, SIGNAL) === 0) {
			if (Atomics.wait(signal, SIGNAL, 0, Math.max(1, deadline - Date.now())) === 'timed-out' && Date.now() >= deadline) {
				throw new QmpSessionError(`the QEMU monitor at ${socket} did not answer within ${Math.round(timeoutMs / 1000)} s`, 'ETIMEDOUT');
			}
		}
		const answer = receiveMessageOnPort(channel.port1)?.message as Answer | undefined;
		if (!answer) {
			throw new QmpSessionError('the QMP thread answered nothing', 'EIO');
		}
		if (!answer.ok) {
			throw new QmpSessionError(answer.message, answer.code);
		}
		return answer.results ?? [];
	} finally {
		channel.port1.close();
		void worker.terminate();
	}
}
