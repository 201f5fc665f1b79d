// qemu-nbd and qemu-img, each wrapped in one small function: the server that makes the disk inside a
// formatted image (qcow2, ...) an NBD export on a private Unix socket, and the tools that create and resize it.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {UsageError} from '../errors.js';

/** The one line for a host without QEMU's tools, naming the packages that ship them. */
export function missingQemuTool(tool: string): string {
	return `${tool} is not installed on this host: install qemu-utils (apt-get install qemu-utils; Proxmox VE ships it in pve-qemu-kvm)`;
}

/** qemu-nbd's "Failed to get shared/write lock" (a running VM holds the image) as the one line that says what to do. */
function lockConflict(role: 'SRC' | 'DST', file: string, error: unknown): unknown {
	if (!(error instanceof UsageError) || !(error.cause instanceof Error) || !/Failed to get .*lock/i.test(error.cause.message)) {
		return error;
	}
	return new UsageError(role === 'SRC'
		? `SRC ${file} is in use by a running VM (or another QEMU): export it from the VM with --qmp SOCKET, or read it anyway with --force-share (crash-consistent)`
		: `DST ${file} is in use by a running VM (or another QEMU): stop it first`, {cause: error});
}

/** Runs a QEMU tool to its end; throws UsageError naming `what` with the tool's own words on failure. */
function runTool(tool: string, args: readonly string[], what: string): string {
	const result = spawnSync(tool, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
	if ((result.error as {code?: string} | undefined)?.code === 'ENOENT') {
		throw new UsageError(missingQemuTool(tool));
	}
	if (result.error || result.status !== 0) {
		const said = (result.stderr || result.error?.message || `exit status ${result.status}`).trim().split('\n').pop()!.replace(/^qemu-(nbd|img): /, '');
		throw new UsageError(`${what}: ${said}`, {cause: new Error(result.stderr || result.error?.message || '')});
	}
	return result.stdout;
}

let help: string | undefined;

/** qemu-img --help, run once per process (each qemu-img costs a process start: 20-70 ms on a busy host). */
export function qemuImgHelp(): string {
	help ??= runTool('qemu-img', ['--help'], 'qemu-img --help');
	return help;
}

/** The formats this host's qemu-img knows ("Supported formats:" of qemu-img --help). */
export function hostFormats(): string[] {
	const help = qemuImgHelp();
	const line = /^Supported formats:(.*)$/m.exec(help)?.[1] ?? '';
	return line.trim().split(/\s+/).filter(Boolean);
}

/** Throws UsageError unless this host's qemu-img knows `format`. */
export function checkFormat(role: 'SRC' | 'DST', file: string, format: string): void {
	const known = hostFormats();
	if (!known.includes(format)) {
		throw new UsageError(`${role} ${file}: qemu-img on this host does not know the format ${format} (it knows: ${known.join(' ')})`);
	}
}

/** The virtual size of an image (qemu-img info), -U: a running qemu-nbd or VM may hold its lock. */
export function virtualSize(file: string, format: string, role: 'SRC' | 'DST'): number {
	const info = JSON.parse(runTool('qemu-img', ['info', '-U', '--output=json', '-f', format, file], `${role} ${file}`)) as {'virtual-size': number};
	return info['virtual-size'];
}

/** qemu-img create: a new image of `size` bytes (a qcow2 of a few hundred KiB, whatever the size). */
export function createImage(file: string, format: string, size: number): void {
	runTool('qemu-img', ['create', '-q', '-f', format, file, String(size)], `DST ${file}: cannot create it`);
}

/** qemu-img resize (--shrink allows a smaller size). */
export function resizeImage(file: string, format: string, size: number): void {
	runTool('qemu-img', ['resize', '-q', '--shrink', '-f', format, file, String(size)], `DST ${file}: cannot resize to ${size} bytes`);
}

export type ServerOptions = {
	readonly format: string;
	/** SRC, or a dry run's DST. */
	readonly readOnly: boolean;
	/** --bitmap: the persistent dirty bitmap exported too (-B NAME, context qemu:dirty-bitmap:NAME). */
	readonly bitmap?: string;
	/** --force-share (read-only only): read an image whose lock another QEMU (a running VM) holds. */
	readonly forceShare?: boolean;
};

/** A running qemu-nbd; stop() ends it (TERM, then KILL) and removes its directory. */
export type QemuServer = {readonly socket: string; readonly pid: number; stop(): void};

/**
 * How many clients one server takes (qemu-nbd's default is 1): the preparing agent and every worker of
 * both phases (at most 64 each), with room to spare.
 */
export const SERVER_CLIENTS = 256;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function alive(pid: number): boolean {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return stat[stat.lastIndexOf(')') + 2] !== 'Z';
	} catch {
		return false;
	}
}

/** --image-opts for `file` read with its locks off (file.locking=off); commas in the path doubled, as QEMU's option syntax wants. */
export function forceShareOptions(format: string, file: string): string {
	let driver = 'file';
	try {
		driver = fs.statSync(file).isBlockDevice() ? 'host_device' : 'file';
	} catch {
		// qemu-nbd says what is wrong with the path.
	}
	return `driver=${format},file.driver=${driver},file.filename=${file.replaceAll(',', ',,')},file.locking=off`;
}

/**
 * Starts qemu-nbd on `file` on a socket in a fresh 0700 directory, returning once it listens (--fork).
 * Without -t (persistent) it exits by itself when its last client disconnects, so a process of ours killed
 * outright (its connection closed by the kernel) leaves no server behind either. SRC is served read-only;
 * a writable DST with --discard=unmap --detect-zeroes=unmap, so zeroed ranges become holes (qcow2: zero clusters).
 */
export function startServer(role: 'SRC' | 'DST', file: string, options: ServerOptions): QemuServer {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rblocksync-nbd-'));
	fs.chmodSync(dir, 0o700);
	const socket = path.join(dir, 'nbd.sock');
	const pidFile = path.join(dir, 'qemu-nbd.pid');
	const args = ['--fork', '--pid-file', pidFile, '-k', socket, `--shared=${SERVER_CLIENTS}`];
	args.push(...(options.readOnly ? ['--read-only'] : ['--discard=unmap', '--detect-zeroes=unmap']));
	args.push(...(options.bitmap === undefined ? [] : ['-B', options.bitmap]));
	if (options.readOnly && options.forceShare) {
		// qemu-nbd has no -U (qemu-img's --force-share): the file's own option turns the locks off for this read.
		args.push('--image-opts', forceShareOptions(options.format, path.resolve(file)));
	} else {
		args.push('-f', options.format, path.resolve(file));
	}
	try {
		runTool('qemu-nbd', args, `${role} ${file}: qemu-nbd`);
	} catch (error) {
		fs.rmSync(dir, {recursive: true, force: true});
		throw lockConflict(role, file, error);
	}
	const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
	let stopped = false;
	return {
		socket, pid,
		stop() {
			if (stopped) {
				return;
			}
			stopped = true;
			for (const [signal, waitMs] of [['SIGTERM', 5000], ['SIGKILL', 2000]] as const) {
				try {
					process.kill(pid, signal);
				} catch {
					break; // Gone already.
				}
				for (const until = Date.now() + waitMs; alive(pid) && Date.now() < until;) {
					Atomics.wait(sleeper, 0, 0, 10);
				}
				if (!alive(pid)) {
					break;
				}
			}
			fs.rmSync(dir, {recursive: true, force: true});
		},
	};
}
