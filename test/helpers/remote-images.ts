// Generated images for the SSH tests (random data, zero blocks, holes) and a runner for the built CLI.
import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {closeSync, ftruncateSync, openSync, readFileSync, statSync, writeSync} from 'node:fs';
import {fileURLToPath} from 'node:url';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/**
 * Writes an image of `size` bytes: random 4 KiB blocks, with every `zeroEvery`-th block written as zeros
 * and every `holeEvery`-th block left a hole (0: none). Returns nothing; the file is sparse.
 */
export function makeImage(path: string, size: number, {zeroEvery = 4, holeEvery = 10} = {}): void {
	const fd = openSync(path, 'w');
	try {
		ftruncateSync(fd, size);
		const block = 4096;
		const batch = 256;
		const data = Buffer.alloc(block * batch);
		for (let first = 0; first * block < size; first += batch) {
			const random = randomBytes(block * batch);
			let start = -1;
			const flush = (end: number): void => {
				if (start >= 0) {
					const position = (first + start) * block;
					const length = Math.min(size - position, (end - start) * block);
					writeSync(fd, data, start * block, length, position);
					start = -1;
				}
			};
			for (let i = 0; i < batch && (first + i) * block < size; i++) {
				const index = first + i;
				if (holeEvery > 0 && index % holeEvery === 3) {
					flush(i);
					continue;
				}
				if (zeroEvery > 0 && index % zeroEvery === 1) {
					data.fill(0, i * block, (i + 1) * block);
				} else {
					random.copy(data, i * block, i * block, (i + 1) * block);
				}
				start = start < 0 ? i : start;
			}
			flush(batch);
		}
	} finally {
		closeSync(fd);
	}
}

/** Overwrites `fraction` of the blocks (spread evenly) with new random bytes; returns how many. */
export function changeBlocks(path: string, fraction: number): number {
	const size = statSync(path).size;
	const blocks = Math.floor(size / 4096);
	const step = Math.max(1, Math.round(1 / fraction));
	const fd = openSync(path, 'r+');
	let count = 0;
	try {
		for (let block = 7; block < blocks; block += step) {
			writeSync(fd, randomBytes(4096), 0, 4096, block * 4096);
			count += 1;
		}
	} finally {
		closeSync(fd);
	}
	return count;
}

export function sameContent(a: string, b: string): boolean {
	return readFileSync(a).equals(readFileSync(b));
}

/** Allocated bytes (st_blocks x 512). */
export function allocated(path: string): number {
	return statSync(path).blocks * 512;
}

/** The --json summary a run printed on stdout, or undefined when stdout is not one JSON object. */
export function jsonOutput(stdout: string): Record<string, unknown> | undefined {
	try {
		return JSON.parse(stdout) as Record<string, unknown>;
	} catch {
		return undefined;
	}
}

export type CliResult = {status: number | null; stdout: string; stderr: string; json: Record<string, unknown> | undefined};

/** Runs `node dist/cli.js ...args`; resolves when it exits. */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv, options: {timeoutMs?: number; onStart?: (pid: number) => void} = {}): Promise<CliResult> {
	return new Promise(resolve => {
		const child = spawn(process.execPath, [cli, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']});
		options.onStart?.(child.pid!);
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (chunk: Buffer) => {
			stdout += chunk.toString();
		});
		child.stderr.on('data', (chunk: Buffer) => {
			stderr += chunk.toString();
		});
		const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
		child.on('close', status => {
			clearTimeout(timer);
			resolve({status, stdout, stderr, json: jsonOutput(stdout)});
		});
	});
}
