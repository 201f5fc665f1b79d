// qemu-nbd and qemu-img for the NBD tests: a server on a private Unix socket (in a 0700 directory), every one
// started is tracked and stopped, and a reason to skip where qemu-utils is missing.
import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Why qemu-nbd cannot run here, or undefined when it can. */
export function qemuNbdProblem(): string | undefined {
	for (const tool of ['qemu-nbd', 'qemu-img']) {
		const probe = spawnSync(tool, ['--version'], {encoding: 'utf8'});
		if (probe.error || probe.status !== 0) {
			return `${tool} is not available (${probe.error?.message ?? probe.stderr.trim()}): apt-get install qemu-utils`;
		}
	}
	return undefined;
}

export type QemuNbdOptions = {
	readonly format: 'raw' | 'qcow2' | string;
	readonly readOnly?: boolean;
	/** --discard=unmap --detect-zeroes=unmap: zeroing may deallocate. */
	readonly unmap?: boolean;
	/** -t: keep serving after the last client disconnects. */
	readonly persistent?: boolean;
	/** Extra arguments before the file (e.g. -B BITMAP, -x NAME). */
	readonly args?: readonly string[];
	/** --image-opts: `file` is an option string, not a path. */
	readonly imageOpts?: boolean;
};

export type QemuNbd = {readonly socket: string; readonly pid: number; readonly dir: string; stop(): void};

const started = new Set<number>();

/** Sleeps this thread (no event loop needed). */
export function sleepMs(ms: number): void {
	Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A process that still runs (a zombie counts as ended). */
export function running(pid: number): boolean {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
	} catch {
		return false;
	}
}

/** The qemu-nbd processes started here that still run. */
export function leftoverServers(): number[] {
	return [...started].filter(running);
}

/** Starts qemu-nbd on FILE; returns once its socket listens (--fork waits for that). */
export function startQemuNbd(file: string, options: QemuNbdOptions): QemuNbd {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-nbd-'));
	fs.chmodSync(dir, 0o700);
	const socket = path.join(dir, 'nbd.sock');
	const pidFile = path.join(dir, 'qemu-nbd.pid');
	const args = ['--fork', '--pid-file', pidFile, '-k', socket];
	if (!options.imageOpts) {
		args.push('-f', options.format);
	}
	if (options.readOnly) {
		args.push('--read-only');
	}
	if (options.unmap) {
		args.push('--discard=unmap', '--detect-zeroes=unmap');
	}
	if (options.persistent) {
		args.push('-t');
	}
	args.push(...(options.args ?? []));
	if (options.imageOpts) {
		args.push('--image-opts');
	}
	args.push(file);
	execFileSync('qemu-nbd', args, {stdio: ['ignore', 'ignore', 'pipe']});
	const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
	started.add(pid);
	return {socket, pid, dir, stop: () => stopServer(pid, dir)};
}

/** Waits up to 3 s for the server to leave on its own (it does when its client disconnects, without -t), then TERM, then KILL. */
function stopServer(pid: number, dir: string): void {
	for (const [signal, wait] of [[undefined, 3000], ['SIGTERM', 3000], ['SIGKILL', 3000]] as const) {
		if (signal && running(pid)) {
			try {
				process.kill(pid, signal);
			} catch {
				// Already gone.
			}
		}
		for (const until = Date.now() + wait; running(pid) && Date.now() < until;) {
			sleepMs(20);
		}
		if (!running(pid)) {
			break;
		}
	}
	fs.rmSync(dir, {recursive: true, force: true});
}

/** Kills whatever a failed test left behind. */
process.on('exit', () => {
	for (const pid of leftoverServers()) {
		try {
			process.kill(pid, 'SIGKILL');
		} catch {
			// Gone.
		}
	}
});

/** `qemu-img info --output=json`. */
export function qemuImgInfo(file: string): {'virtual-size': number; 'actual-size': number; format: string} {
	return JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], {encoding: 'utf8'}));
}

export type MapEntry = {start: number; length: number; depth: number; present?: boolean; zero: boolean; data: boolean; offset?: number};

/** `qemu-img map --output=json`: what each range of the guest view is in the file. */
export function qemuImgMap(file: string, format = 'qcow2'): MapEntry[] {
	return JSON.parse(execFileSync('qemu-img', ['map', '-U', '--output=json', '-f', format, file], {encoding: 'utf8'}));
}

/** Creates an image with qemu-img (e.g. qcow2 with a small cluster size). */
export function qemuImgCreate(file: string, format: string, size: number, options: readonly string[] = []): void {
	execFileSync('qemu-img', ['create', '-q', '-f', format, ...options.flatMap(option => ['-o', option]), file, String(size)]);
}

/** The guest view of an image as raw bytes (qemu-img convert -O raw). */
export function guestView(file: string, format: string): Buffer {
	const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-raw-')), 'view.raw');
	try {
		execFileSync('qemu-img', ['convert', '-f', format, '-O', 'raw', file, out]);
		return fs.readFileSync(out);
	} finally {
		fs.rmSync(path.dirname(out), {recursive: true, force: true});
	}
}
