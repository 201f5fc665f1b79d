// What a non-TTY run prints: plain text without escape codes, errors in one line, the JSON summary alone on stdout.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type CliResult, runCli} from '../helpers/cli.js';
import {MiB, randomLayout, withTempDir, writeImage} from '../helpers/images.js';

const output = suite('output on pipes');

/** A colour-capable terminal type and no FORCE_COLOR: only the absence of a TTY may keep colour away. */
const COLOUR_ENV = {FORCE_COLOR: undefined, NO_COLOR: undefined, TERM: 'xterm-256color', COLORTERM: 'truecolor'};

function assertNoEscapes(result: CliResult, what: string): void {
	assert.not.match(result.stderr, /\u001b/, `${what}: stderr holds escape codes: ${JSON.stringify(result.stderr)}`);
	assert.not.match(result.stdout, /\u001b/, `${what}: stdout holds escape codes`);
	assert.not.match(result.stderr, /\r/, `${what}: stderr rewrites lines with carriage returns`);
}

output('should print no ANSI escape codes on a non-TTY stderr, whatever the outcome', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.25, hole: 0.25}, 91));
		const runs: Array<[string, string[]]> = [
			['default', ['--truncate', src, dst]],
			['--verify', ['--verify', src, dst]],
			['--progress plain', ['--progress', 'plain', '--dry-run', src, dst]],
			['--stat --quiet', ['--stat', '--quiet', src, dst]],
			['refusal', [src, path.join(dir, 'missing.img')]],
			['bad option', ['-b', '1000', src, dst]],
		];
		for (const [what, args] of runs) {
			const result = runCli(args, {env: COLOUR_ENV});
			assert.ok(result.code === 0 || result.code === 1, `${what}: exit ${result.code}: ${result.stderr}`);
			assertNoEscapes(result, what);
		}
	});
});

output('should print the summary in plain words on stderr and nothing on stdout by default', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 92));
		const result = runCli(['--truncate', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.stdout, '');
		assert.match(result.stderr, `${src} -> ${dst}: in sync`);
		assert.match(result.stderr, /^blocks +1024 total, 1024 scanned, \d+ changed, \d+ zero, 0 punched$/m);
	});
});

output('should print only the JSON object on stdout with --json', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.25, hole: 0.25}, 93));
		const result = runCli(['--truncate', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		const lines = result.stdout.trim().split('\n');
		assert.is(lines.length, 1);
		const json = JSON.parse(lines[0]!) as Record<string, unknown>;
		for (const key of ['size', 'blockSize', 'blocksTotal', 'blocksChanged', 'blocksZero', 'bytesWritten', 'bytesPunched', 'wireBytesSent', 'wireBytesReceived', 'seconds']) {
			assert.type(json[key], 'number', key);
		}
		assert.is(json['ok'], true);
		assert.is(json['wireBytesSent'], 0);
		assert.is(json['wireBytesReceived'], 0);
		assert.not.match(result.stderr, /in sync/, 'no plain summary beside --json');
	});
});

output('should print nothing at all with --quiet on success', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(1 * MiB, 4096, {zero: 0.25, hole: 0.25}, 94));
		const result = runCli(['--truncate', '--quiet', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.stdout, '');
		assert.is(result.stderr, '');
		assert.ok(fs.existsSync(dst));
	});
});

output.run();
