// Proves the program runs on Debian bookworm's nodejs 18 (Proxmox VE 8), via scripts/node18.sh.
import {execFileSync, spawn, spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {Duplex} from 'node:stream';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type Message, OpenFlag, Role} from '../../source/protocol/messages.js';
import {InProcessLink, StreamLink} from '../../source/remote/link.js';
import {canPunch, openLink, relaySession} from '../../source/remote/session.js';

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

// A Proxmox VE 8 host runs the agent under this node: both roles, over a pipe as over SSH, with digests
// (DST differs in places, so nothing takes the first-copy shortcut), holes, and the native helper.
for (const role of ['DEST', 'SOURCE'] as const) {
	test(`should serve as the agent (${role}) under node 18`, async () => {
		const src = path.join(dir, `agent-${role}-src.img`);
		const dst = path.join(dir, `agent-${role}-dst.img`);
		const content = Buffer.alloc(6 * 1024 * 1024 + 5);
		for (let at = 0; at < content.length; at += 4096) {
			content.fill((at / 4096) % 251 + 1, at, Math.min(content.length, at + 4096));
		}
		content.fill(0, 100_000, 1_900_000);
		fs.writeFileSync(src, content);
		const old = Buffer.from(content);
		for (let at = 8192; at < old.length; at += 300 * 1024) {
			old.fill(0xee, at, at + 4096);
		}
		old.fill(0x55, 200_000, 300_000);
		fs.writeFileSync(dst, old);
		const child = spawn(node18, [path.join(root, 'dist/cli.js'), '--agent'], {cwd: root, stdio: ['pipe', 'pipe', 'pipe']});
		let stderr = '';
		child.stderr.on('data', (chunk: Buffer) => {
			stderr += chunk.toString();
		});
		const agent = new StreamLink('node18', Duplex.from({readable: child.stdout, writable: child.stdin}));
		const local = new InProcessLink();
		const base = {blockSize: 4096, compress: 0, srcSize: content.length, start: 0, end: content.length, hash: 'blake3', srcIdentity: ''};
		const sourceOpen: Message = {type: 'open', role: Role.source, flags: 0, ...base, path: src};
		const destOpen: Message = {type: 'open', role: Role.dest, flags: OpenFlag.force, ...base, path: dst};
		const [sourceLink, destLink] = role === 'DEST' ? [local, agent] : [agent, local];
		const warnings: string[] = [];
		const warn = (message: string): void => {
			warnings.push(message);
		};
		const [s, d] = await Promise.all([openLink(sourceLink, sourceOpen, warn), openLink(destLink, destOpen, warn)]);
		assert.ok(canPunch((role === 'DEST' ? d : s).caps), 'the agent under node 18 must load the native helper');
		const counters = await relaySession(sourceLink, destLink, {source: s.held, dest: d.held}, {stats() {}, warn}, () => new Error('aborted'));
		assert.equal(warnings, []);
		const code = await new Promise(resolve => child.once('exit', resolve));
		assert.is(code, 0, stderr);
		assert.is(sha256(dst), sha256(src));
		assert.ok(counters.blocksChanged > 0 && counters.blocksChanged < content.length / 4096 / 2, `${counters.blocksChanged} blocks changed`);
		assert.ok(counters.blocksPunched > 0, 'the zeroed range must be punched');
	});
}

test('should print the version quickly', () => {
	const result = run18(['dist/cli.js', '--version']);
	assert.is(result.code, 0, result.stderr);
	assert.match(result.stdout, /^rblocksync \d+\.\d+\.\d+/);
});

test.run();
