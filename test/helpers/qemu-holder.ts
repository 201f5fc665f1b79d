// Processes that hold an image the way a running VM does: qemu-system-x86_64 (-S, paused, TCG, no display),
// qemu-storage-daemon, and a plain shell with the file open. Each is tracked and stopped; none outlives its test.
import {type ChildProcess, spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import {type FdInfo, parseFdinfo, qemuLockState} from '../../source/image/holders.js';

export type HeldImage = {readonly pid: number; stop(): Promise<void>};

const started = new Set<ChildProcess>();

/** Why `tool` cannot run here, or undefined when it can. */
export function qemuToolProblem(tool: 'qemu-system-x86_64' | 'qemu-storage-daemon'): string | undefined {
	const probe = spawnSync(tool, ['--version'], {encoding: 'utf8'});
	if (probe.error || probe.status !== 0) {
		const package_ = tool === 'qemu-system-x86_64' ? 'qemu-system-x86' : 'qemu-system-common';
		return `${tool} is not available (${probe.error?.message ?? probe.stderr.trim()}): apt-get install ${package_}`;
	}
	return undefined;
}

/** The pids of the holders started here that still run (a test's after hook asserts none is left). */
export function holdersLeft(): number[] {
	return [...started].filter(child => child.exitCode === null && child.signalCode === null).map(child => child.pid!);
}

/** Stops every holder still running (an after hook's cleanup when a test failed half-way). */
export async function stopAllHolders(): Promise<void> {
	await Promise.all([...started].map(child => stopChild(child)));
}

async function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) {
		started.delete(child);
		return;
	}
	const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
	child.kill('SIGTERM');
	const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
	await exited;
	clearTimeout(timer);
	started.delete(child);
}

/** Waits until `ready` holds (polled every 20 ms), or throws naming `what` after `ms`. */
async function until(ready: () => boolean, child: ChildProcess, what: string, stderr: () => string, ms = 20_000): Promise<void> {
	for (const deadline = Date.now() + ms; !ready();) {
		if (child.exitCode !== null || child.signalCode !== null) {
			throw new Error(`${what} ended before holding the image: ${stderr()}`);
		}
		if (Date.now() > deadline) {
			await stopChild(child);
			throw new Error(`${what} did not hold the image within ${ms} ms: ${stderr()}`);
		}
		await new Promise(resolve => setTimeout(resolve, 20));
	}
}

/**
 * True once process `pid` holds QEMU's image lock on some open file, and with `writing` once it is the
 * writer's (byte 101, on an fd opened for writing): QEMU opens an image read-only first and reopens it
 * for writing as its devices take their permissions.
 */
function holdsQemuLock(pid: number, writing: boolean): boolean {
	let fds: string[];
	try {
		fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
	} catch {
		return false;
	}
	return fds.some(fd => {
		let info: FdInfo;
		try {
			info = parseFdinfo(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
		} catch {
			return false;
		}
		const state = qemuLockState(info.locks);
		return writing ? state.writing && info.writable : state.locked;
	});
}

function track(command: string, args: readonly string[]): {child: ChildProcess; stderr: () => string} {
	const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'pipe']});
	started.add(child);
	let text = '';
	child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
		text += chunk;
	});
	child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
		text += chunk;
	});
	return {child, stderr: () => text.trim()};
}

function held(child: ChildProcess): HeldImage {
	return {pid: child.pid!, stop: () => stopChild(child)};
}

export type VmOptions = {
	/** -name guest=NAME (libvirt's spelling), the VM id rblocksync names. */
	readonly name?: string;
	readonly format?: string;
	readonly readOnly?: boolean;
};

/** A paused VM (qemu-system-x86_64 -S) with `file` as its virtio disk; resolves once QEMU holds its image lock (a writable disk: the writer's). */
export async function startVm(file: string, options: VmOptions = {}): Promise<HeldImage> {
	const drive = `file=${file.replace(/,/g, ',,')},format=${options.format ?? 'raw'},if=virtio${options.readOnly ? ',readonly=on' : ''}`;
	const args = ['-S', '-nodefaults', '-display', 'none', '-machine', 'accel=tcg', ...(options.name ? ['-name', `guest=${options.name},debug-threads=on`] : []), '-drive', drive];
	const {child, stderr} = track('qemu-system-x86_64', args);
	await until(() => holdsQemuLock(child.pid!, !options.readOnly), child, 'qemu-system-x86_64', stderr);
	return held(child);
}

/** qemu-storage-daemon with `file` as a block node exported over NBD (a Unix socket beside it), writable or not. */
export async function startStorageDaemon(file: string, socket: string, writable: boolean): Promise<HeldImage> {
	const args = [
		'--blockdev', `driver=file,filename=${file.replace(/,/g, ',,')},node-name=n0${writable ? '' : ',read-only=on'}`,
		'--nbd-server', `addr.type=unix,addr.path=${socket}`,
		'--export', `type=nbd,id=e0,node-name=n0,writable=${writable ? 'on' : 'off'}`,
	];
	const {child, stderr} = track('qemu-storage-daemon', args);
	await until(() => holdsQemuLock(child.pid!, writable), child, 'qemu-storage-daemon', stderr);
	return held(child);
}

/** A shell that opens `file` (read-write, or read-only) on fd 3 and becomes `sleep` holding it; pid is sleep's. */
export async function holdOpen(file: string, writable: boolean): Promise<HeldImage> {
	const open = writable ? 'exec 3<>"$0"' : 'exec 3<"$0"';
	const {child, stderr} = track('sh', ['-c', `${open} && exec sleep 600`, file]);
	await until(() => {
		try {
			return fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'sleep';
		} catch {
			return false;
		}
	}, child, 'sh', stderr);
	return held(child);
}
