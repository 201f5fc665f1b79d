// Runs the CLI under strace -f and parses the system calls, to check the order of writes, flushes and output.
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {CLI_PATH} from './cli.js';

/** One completed system call; calls are in completion order (an interrupted call counts when it resumes). */
export type Call = {pid: string; name: string; args: string; result: string};

const TRACED = 'openat,close,pwrite64,pwritev,write,fallocate,ftruncate,ioctl,fdatasync,fsync,sync_file_range';

/**
 * The calls made by `node dist/cli.js args`, or a reason why strace cannot run here. `fdPaths`: strace -y, each fd
 * argument followed by the file it names (`25</tmp/x/dst.img>`: found by callsOnFile, also for an fd no openat made,
 * one taken from another process with pidfd_getfd); opensOf and callsOn then find nothing.
 */
export function traceCli(args: readonly string[], dir: string, {fdPaths = false, env = {}}: {fdPaths?: boolean; env?: NodeJS.ProcessEnv} = {}): {calls: Call[]; code: number | null} | {skip: string} {
	const log = path.join(dir, 'strace.log');
	const result = spawnSync('strace', [...(fdPaths ? ['-y'] : []), ...straceArgs(args, log)], {
		encoding: 'utf8',
		env: {...process.env, ...env, FORCE_COLOR: '0'},
	});
	if (result.error || !fs.existsSync(log)) {
		return {skip: `strace cannot run here: ${result.error?.message ?? result.stderr.trim()}`};
	}
	return {calls: parseTrace(fs.readFileSync(log, 'utf8')), code: result.status};
}

/** Arguments of strace for a run of the CLI logged to `log`. */
function straceArgs(args: readonly string[], log: string): string[] {
	return ['-f', '-qq', '-s', '4096', '-e', `trace=${TRACED}`, '-e', 'signal=none', '-o', log, process.execPath, CLI_PATH, ...args];
}

export type TracedRun = {
	/** Sends a signal to the traced CLI (not to strace). */
	kill(signal: NodeJS.Signals): void;
	waitForStderr(pattern: RegExp): Promise<void>;
	/** The exit status of the CLI, its stderr and its calls. */
	done: Promise<{code: number | null; stderr: string; calls: Call[]}>;
};

/** Starts the CLI under strace without waiting for it (for signals); `fdPaths` and `env` as for traceCli. */
export function startTracedCli(args: readonly string[], dir: string, {fdPaths = false, env = {}}: {fdPaths?: boolean; env?: NodeJS.ProcessEnv} = {}): TracedRun {
	const log = path.join(dir, 'strace.log');
	const child = spawn('strace', [...(fdPaths ? ['-y'] : []), ...straceArgs(args, log)], {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, ...env, FORCE_COLOR: '0'}});
	let stderr = '';
	child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
		stderr += chunk;
	});
	const done = new Promise<{code: number | null; stderr: string; calls: Call[]}>(resolve => {
		child.on('close', code => resolve({code, stderr, calls: fs.existsSync(log) ? parseTrace(fs.readFileSync(log, 'utf8')) : []}));
	});
	return {
		kill(signal) {
			const pid = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0];
			process.kill(Number(pid), signal);
		},
		async waitForStderr(pattern) {
			while (!pattern.test(stderr)) {
				if (child.exitCode !== null) {
					throw new Error(`the traced CLI ended before stderr matched ${pattern}: ${stderr}`);
				}
				await new Promise(resolve => setTimeout(resolve, 20));
			}
		},
		done,
	};
}

/** Parses `strace -f` output, joining "<unfinished ...>" lines with their "<... resumed>" ends. */
export function parseTrace(text: string): Call[] {
	const pending = new Map<string, string>();
	const calls: Call[] = [];
	for (const line of text.split('\n')) {
		const match = /^(\d+)\s+(.*)$/.exec(line);
		if (!match) {
			continue;
		}
		const [, pid, rest] = match as unknown as [string, string, string];
		if (rest.endsWith('<unfinished ...>')) {
			pending.set(pid, rest.slice(0, -'<unfinished ...>'.length).trimEnd());
			continue;
		}
		let full = rest;
		const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
		if (resumed) {
			full = (pending.get(pid) ?? `${resumed[1]}(`) + resumed[2];
			pending.delete(pid);
		}
		const call = /^(\w+)\((.*)\)\s+=\s+(-?\w+)/s.exec(full);
		if (call) {
			calls.push({pid, name: call[1]!, args: call[2]!, result: call[3]!});
		}
	}
	return calls;
}

/** With traceCli's fdPaths: the calls named `name` on an fd naming `file` (by its real path), with that fd (as text). */
export function callsOnFile(calls: readonly Call[], names: readonly string[], file: string): Array<{index: number; fd: string}> {
	const named = `<${fs.realpathSync(file)}>`;
	return calls.flatMap((call, index) => {
		const first = call.args.split(',')[0]!;
		return names.includes(call.name) && first.endsWith(named) ? [{index, fd: first.slice(0, -named.length)}] : [];
	});
}

/** The file descriptor numbers (as text) that `path` was opened as, with the index of each open. */
export function opensOf(calls: readonly Call[], file: string): Array<{index: number; fd: string; flags: string}> {
	const quoted = JSON.stringify(file);
	return calls.flatMap((call, index) => {
		if (call.name !== 'openat' || !call.args.includes(`, ${quoted},`) || call.result.startsWith('-')) {
			return [];
		}
		return [{index, fd: call.result, flags: call.args.slice(call.args.indexOf(quoted) + quoted.length + 2)}];
	});
}

/** Indices of the calls named `name` whose first argument is `fd`, after index `from`. */
export function callsOn(calls: readonly Call[], names: readonly string[], fd: string, from = 0): number[] {
	return calls.flatMap((call, index) => (index > from && names.includes(call.name) && call.args.split(',')[0] === fd ? [index] : []));
}
