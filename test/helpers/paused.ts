// Runs the built CLI and freezes it (SIGSTOP) when its stderr first matches a pattern, so a test can change an
// image at a known point of the sync while nothing of this process moves, then lets it go on (SIGCONT).
import {spawn} from 'node:child_process';
import {CLI_PATH} from './cli.js';

export type PausedResult = {code: number | null; stdout: string; stderr: string; /** What stderr held when the CLI was frozen. */ stderrAtPause: string};

/** The first batch of --json-progress (one per second at most): the sync has begun and is still running. */
export const FIRST_PROGRESS = /"event":"total"/;

/**
 * Runs `node dist/cli.js args`, and once stderr matches `pattern` (counting `occurrence` matches) stops the
 * process, runs `whilePaused`, and continues it. Rejects if the CLI ends before the pattern showed.
 */
export async function runPausedAt(
	args: readonly string[],
	pattern: RegExp,
	whilePaused: () => void | Promise<void>,
	options: {env?: NodeJS.ProcessEnv; occurrence?: number; timeoutMs?: number} = {},
): Promise<PausedResult> {
	const child = spawn(process.execPath, [CLI_PATH, ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...(options.env ?? process.env), FORCE_COLOR: '0'}});
	let stdout = '';
	let stderr = '';
	let stderrAtPause: string | undefined;
	let pausing: Promise<void> | undefined;
	const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
	child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
		stdout += chunk;
	});
	child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
		stderr += chunk;
		if (pausing === undefined && (stderr.match(global)?.length ?? 0) >= (options.occurrence ?? 1)) {
			child.kill('SIGSTOP');
			stderrAtPause = stderr;
			pausing = (async () => {
				try {
					await whilePaused();
				} finally {
					child.kill('SIGCONT');
				}
			})();
		}
	});
	const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
	const code = await new Promise<number | null>(resolve => child.on('close', resolve));
	clearTimeout(timer);
	if (pausing === undefined) {
		throw new Error(`the CLI ended (status ${String(code)}) before stderr matched ${pattern}; stderr: ${stderr}`);
	}
	await pausing;
	return {code, stdout, stderr, stderrAtPause: stderrAtPause!};
}

/** The CLI's own lines on stderr (errors and warnings), without --json-progress events. */
export function messageLines(stderr: string): string[] {
	return stderr.split('\n').filter(line => line.startsWith('rblocksync: ') && !line.includes('native helper unavailable'));
}
