// Proves the program runs on Debian bookworm's nodejs 18 (Proxmox VE 8), via scripts/node18.sh.
import {execFileSync, spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../..', import.meta.url));
const node18 = path.join(root, 'scripts/node18.sh');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-node18-'));
process.on('exit', () => fs.rmSync(dir, {recursive: true, force: true}));

function run18(args: string[]): {code: number | null; stdout: string; stderr: string} {
	const result = spawnSync(node18, args, {cwd: root, encoding: 'utf8', timeout: 300_000});
	return {code: result.status, stdout: result.stdout, stderr: result.stderr};
}

function sha256(file: string): string {
	return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

const test = suite('node 18');

test('should be Debian bookworm node 18', () => {
	const result = run18(['-e', 'process.stdout.write(process.version)']);
	assert.is(result.code, 0, result.stderr);
	assert.match(result.stdout, /^v18\./);
});

for (const entry of ['dist/cli.js', 'dist/bundle/rblocksync.mjs']) {
	test(`should sync a sparse image with ${entry}, holes kept and punched, with worker threads`, () => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, `dst-${path.basename(entry)}.img`);
		fs.writeFileSync(src, '');
		fs.truncateSync(src, 64 * 1024 * 1024);
		const fd = fs.openSync(src, 'r+');
		fs.writeSync(fd, Buffer.alloc(1024 * 1024, 7), 0, 1024 * 1024, 8 * 1024 * 1024);
		fs.closeSync(fd);
		const first = run18([entry, '--truncate', '--json', '--workers', '2', src, dst]);
		assert.is(first.code, 0, first.stderr);
		assert.is(JSON.parse(first.stdout).ok, true);
		assert.is(sha256(dst), sha256(src));
		assert.ok(fs.statSync(dst).blocks * 512 <= 2 * 1024 * 1024, 'DST must stay sparse');
		assert.not.match(first.stderr, /native helper unavailable/);

		// A block of DST that must become zero is punched (the native helper works on node 18).
		execFileSync('dd', ['if=/dev/urandom', `of=${dst}`, 'bs=1M', 'count=4', 'seek=40', 'conv=notrunc', 'status=none']);
		const second = run18([entry, '--json', src, dst]);
		assert.is(second.code, 0, second.stderr);
		const summary = JSON.parse(second.stdout) as {blocksPunched: number};
		assert.is(summary.blocksPunched, 1024);
		assert.is(sha256(dst), sha256(src));
		assert.ok(fs.statSync(dst).blocks * 512 <= 2 * 1024 * 1024, 'punched blocks must be freed');
	});
}

test('should print the version quickly', () => {
	const result = run18(['dist/cli.js', '--version']);
	assert.is(result.code, 0, result.stderr);
	assert.match(result.stdout, /^rblocksync \d+\.\d+\.\d+/);
});

test.run();
