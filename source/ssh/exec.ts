// Small wrappers around exec channels: run a fixed command to completion, forward stderr line by line.
import type {ClientChannel} from 'ssh2';
import type {Connection} from './connect.js';

export type CommandResult = {code: number | null; signal: string | undefined; stdout: string; stderr: string};

/** Bounds on a command: it fails with `timeoutError` after `timeoutMs` (its channel closed), and ends at once when `signal` aborts. */
export type CommandBounds = {readonly timeoutMs: number; readonly timeoutError: () => Error; readonly signal?: AbortSignal};

/** Runs a fixed command line (never user data), feeding `input` to its stdin; resolves when it exits. */
export async function runCommand(connection: Connection, command: string, input?: Buffer, bounds?: CommandBounds): Promise<CommandResult> {
	const channel = await connection.exec(command);
	return new Promise((resolve, reject) => {
		const out: Buffer[] = [];
		const err: Buffer[] = [];
		let code: number | null = null;
		let signal: string | undefined;
		let settled = false;
		const finish = (): void => {
			settled = true;
			clearTimeout(timer);
			bounds?.signal?.removeEventListener('abort', onAbort);
		};
		// Rejects at once: a channel to a stopped host may never report its close.
		const stop = (error: Error): void => {
			if (!settled) {
				finish();
				channel.close();
				reject(error);
			}
		};
		const timer = bounds ? setTimeout(() => stop(bounds.timeoutError()), bounds.timeoutMs) : undefined;
		const onAbort = (): void => stop(new Error('interrupted'));
		bounds?.signal?.addEventListener('abort', onAbort);
		if (bounds?.signal?.aborted) {
			onAbort();
		}
		channel.on('data', (chunk: Buffer) => out.push(chunk));
		channel.stderr.on('data', (chunk: Buffer) => err.push(chunk));
		channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
			code = exitCode;
			signal = exitSignal;
		});
		channel.on('error', (error: Error) => stop(error));
		channel.on('close', () => {
			if (!settled) {
				finish();
				resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')});
			}
		});
		channel.end(input);
	});
}

/** Calls `line` for every complete line the channel writes on stderr, and for the rest at the end. */
export function forwardStderr(channel: ClientChannel, line: (text: string) => void): void {
	let pending = '';
	channel.stderr.on('data', (chunk: Buffer) => {
		pending += chunk.toString('utf8');
		let newline;
		while ((newline = pending.indexOf('\n')) !== -1) {
			const text = pending.slice(0, newline).replace(/\r$/, '');
			pending = pending.slice(newline + 1);
			if (text !== '') {
				line(text);
			}
		}
	});
	channel.stderr.on('end', () => {
		if (pending.trim() !== '') {
			line(pending.trim());
		}
		pending = '';
	});
}
