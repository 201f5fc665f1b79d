// README's first command installs Debian's nodejs and npm only where no Node.js 18+ is there: on a machine whose
// Node.js comes from elsewhere (NodeSource, say), installing Debian's npm conflicts and the whole command fails.
import {spawnSync} from 'node:child_process';
import {chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** The install steps of README's first command: what it runs before `npm ci`. */
function installSteps(): string {
	const block = /```sh\n([^]*?)```/.exec(readme)?.[1] ?? '';
	const command = block.split('\n').find(line => line.trim() !== '' && !line.startsWith('#')) ?? '';
	const end = command.indexOf(' && npm ci');
	assert.ok(end > 0, `README's first command has no "&& npm ci": ${command}`);
	return command.slice(0, end);
}

/** Runs the install steps with stubs on PATH (apt-get records its arguments); returns the apt-get calls. */
function aptCalls(node: 'current' | 'old' | 'missing'): string[] {
	const bin = mkdtempSync(join(tmpdir(), 'rblocksync-readme-'));
	try {
		const log = join(bin, 'apt-get.log');
		const stub = (name: string, body: string): void => {
			writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
			chmodSync(join(bin, name), 0o755);
		};
		stub('apt-get', `echo "$*" >> '${log}'`);
		stub('npm', 'exit 0');
		if (node === 'current') {
			symlinkSync(process.execPath, join(bin, 'node'));
		} else if (node === 'old') {
			writeFileSync(join(bin, 'node16.cjs'), "Object.defineProperty(process.versions, 'node', {value: '16.20.2'});\n");
			stub('node', `exec '${process.execPath}' -r '${join(bin, 'node16.cjs')}' "$@"`);
		}
		const result = spawnSync('/bin/bash', ['-c', installSteps()], {encoding: 'utf8', env: {PATH: bin}});
		assert.is(result.status, 0, result.stderr);
		return readFileSync(log, 'utf8').trim().split('\n');
	} finally {
		rmSync(bin, {recursive: true, force: true});
	}
}

const install = suite("README's install command");

install('should leave a Node.js 18 or newer from elsewhere alone, installing the rest', () => {
	const calls = aptCalls('current');
	assert.is(calls.length, 2, calls.join('\n'));
	assert.is(calls[0], 'update');
	assert.not.match(calls[1]!, /\bnodejs\b|\bnpm\b/);
	assert.match(calls[1]!, /^install -y --no-install-recommends .*\bgcc\b.*\bopenssh-server\b/);
});

install("should install Debian's nodejs and npm when node is missing or older than 18", () => {
	for (const node of ['missing', 'old'] as const) {
		const calls = aptCalls(node);
		assert.ok(calls.some(call => /^install .*\bnodejs npm\b/.test(call)), `${node}: ${calls.join('\n')}`);
	}
});

install.run();
