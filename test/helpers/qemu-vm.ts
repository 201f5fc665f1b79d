// A QEMU "VM" for the --qmp tests: qemu-system-x86_64 with no guest (TCG, -nodefaults, no display), its
// disks as -blockdev nodes, a QMP socket in the test's directory. Every one started is killed at the end
// (stop(), and at the test process's exit whatever happened).
import {type ChildProcess, spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {qmpSession, type QmpResult} from '../../source/qmp/client.js';

/** Why qemu-system-x86_64 cannot run here, or undefined when it can. */
export function qemuSystemProblem(): string | undefined {
	const probe = spawnSync('qemu-system-x86_64', ['--version'], {encoding: 'utf8'});
	if (probe.error || probe.status !== 0) {
		return `qemu-system-x86_64 is not available (${probe.error?.message ?? probe.stderr.trim()}): apt-get install qemu-system-x86`;
	}
	return undefined;
}

/** A disk: a file of a format, as node `node` (the format node; its file node is `node`-file), optionally seen by a virtio-blk device `device`. */
export type VmDisk = {readonly file: string; readonly format: 'raw' | 'qcow2'; readonly node: string; readonly device?: string};

export type Vm = {
	readonly qmp: string;
	readonly pid: number;
	/** One QMP command; rejects on QEMU's error. */
	command(execute: string, args?: Record<string, unknown>): Promise<unknown>;
	/**
	 * An HMP command line through human-monitor-command, e.g. `qemu-io disk0 "write -P 0x5a 1M 1M"` (a node no guest
	 * device holds: a device takes the write permission for itself); rejects when it prints an error.
	 */
	hmp(line: string): Promise<string>;
	/** The ids of the VM's block exports. */
	exports(): Promise<string[]>;
	/** quit (QEMU flushes its images), then KILL if it lingers; resolves once it is gone. */
	stop(): Promise<void>;
};

const children = new Set<ChildProcess>();
const killAll = (): void => {
	for (const child of children) {
		child.kill('SIGKILL');
	}
};
process.on('exit', killAll);
// A test run stopped by a signal ends its VMs too ('exit' does not run then).
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
	process.once(signal, () => {
		killAll();
		process.exit(128 + (signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1));
	});
}

/**
 * Starts the VM paused (-S) on machine `none` (no CPU, nothing to emulate) or q35 (a guest device per disk
 * that names one); `running` sends cont, so the VM's state is "running" as a live VM's is.
 */
export async function startVm(dir: string, disks: readonly VmDisk[], options: {machine?: 'none' | 'q35'; running?: boolean} = {}): Promise<Vm> {
	const qmp = path.join(dir, `vm-${children.size}-${Date.now()}.qmp`);
	const args = ['-S', '-nodefaults', '-display', 'none', '-machine', `${options.machine ?? 'none'},accel=tcg`, '-qmp', `unix:${qmp},server=on,wait=off`];
	for (const disk of disks) {
		args.push('-blockdev', `driver=file,filename=${disk.file},node-name=${disk.node}-file`, '-blockdev', `driver=${disk.format},file=${disk.node}-file,node-name=${disk.node}`);
		if (disk.device) {
			args.push('-device', `virtio-blk-pci,drive=${disk.node},id=${disk.device}`);
		}
	}
	const child = spawn('qemu-system-x86_64', args, {stdio: ['ignore', 'ignore', 'pipe']});
	children.add(child);
	let stderr = '';
	child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
		stderr += chunk;
	});
	const exited = new Promise<void>(resolve => child.once('exit', () => {
		children.delete(child);
		resolve();
	}));
	const run = async (execute: string, args?: Record<string, unknown>): Promise<unknown> => {
		const [result] = await qmpSession(qmp, [{execute, ...(args ? {arguments: args} : {})}]) as [QmpResult];
		if (!result.ok) {
			throw new Error(`${execute}: ${result.desc}`);
		}
		return result.value;
	};
	for (const until = Date.now() + 20_000; ;) {
		if (child.exitCode !== null) {
			throw new Error(`qemu-system-x86_64 ended: ${stderr}`);
		}
		if (fs.existsSync(qmp)) {
			try {
				await run('query-status');
				break;
			} catch (error) {
				if (Date.now() > until) {
					throw error;
				}
			}
		} else if (Date.now() > until) {
			child.kill('SIGKILL');
			throw new Error(`qemu-system-x86_64 made no QMP socket: ${stderr}`);
		}
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	if (options.running) {
		await run('cont');
	}
	return {
		qmp,
		pid: child.pid!,
		command: run,
		async hmp(line) {
			const said = String(await run('human-monitor-command', {'command-line': line}));
			if (/error|not found|invalid|conflict|failed|denied/i.test(said)) {
				throw new Error(`${line}: ${said.trim()}`);
			}
			return said;
		},
		async exports() {
			return (await run('query-block-exports') as Array<{id: string}>).map(entry => entry.id);
		},
		async stop() {
			if (child.exitCode === null && child.signalCode === null) {
				await run('quit').catch(() => child.kill('SIGKILL'));
				const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
				await exited;
				clearTimeout(timer);
			}
		},
	};
}
