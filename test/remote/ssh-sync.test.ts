import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {allocated, changeBlocks, makeImage, runCli, sameContent} from '../helpers/remote-images.js';
import {skip} from '../helpers/skip.js';

const test = suite('SSH push, pull and remote-to-remote');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-ssh-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

test('should push a new image with --truncate, keep holes remotely, then cost almost nothing unchanged', async () => {
	const src = join(dir, 'push-src.img');
	const dst = join(dir, 'push-dst.img');
	makeImage(src, 24 * MiB + 512);
	const first = await runCli([src, `pve:${dst}`, '--truncate', '--json'], sshd.env);
	assert.is(first.status, 0, first.stderr);
	assert.ok(sameContent(src, dst));
	assert.is(first.json?.['direction'], 'push');
	assert.ok(allocated(dst) <= allocated(src), `dst ${allocated(dst)} > src ${allocated(src)}`);
	const again = await runCli([src, `pve:${dst}`, '--json'], sshd.env);
	assert.is(again.status, 0, again.stderr);
	assert.is(again.json?.['blocksChanged'], 0);
	const wire = Number(again.json?.['wireBytesSent']) + Number(again.json?.['wireBytesReceived']);
	assert.ok(wire > 0 && wire < 0.001 * statSync(src).size, `${wire} wire bytes`);
});

test('should pull 1% of changed blocks within 1.1x the changed bytes plus a constant', async () => {
	const src = join(dir, 'pull-src.img');
	const dst = join(dir, 'pull-dst.img');
	makeImage(src, 32 * MiB);
	const first = await runCli([`pve:${src}`, dst, '--truncate', '--json'], sshd.env);
	assert.is(first.status, 0, first.stderr);
	const changed = changeBlocks(src, 0.01);
	const second = await runCli([`pve:${src}`, dst, '--json', '-w', '2'], sshd.env);
	assert.is(second.status, 0, second.stderr);
	assert.ok(sameContent(src, dst));
	assert.is(second.json?.['direction'], 'pull');
	assert.is(second.json?.['blocksChanged'], changed);
	const wire = Number(second.json?.['wireBytesSent']) + Number(second.json?.['wireBytesReceived']);
	assert.ok(wire <= 1.1 * changed * 4096 + 64 * 1024, `${wire} wire bytes for ${changed * 4096} changed bytes`);
});

test('should copy between two remote hosts, relayed through this one', async () => {
	const src = join(dir, 'relay-src.img');
	const dst = join(dir, 'relay-dst.img');
	makeImage(src, 9 * MiB + 4096 * 3 + 100);
	const result = await runCli([`pve:${src}`, `pve2:${dst}`, '--truncate', '--json', '--verify'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.json?.['direction'], 'relay');
	assert.is(result.json?.['verified'], true);
	assert.ok(sameContent(src, dst));
});

test('should run 8 workers between two paths of one host under sshd\'s default MaxSessions (10)', async () => {
	const src = join(dir, 'many-src.img');
	const dst = join(dir, 'many-dst.img');
	makeImage(src, 64 * MiB);
	// 8 SOURCE and 8 DEST agents: 16 channels to one host, more than one connection may carry.
	const result = await runCli([`pve:${src}`, `pve:${dst}`, '--truncate', '-w', '8', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.json?.['workers'], 8);
	assert.ok(sameContent(src, dst));
});

test('should upload the agent when the host has only node, and reuse it the next time', async () => {
	const src = join(dir, 'upload-src.img');
	const dst = join(dir, 'upload-dst.img');
	// Little data (one 64 KiB run, then holes): the upload is most of what crosses the wire.
	makeImage(src, 64 * 1024, {zeroEvery: 0, holeEvery: 0});
	truncateSync(src, 3 * MiB);
	const cache = join(process.env['HOME'] ?? '/root', '.cache/rblocksync');
	rmSync(cache, {recursive: true, force: true});
	const first = await runCli([src, `pvenode:${dst}`, '--truncate', '--json'], sshd.env);
	assert.is(first.status, 0, first.stderr);
	assert.not.match(first.stderr, /native helper unavailable/, 'the native helper is shipped beside the agent');
	assert.ok(sameContent(src, dst));
	const agents = readdirSync(cache).filter(name => name.startsWith('agent-'));
	assert.is(agents.length, 1);
	assert.is(statSync(cache).mode & 0o777, 0o700);
	assert.ok(existsSync(join(cache, agents[0]!, 'rblocksync-agent.mjs')));
	const second = await runCli([`pvenode:${dst}`, join(dir, 'upload-back.img'), '--truncate', '--json'], sshd.env);
	assert.is(second.status, 0, second.stderr);
	// The upload is wire traffic too: the first run sent the bundle, the second (cached) did not.
	const bundle = ['rblocksync-agent.mjs', 'blake3.wasm'].reduce((sum, name) => sum + statSync(join(cache, agents[0]!, name)).size, 0);
	assert.ok(Number(first.json?.['wireBytesSent']) >= bundle + 64 * 1024, `first run sent ${String(first.json?.['wireBytesSent'])}, the bundle is ${bundle}`);
	assert.ok(Number(second.json?.['wireBytesSent']) < 16 * 1024, `second run sent ${String(second.json?.['wireBytesSent'])}`);
	assert.equal(readdirSync(cache).filter(name => name.startsWith('agent-')), agents);
});

test('should refuse a host with neither rblocksync nor node', async () => {
	const src = join(dir, 'bare-src.img');
	makeImage(src, MiB);
	const result = await runCli([src, `pvebare:${join(dir, 'bare-dst.img')}`, '--truncate'], sshd.env);
	assert.is(result.status, 1);
	assert.is(result.stderr, 'rblocksync: host pvebare has neither rblocksync nor node >= 18; install the rblocksync package there\n');
	assert.not.ok(existsSync(join(dir, 'bare-dst.img')));
});

test('should pass paths with spaces and shell characters as data', async () => {
	const sub = join(dir, 'odd dir; $(touch pwned) `x`');
	mkdirSync(sub);
	const src = join(sub, "src 'a' \"b\" $HOME;.img");
	makeImage(src, 2 * MiB);
	const dst = join(sub, 'dst $(id) ; rm -rf x.img');
	const push = await runCli([src, `pve:${dst}`, '--truncate'], sshd.env);
	assert.is(push.status, 0, push.stderr);
	const pull = await runCli([`pve:${dst}`, join(sub, 'back.img'), '--truncate'], sshd.env);
	assert.is(pull.status, 0, pull.stderr);
	assert.ok(sameContent(src, join(sub, 'back.img')));
	assert.not.ok(existsSync('pwned') || existsSync(join(process.env['HOME'] ?? '/root', 'pwned')));
});

test('should compress data frames with -z when it helps', async () => {
	const {writeFileSync} = await import('node:fs');
	const src = join(dir, 'text-src.img');
	const text = Buffer.from(Array.from({length: 8 * MiB}, (_, i) => 'abcdefghij klmnop\n'.charCodeAt((i * 7) % 18)));
	writeFileSync(src, text);
	const plain = await runCli([src, `pve:${join(dir, 'text-plain.img')}`, '--truncate', '--json', '--compress=off'], sshd.env);
	const zipped = await runCli([src, `pve:${join(dir, 'text-z.img')}`, '--truncate', '--json', '-z'], sshd.env);
	assert.is(zipped.status, 0, zipped.stderr);
	assert.ok(sameContent(src, join(dir, 'text-z.img')));
	assert.ok(Number(zipped.json?.['wireBytesSent']) * 4 < Number(plain.json?.['wireBytesSent']), `${String(zipped.json?.['wireBytesSent'])} vs ${String(plain.json?.['wireBytesSent'])}`);
	const random = join(dir, 'random-z.img');
	makeImage(random, 4 * MiB);
	const incompressible = await runCli([random, `pve:${join(dir, 'random-z-dst.img')}`, '--truncate', '-q', '--compress=6'], sshd.env);
	assert.is(incompressible.status, 0, incompressible.stderr);
	assert.ok(sameContent(random, join(dir, 'random-z-dst.img')));
});

test('should create nothing remotely in a dry run with --truncate', async () => {
	const src = join(dir, 'dry-src.img');
	makeImage(src, 3 * MiB);
	const result = await runCli([src, `pve:${join(dir, 'dry-missing.img')}`, '--truncate', '--dry-run', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.json?.['dryRun'], true);
	assert.ok(Number(result.json?.['blocksChanged']) > 0);
	assert.not.ok(existsSync(join(dir, 'dry-missing.img')));
});

test('should reach a host through ProxyJump', async () => {
	const src = join(dir, 'jump-src.img');
	const dst = join(dir, 'jump-dst.img');
	makeImage(src, 2 * MiB);
	const result = await runCli([src, `pvejump:${dst}`, '--truncate', '-q'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst));
});

test('should reach a host through a ProxyJump list of two hops', async () => {
	const src = join(dir, 'jump2-src.img');
	const dst = join(dir, 'jump2-dst.img');
	makeImage(src, 2 * MiB);
	const result = await runCli([src, `pvejump2:${dst}`, '--truncate', '-q'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst));
	// Every hop is used: a dead second hop fails the run, however good the first one is.
	const dead = await runCli([src, `pvejumpdead:${join(dir, 'jump-dead.img')}`, '--truncate', '-q'], sshd.env);
	assert.is(dead.status, 1, dead.stderr);
	assert.match(dead.stderr, /^rblocksync: ssh deadhop: ProxyJump through pve failed: .*\n$/);
	assert.not.ok(existsSync(join(dir, 'jump-dead.img')));
});

test('should push to and pull from a remote block device (loop device), zeroing on the device', async context => {
	const {loopDeviceProblem, withLoopDevice} = await import('../helpers/loop-device.js');
	const problem = await loopDeviceProblem();
	if (problem) {
		return skip(context, `no loop device here: ${problem}`);
	}
	const backing = join(dir, 'loop-backing.img');
	makeImage(backing, 8 * MiB, {zeroEvery: 0, holeEvery: 0});
	const src = join(dir, 'loop-src.img');
	makeImage(src, 6 * MiB);
	await withLoopDevice(backing, async device => {
		const push = await runCli([src, `pve:${device}`, '--json', '--force'], sshd.env);
		assert.is(push.status, 0, push.stderr);
		assert.is(push.json?.['dstExtraBytes'], 2 * MiB);
		assert.ok(Number(push.json?.['blocksPunched']) > 0);
		const back = join(dir, 'loop-back.img');
		const pull = await runCli([`pve:${device}`, back, '--truncate', '-q'], sshd.env);
		assert.is(pull.status, 0, pull.stderr);
		const {readFileSync} = await import('node:fs');
		assert.ok(readFileSync(back).subarray(0, 6 * MiB).equals(readFileSync(src)));
	});
});

test('should warn once when the remote agent cannot punch holes, and still sync correctly', async () => {
	const src = join(dir, 'nonative-src.img');
	const dst = join(dir, 'nonative-dst.img');
	makeImage(src, 4 * MiB);
	const result = await runCli([src, `pvenonative:${dst}`, '--truncate', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.stderr, 'rblocksync: warning: pvenonative: holes will be written as zeros: native helper unavailable\n');
	assert.ok(sameContent(src, dst));
});

test('should forward the remote stderr line by line, prefixed with the host', async () => {
	const src = join(dir, 'noisy-src.img');
	makeImage(src, MiB);
	const result = await runCli([src, `pvenoisy:${join(dir, 'noisy-dst.img')}`, '--truncate', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.match(result.stderr, /^rblocksync: warning: pvenoisy: hello from the agent$/m);
});

test('should exit 130 on SIGINT, never success; running it again sends only what is missing', async () => {
	const src = join(dir, 'sigint-src.img');
	const dst = join(dir, 'sigint-dst.img');
	const size = 256 * MiB;
	makeImage(src, size, {zeroEvery: 0, holeEvery: 0});
	let pid = 0;
	const running = runCli([src, `pve:${dst}`, '--truncate', '-q', '--json'], sshd.env, {onStart: p => {
		pid = p;
	}});
	// Interrupt once data is flowing (DST has grown), well before the end.
	for (let waited = 0; waited < 20_000 && !(existsSync(dst) && allocated(dst) >= 8 * MiB); waited += 20) {
		await new Promise(resolve => setTimeout(resolve, 20));
	}
	process.kill(pid, 'SIGINT');
	const result = await running;
	assert.is(result.status, 130, result.stderr);
	assert.match(result.stderr, /interrupted; DST may be partially updated/);
	const written = allocated(dst);
	assert.ok(written < size, 'the sync ended before it was interrupted; make the image larger');
	// The summary of an interrupted run says how far it got, and that it failed.
	assert.is(result.json?.['ok'], false);
	assert.ok(Number(result.json?.['bytesWritten']) > 0 && Number(result.json?.['wireBytesSent']) > Number(result.json?.['bytesWritten']), JSON.stringify(result.json));
	// Resume: the data already there is recognised by its digests and not sent again.
	const again = await runCli([src, `pve:${dst}`, '--json'], sshd.env);
	assert.is(again.status, 0, again.stderr);
	assert.ok(sameContent(src, dst));
	const sent = Number(again.json?.['wireBytesSent']);
	assert.ok(sent <= (size - written) * 1.1 + MiB, `resumed run sent ${sent} bytes; ${size - written} were missing`);
});

test.run();
