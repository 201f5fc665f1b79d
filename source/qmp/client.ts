// A QMP session over QEMU's monitor socket: connect, greeting, qmp_capabilities, the commands in order, then
// disconnect. Short by design: the socket is shared (Proxmox's own tools use it, and a monitor serves one
// client at a time, so a second client waits in the listen queue until the first leaves).
import net from 'node:net';
import {encodeCommand, type QmpCommand, QmpDecoder, type QmpMessage, QmpProtocolError, type QmpResult, resultOf} from './codec.js';

export {type QmpCommand, type QmpResult};

/** A session that could not be held: no monitor there, none answering in time, or a peer that is not QEMU. */
export class QmpError extends Error {
	constructor(message: string, readonly code: string) {
		super(message);
	}
}

export type QmpSessionOptions = {
	/** Longest wait for the whole session, greeting included (a busy monitor greets once its client leaves); default 30 s. */
	readonly timeoutMs?: number;
	/** Run the commands after a failed one too; default false: the session stops at the first error. */
	readonly keepGoing?: boolean;
};

/** How long a connect that finds the listen queue full (EAGAIN) is retried: the client before us is about to leave. */
const BUSY_RETRY_MS = 5000;

/** Runs `commands` in one session; resolves with one result per command run (fewer when one failed and !keepGoing). */
export async function qmpSession(socketPath: string, commands: readonly QmpCommand[], options: QmpSessionOptions = {}): Promise<QmpResult[]> {
	const timeoutMs = options.timeoutMs ?? 30_000;
	const deadline = Date.now() + timeoutMs;
	const socket = await connect(socketPath, Math.min(deadline, Date.now() + BUSY_RETRY_MS));
	try {
		return await converse(socket, socketPath, commands, options.keepGoing ?? false, deadline - Date.now());
	} finally {
		socket.destroy();
	}
}

async function connect(socketPath: string, retryUntil: number): Promise<net.Socket> {
	for (;;) {
		try {
			return await new Promise<net.Socket>((resolve, reject) => {
				const socket = net.createConnection(socketPath);
				socket.once('connect', () => {
					socket.removeListener('error', reject);
					resolve(socket);
				});
				socket.once('error', reject);
			});
		} catch (error) {
			const code = (error as {code?: string}).code ?? 'EIO';
			if (code === 'EAGAIN' && Date.now() < retryUntil) {
				await new Promise(resolve => setTimeout(resolve, 50));
				continue;
			}
			throw new QmpError(connectFailure(socketPath, code, (error as Error).message), code);
		}
	}
}

function connectFailure(socketPath: string, code: string, message: string): string {
	switch (code) {
		case 'ENOENT':
			return `no QEMU monitor socket at ${socketPath} (is the VM running?)`;
		case 'ECONNREFUSED':
			return `no QEMU listens on ${socketPath} (the VM is not running?)`;
		case 'EACCES':
			return `cannot connect to ${socketPath}: permission denied`;
		case 'EAGAIN':
			return `the QEMU monitor at ${socketPath} is busy (its listen queue is full)`;
		default:
			return `cannot connect to ${socketPath}: ${message}`;
	}
}

function converse(socket: net.Socket, socketPath: string, commands: readonly QmpCommand[], keepGoing: boolean, timeoutMs: number): Promise<QmpResult[]> {
	return new Promise((resolve, reject) => {
		const decoder = new QmpDecoder();
		const results: QmpResult[] = [];
		let greeted = false;
		/** The id of the command in flight: 0 is qmp_capabilities, n the nth command. */
		let inFlight = -1;
		const fail = (error: QmpError): void => {
			clearTimeout(timer);
			socket.destroy();
			reject(error);
		};
		const timer = setTimeout(() => fail(new QmpError(greeted
			? `the QEMU monitor at ${socketPath} did not answer within ${Math.round(timeoutMs / 1000)} s`
			: `the QEMU monitor at ${socketPath} did not greet within ${Math.round(timeoutMs / 1000)} s (another client holds it?)`, 'ETIMEDOUT')), Math.max(1, timeoutMs));
		const next = (): void => {
			inFlight += 1;
			if (inFlight > commands.length) {
				clearTimeout(timer);
				socket.end();
				resolve(results);
				return;
			}
			const command = inFlight === 0 ? {execute: 'qmp_capabilities'} : commands[inFlight - 1]!;
			socket.write(encodeCommand(command, inFlight));
		};
		const handle = (message: QmpMessage): void => {
			if (message.kind === 'event') {
				return; // Events come whenever QEMU has one; no command here waits for one.
			}
			if (message.kind === 'greeting') {
				if (greeted) {
					throw new QmpProtocolError('a second greeting');
				}
				greeted = true;
				next();
				return;
			}
			if (message.id !== inFlight) {
				throw new QmpProtocolError(`an answer to id ${JSON.stringify(message.id)} while ${inFlight} was asked`);
			}
			const result = resultOf(message);
			if (inFlight === 0) {
				if (!result.ok) {
					throw new QmpProtocolError(`qmp_capabilities: ${result.desc}`);
				}
			} else {
				results.push(result);
				if (!result.ok && !keepGoing) {
					inFlight = commands.length;
				}
			}
			next();
		};
		socket.setEncoding('utf8');
		socket.on('data', (chunk: string) => {
			try {
				for (const message of decoder.push(chunk)) {
					handle(message);
				}
			} catch (error) {
				fail(new QmpError(`${socketPath}: ${error instanceof Error ? error.message : String(error)}`, 'EPROTO'));
			}
		});
		socket.on('error', error => fail(new QmpError(`the QEMU monitor at ${socketPath}: ${error.message}`, (error as {code?: string}).code ?? 'EIO')));
		socket.on('close', () => {
			if (inFlight <= commands.length) {
				fail(new QmpError(`the QEMU monitor at ${socketPath} closed the connection${greeted ? '' : ' before its greeting'}`, 'ECONNRESET'));
			}
		});
	});
}
