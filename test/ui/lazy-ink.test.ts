import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawnSync} from 'node:child_process';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/cli.js');
const forbid = join(root, 'test/ui/fixtures/forbid-ink.mjs');

/** Runs the built CLI with ink and react made unimportable; stdin and stderr are pipes (not a TTY). */
function runForbidden(args: string[]): {status: number | null; stdout: string; stderr: string} {
	const result = spawnSync(process.execPath, ['--import', forbid, cli, ...args], {cwd: root, encoding: 'utf8', timeout: 60_000, input: ''});
	return {status: result.status, stdout: result.stdout, stderr: result.stderr};
}

const dir = mkdtempSync(join(tmpdir(), 'rbs-lazy-'));
const src = join(dir, 'src.img');
writeFileSync(src, Buffer.alloc(1024 * 1024, 7));

const lazy = suite('ink loading');
lazy.after(() => rmSync(dir, {recursive: true, force: true}));

lazy('should refuse ink under the hook (the control: --progress=tui needs it)', () => {
	const {stderr} = runForbidden(['--progress=tui', src, join(dir, 'tui.img'), '--truncate']);
	assert.match(stderr, /forbidden import of/);
});

lazy('should answer --version and --help without ink or react', () => {
	const version = runForbidden(['--version']);
	assert.is(version.status, 0, version.stderr);
	assert.match(version.stdout, /^rblocksync \d+\.\d+\.\d+\n$/);
	const help = runForbidden(['--help']);
	assert.is(help.status, 0, help.stderr);
	assert.match(help.stdout, /--progress MODE/);
});

for (const [name, args] of [
	['--json', ['--json']],
	['--json-progress', ['--json-progress']],
	['a run that is not on a terminal', []],
	['--progress=plain', ['--progress=plain']],
	['-q', ['-q']],
] as const) {
	lazy(`should not import ink for ${name}`, () => {
		const run = runForbidden([...args, src, join(dir, `${name.replace(/\W/g, '')}.img`), '--truncate']);
		assert.not.match(run.stderr, /forbidden import/);
		assert.is(run.status, 0, run.stderr);
		if (name === '--json') {
			assert.is((JSON.parse(run.stdout) as {ok: boolean}).ok, true);
		}
		assert.not.match(run.stderr, /\u001B/, 'no escape codes off a terminal');
		assert.not.match(run.stdout, /\u001B/);
	});
}

lazy('should not import ink in agent mode', () => {
	const run = runForbidden(['--agent']);
	assert.not.match(run.stderr, /forbidden import/);
});

lazy('should answer --version well under the cost of importing ink', () => {
	const times: number[] = [];
	for (let i = 0; i < 5; i++) {
		const t0 = performance.now();
		spawnSync(process.execPath, [cli, '--version'], {encoding: 'utf8'});
		times.push(performance.now() - t0);
	}
	const median = times.sort((a, b) => a - b)[2]!;
	const t0 = performance.now();
	spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(join(root, 'dist/ui/tui-reporter.js'))})`], {encoding: 'utf8'});
	const tui = performance.now() - t0;
	console.log(`  --version median ${median.toFixed(0)} ms; a process importing the TUI ${tui.toFixed(0)} ms`);
	// A loose bound: CI machines are slow and shared; the hook tests above are the precise check.
	assert.ok(median < 500, `--version took ${median.toFixed(0)} ms`);
});

lazy.run();
