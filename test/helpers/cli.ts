// Runs the built CLI (dist/cli.js) as a child process and hands back what a user would see.
import {type ChildProcess, spawn, spawnSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import type {Summary} from '../../source/engine/progress.js';

/** The compiled program under test; scripts/test.mjs builds it before any test file runs. */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** The --json summary: the engine's Summary, as printed. */
export type JsonSummary = Summary;

export type CliResult = {
	/** Exit status; null when killed by a signal (see `signal`). */
	code: number | null;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
	/** The last stdout line parsed as JSON, when it is JSON (the --json summary). */
	json: JsonSummary | undefined;
};

export type RunOptions = {
	/** Run as uid/gid 65534 (nobody) through setpriv, with no supplementary groups. */
	asNobody?: boolean;
	cwd?: string;
	timeoutMs?: number;
	/** Extra environment variables (e.g. RBLOCKSYNC_NO_NATIVE=1); undefined removes one. */
	env?: Record<string, string | undefined>;
};

/** The command line that runs the CLI with `args`, optionally unprivileged. */
export function cliCommand(args: readonly string[], asNobody = false): [string, string[]] {
	const node = [CLI_PATH, ...args];
	return asNobody
		? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...node]]
		: [process.execPath, node];
}

/** Runs the CLI to completion; stdin is closed and stdout/stderr are pipes (not a TTY). */
export function runCli(args: readonly string[], options: RunOptions = {}): CliResult {
	const [command, argv] = cliCommand(args, options.asNobody);
	const result = spawnSync(command, argv, {
		cwd: options.cwd,
		encoding: 'utf8',
		stdio: ['ignore', 'pipe', 'pipe'],
		timeout: options.timeoutMs ?? 60_000,
		env: environment(options.env),
	});
	if (result.error) {
		throw result.error;
	}
	return {code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr, json: parseJson(result.stdout)};
}

export type RunningCli = {
	child: ChildProcess;
	/** Resolves when stderr has contained `pattern` (rejects if the process ends first). */
	waitForStderr(pattern: RegExp): Promise<void>;
	/** Resolves with the result once the process has exited. */
	done: Promise<CliResult>;
};

/** Starts the CLI without waiting for it (for signals). */
export function startCli(args: readonly string[]): RunningCli {
	const [command, argv] = cliCommand(args);
	const child = spawn(command, argv, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, FORCE_COLOR: '0'}});
	let stdout = '';
	let stderr = '';
	const watchers = new Set<() => void>();
	child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
		stdout += chunk;
	});
	child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
		stderr += chunk;
		watchers.forEach(check => check());
	});
	const done = new Promise<CliResult>(resolve => {
		child.on('close', (code, signal) => {
			watchers.forEach(check => check());
			resolve({code, signal, stdout, stderr, json: parseJson(stdout)});
		});
	});
	const waitForStderr = async (pattern: RegExp): Promise<void> => new Promise((resolve, reject) => {
		const check = (): void => {
			if (pattern.test(stderr)) {
				watchers.delete(check);
				resolve();
			} else if (child.exitCode !== null || child.signalCode !== null) {
				watchers.delete(check);
				reject(new Error(`the CLI ended before stderr matched ${pattern}; stderr: ${stderr}`));
			}
		};
		watchers.add(check);
		check();
	});
	return {child, waitForStderr, done};
}

/** The test's environment with FORCE_COLOR=0 (as scripts/test.mjs sets it), then `extra` applied. */
function environment(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {...process.env, FORCE_COLOR: '0', ...extra};
	for (const [key, value] of Object.entries(extra)) {
		if (value === undefined) {
			delete env[key];
		}
	}
	return env;
}

function parseJson(stdout: string): JsonSummary | undefined {
	const last = stdout.trim().split('\n').pop();
	if (!last?.startsWith('{')) {
		return undefined;
	}
	try {
		return JSON.parse(last) as JsonSummary;
	} catch {
		return undefined;
	}
}

/** stderr without the once-per-run warning about the missing native helper (present until it is built). */
export function stderrLines(result: CliResult): string[] {
	return result.stderr.split('\n').filter(line => line !== '' && !line.includes('native helper unavailable'));
}
