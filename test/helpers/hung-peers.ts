// Peers that never answer, for the timeout and signal tests: a TCP port that accepts and never speaks SSH,
// an `rblocksync` on a remote PATH that reads its stdin and never writes, and what is left below the test sshd.
import {spawn} from 'node:child_process';
import {chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {createServer, type Server, type Socket} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {jsonOutput, makeImage} from './remote-images.js';
import {belowSshd, processes, type ProcessRow, type Sshd, startSshd} from './sshd.js';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** What the timeout and signal tests share: the test sshd with a mute agent installed, and a temp dir (on tmpfs when there is one: the images need not reach a disk) holding a 1 MiB `src` and a 256 MiB all-data `big`. */
export type FaultBench = {sshd: Sshd; dir: string; src: string; big: string; stop(): Promise<void>};

export async function startFaultBench(prefix: string): Promise<FaultBench> {
	const sshd = await startSshd();
	installMuteAgent(sshd);
	const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), prefix));
	const src = join(dir, 'src.img');
	makeImage(src, 1024 * 1024);
	const big = join(dir, 'big.img');
	makeImage(big, 256 * 1024 * 1024, {zeroEvery: 0, holeEvery: 0});
	return {
		sshd, dir, src, big,
		async stop() {
			await sshd.stop();
			rmSync(dir, {recursive: true, force: true});
		},
	};
}

export type SilentServer = {readonly port: number; readonly accepted: number; close(): Promise<void>};

/** A server on 127.0.0.1 that accepts every connection and never sends a byte (not an SSH banner either). */
export async function silentServer(): Promise<SilentServer> {
	const sockets = new Set<Socket>();
	let accepted = 0;
	const server: Server = createServer(socket => {
		accepted += 1;
		sockets.add(socket);
		socket.on('error', () => {});
		socket.on('close', () => sockets.delete(socket));
	});
	await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
	const address = server.address();
	const port = typeof address === 'object' && address ? address.port : 0;
	return {
		port,
		get accepted() {
			return accepted;
		},
		async close() {
			sockets.forEach(socket => socket.destroy());
			await new Promise(resolve => server.close(resolve));
		},
	};
}

/** A port nothing listens on (connect: ECONNREFUSED): one a server had, closed again. */
export async function closedPort(): Promise<number> {
	const server = await silentServer();
	await server.close();
	return server.port;
}

/** Puts an `rblocksync` on the PATH of the pveextra alias that says it speaks protocol 1 and then only reads: its agent never says HELLO. */
export function installMuteAgent(sshd: Sshd): void {
	const path = join(sshd.extraBin, 'rblocksync');
	writeFileSync(path, '#!/bin/sh\nif [ "$1" = --agent-protocol ]; then echo 1; exit 0; fi\nexec cat >/dev/null\n');
	chmodSync(path, 0o755);
}

/** Puts an `rblocksync` on pveextra's PATH whose agent answers HELLO (protocol 1) and then never answers OPEN. */
export function installHelloOnlyAgent(sshd: Sshd): void {
	const path = join(sshd.extraBin, 'rblocksync');
	// HELLO: protocol u16 1, caps u32 0, program "0.1.0", hashes "blake3,sha256" (doc/protocol.md).
	const script = [
		'const s = b => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), Buffer.from(b)]);',
		'const payload = Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 0]), s("0.1.0"), s("blake3,sha256")]);',
		'const head = Buffer.alloc(5); head.writeUInt32BE(payload.length + 1); head[4] = 1;',
		'let said = false;',
		'process.stdin.on("data", () => { if (!said) { said = true; process.stdout.write(Buffer.concat([head, payload])); } });',
	].join(' ');
	writeFileSync(path, `#!/bin/sh\nif [ "$1" = --agent-protocol ]; then echo 1; exit 0; fi\nexec node -e '${script}'\n`);
	chmodSync(path, 0o755);
}

export {belowSshd};

/** Waits up to `ms` for every agent of the test sshd to end; returns those still there (for the failure message). */
export async function leftBehind(sshd: Sshd, ms = 5000): Promise<ProcessRow[]> {
	const until = Date.now() + ms;
	let rows = belowSshd(sshd);
	while (rows.length > 0 && Date.now() < until) {
		await sleep(50);
		rows = belowSshd(sshd);
	}
	return rows;
}

/** Waits until `ready()` holds (checked every 20 ms), at most `ms`; returns whether it did. */
export async function waitFor(ready: () => boolean, ms = 20_000): Promise<boolean> {
	const until = Date.now() + ms;
	while (!ready()) {
		if (Date.now() >= until) {
			return false;
		}
		await sleep(20);
	}
	return true;
}

export async function sleep(ms: number): Promise<void> {
	return new Promise(resolve => setTimeout(resolve, ms));
}

export type Ended = {status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; json: Record<string, unknown> | undefined; endedAt: number};

export type Running = {
	readonly pid: number;
	readonly startedAt: number;
	/** Whether the run has ended. */
	readonly ended: boolean;
	readonly done: Promise<Ended>;
};

/** Starts `node dist/cli.js ...args` (killed after `killAfterMs`, so a hang fails the test instead of holding it). */
export function startRun(args: readonly string[], env: NodeJS.ProcessEnv, killAfterMs = 60_000): Running {
	const child = spawn(process.execPath, [cli, ...args], {env: {...env, FORCE_COLOR: '0'}, stdio: ['ignore', 'pipe', 'pipe']});
	let stdout = '';
	let stderr = '';
	let ended = false;
	child.stdout.on('data', (chunk: Buffer) => {
		stdout += chunk.toString();
	});
	child.stderr.on('data', (chunk: Buffer) => {
		stderr += chunk.toString();
	});
	const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
	const done = new Promise<Ended>(resolve => {
		child.on('close', (status, signal) => {
			ended = true;
			clearTimeout(timer);
			resolve({status, signal, stdout, stderr, json: jsonOutput(stdout), endedAt: Date.now()});
		});
	});
	return {
		pid: child.pid!,
		startedAt: Date.now(),
		get ended() {
			return ended;
		},
		done,
	};
}
