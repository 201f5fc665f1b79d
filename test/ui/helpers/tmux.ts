// A private tmux server (its own socket, no config) that runs one command in a real terminal for end-to-end tests.
import {execFileSync, spawnSync} from 'node:child_process';
import {existsSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';

/** Why tmux cannot be used here, or undefined when it can. */
export function tmuxProblem(): string | undefined {
	const probe = spawnSync('tmux', ['-V'], {encoding: 'utf8'});
	return probe.status === 0 ? undefined : `tmux is not installed (${probe.error?.message ?? probe.stderr.trim()})`;
}

/** The environment without CI markers: ink draws only the final frame when it thinks it runs in CI. */
export function terminalEnv(): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {};
	for (const [key, value] of Object.entries(process.env)) {
		if (!(key === 'CI' || key === 'CONTINUOUS_INTEGRATION' || key.startsWith('CI_') || key === 'TMUX' || key === 'TMUX_PANE')) {
			env[key] = value;
		}
	}
	return env;
}

export type Pane = {
	/** What the terminal shows now, without escape codes. */
	capture(): string;
	keys(...keys: string[]): void;
	resize(columns: number, rows: number): void;
	/** tmux's #{...} format for the pane, e.g. cursor_flag (1 when the cursor is visible). */
	format(name: string): string;
	kill(): void;
};

/** Starts `bash -c command` in a detached session of columns×rows. */
export function startPane(command: string, columns: number, rows: number): Pane {
	// A socket of our own (removed by kill), so the server never meets the user's tmux or another test's.
	const socket = join(tmpdir(), `rbs-tui-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`);
	const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, '-f', '/dev/null', ...args], {encoding: 'utf8', env: terminalEnv()});
	// bash, not sh: dash dies of the SIGINT meant for the program and never runs the rest of the script.
	tmux('new-session', '-d', '-s', 'e2e', '-x', String(columns), '-y', String(rows), 'bash', '-c', command);
	tmux('set-option', '-t', 'e2e', 'window-size', 'manual');
	return {
		capture: () => tmux('capture-pane', '-p', '-t', 'e2e'),
		keys: (...keys) => void tmux('send-keys', '-t', 'e2e', ...keys),
		resize: (x, y) => void tmux('resize-window', '-t', 'e2e', '-x', String(x), '-y', String(y)),
		format: name => tmux('display-message', '-p', '-t', 'e2e', `#{${name}}`).trim(),
		kill() {
			spawnSync('tmux', ['-S', socket, 'kill-server']);
			rmSync(socket, {force: true});
		},
	};
}

/** Polls `check` every 50 ms until it returns something other than undefined; throws with `what` after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
	const deadline = performance.now() + ms;
	for (;;) {
		const result = check();
		if (result !== undefined) {
			return result;
		}
		if (performance.now() > deadline) {
			throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		}
		await sleep(50);
	}
}

/** The contents of a file the pane's command writes at its end, once it exists and is complete. */
export function readWhenWritten(path: string): string | undefined {
	if (!existsSync(path)) {
		return undefined;
	}
	const text = readFileSync(path, 'utf8');
	return text.endsWith('\n') ? text : undefined;
}
