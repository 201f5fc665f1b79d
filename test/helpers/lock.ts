// Holds a flock(2) on a file from another process (util-linux flock), as a second rblocksync run would.
import {spawn} from 'node:child_process';

export type HeldLock = {release(): Promise<void>};

/** Takes an exclusive (or shared) lock on `path` in a child process; resolves once it is held. */
export async function holdLock(path: string, shared = false): Promise<HeldLock> {
	const child = spawn('flock', ['-n', ...(shared ? ['-s'] : []), path, '-c', 'echo held; exec sleep 600'], {stdio: ['ignore', 'pipe', 'pipe'], detached: true});
	const ended = new Promise<void>(resolve => child.on('close', () => resolve()));
	await new Promise<void>((resolve, reject) => {
		let stderr = '';
		child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
			stderr += chunk;
		});
		child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
			if (chunk.includes('held')) {
				resolve();
			}
		});
		child.on('close', code => reject(new Error(`flock ${path} ended (${code}) before holding the lock: ${stderr}`)));
	});
	return {
		async release() {
			// The whole group: the shell flock runs inherits the locked fd and the pipes.
			process.kill(-child.pid!, 'SIGKILL');
			await ended;
		},
	};
}
