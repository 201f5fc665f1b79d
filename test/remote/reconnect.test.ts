// --retries over a real sshd through bench/wan's delay proxy, which cuts every connection (a reset, as a dropped
// link would): the run reconnects, takes DST's lock again, resumes each worker at DEST's last CHECKPOINT and ends
// with exit 0 and DST == SRC (holes kept); a link that does not come back, --retries 0 and a changed host key fail.
import {appendFileSync, closeSync, cpSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type DelayProxy, startDelayProxy} from '../../bench/wan/delay-proxy.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {allocated, type CliResult, makeImage, runCli, sameContent} from '../helpers/remote-images.js';

const test = suite('--retries: a dropped link is survived');
const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
let sshd: Sshd;
let proxy: DelayProxy;
let dir: string;
let src: string;
/** SRC's bytes that are not zero: what a first copy sends. */
let srcData = 0;

test.before(async () => {
	sshd = await startSshd();
	// Slow enough that a cut lands mid-run (about 4 s for SRC's data), fast enough for a test.
	proxy = await startDelayProxy({host: '127.0.0.1', port: sshd.port}, {rttMs: 0, rate: 12 * MiB});
	const [, type, key] = sshd.hostKeyLine.split(' ');
	for (const alias of ['wan', 'wan2']) {
		appendFileSync(join(sshd.home, '.ssh/config'), `\nHost ${alias}\n\tHostName 127.0.0.1\n\tPort ${proxy.port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tIdentitiesOnly yes\n`);
	}
	appendFileSync(join(sshd.home, '.ssh/known_hosts'), `[127.0.0.1]:${proxy.port} ${type} ${key}\n`);
	dir = mkdtempSync(join(tmpdir(), 'rbs-reconnect-'));
	src = join(dir, 'src.img');
	// Data, zero blocks and holes: holes must stay holes across a resumed session.
	makeImage(src, SIZE);
	srcData = countDataBytes(src);
});

test.after(async () => {
	await proxy.stop();
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

function countDataBytes(path: string): number {
	const bytes = readFileSync(path);
	let data = 0;
	for (let at = 0; at < bytes.length; at += 4096) {
		if (bytes.subarray(at, at + 4096).some(byte => byte !== 0)) {
			data += Math.min(4096, bytes.length - at);
		}
	}
	return data;
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

/** Waits until `bytes()` passes `threshold` (the run is mid-transfer), then cuts every connection of the proxy. */
async function cutAt(bytes: () => number, threshold: number, running: Promise<CliResult>): Promise<void> {
	let finished = false;
	void running.then(() => {
		finished = true;
	});
	while (!finished && bytes() < threshold) {
		await sleep(10);
	}
	assert.not.ok(finished, 'the run ended before the cut');
	proxy.cutAll();
}

/** The offsets the trace says workers resumed at. */
function resumedAt(stderr: string): number[] {
	return [...stderr.matchAll(/trace \S+ worker \d+ resumes at (\d+)/g)].map(match => Number(match[1]));
}

const traced = (): NodeJS.ProcessEnv => ({...sshd.env, RBLOCKSYNC_TRACE: '1'});

/**
 * Exit 0, DST == SRC, its holes kept, one reconnect, every worker resumed: at its last CHECKPOINT where DST's lock
 * stayed held (`checkpoints`), else at its range's start (the lock went with the link: another run may have written DST).
 */
function survived(result: CliResult, dst: string, workers: number, checkpoints: boolean): void {
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst), 'DST differs from SRC');
	assert.ok(allocated(dst) <= allocated(src) + MiB, `DST allocates ${allocated(dst)} bytes, SRC ${allocated(src)}`);
	assert.is(result.json?.['reconnects'], 1, JSON.stringify(result.json));
	assert.match(result.stderr, /warning: .*; reconnecting in 0\.5 s \(1 of 3\)/);
	const resumed = resumedAt(result.stderr);
	assert.is(resumed.length, workers, result.stderr);
	if (checkpoints) {
		assert.ok(resumed.some(offset => offset > 0), `no worker resumed past the start: ${resumed.join(', ')}`);
	} else {
		assert.match(result.stderr, /trace \S+ DST locked again/);
		assert.ok(resumed.every(offset => offset === 0 || offset === SIZE / 2), `a worker resumed at a checkpoint after DST's lock was lost: ${resumed.join(', ')}`);
	}
}

test('push: the proxy cuts every connection mid-run; DST\'s lock is taken again, and only what DST lacks is sent again', async () => {
	const dst = join(dir, 'push.img');
	const up0 = proxy.bytes.up;
	const running = runCli([src, `wan:${dst}`, '--truncate', '-w', '2', '--json'], traced(), {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.up - up0, 28 * MiB, running);
	const result = await running;
	survived(result, dst, 2, false);
	const sent = Number(result.json?.['wireBytesSent']);
	// A first copy sends SRC's data once; after the cut DST is compared again and only what it lacks goes again
	// (what was in flight), not what it holds.
	assert.ok(sent > srcData, `wire ${sent} < data ${srcData}`);
	assert.ok(sent < srcData + 16 * MiB, `wire ${sent}: more than SRC's data ${srcData} + 16 MiB was sent`);
	// DEST's digest cache is not kept after a reconnect (its holder went with the link).
	assert.match(String(result.json?.['cache']), /^off: not kept after a reconnect/);
});

test('pull: the proxy cuts SRC\'s connection mid-run', async () => {
	const remote = join(dir, 'pull-src.img');
	cpSync(src, remote);
	const dst = join(dir, 'pull.img');
	const down0 = proxy.bytes.down;
	const running = runCli([`wan:${remote}`, dst, '--truncate', '-w', '2', '--json'], traced(), {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.down - down0, 28 * MiB, running);
	const result = await running;
	survived(result, dst, 2, true);
	const received = Number(result.json?.['wireBytesReceived']);
	assert.ok(received < srcData + 16 * MiB, `wire ${received}: more than SRC's data ${srcData} + 16 MiB was received`);
	// DST here kept its lock: the resumed sessions read DST from their checkpoints only, not what the first ones wrote before.
	const read = Number(result.json?.['dstBytesRead']);
	assert.ok(read < 14 * MiB, `DST read ${read} bytes again`);
});

test('pull: SRC written while the link was down is refused after the reconnect (exit 2, SRC changed)', async () => {
	const remote = join(dir, 'changing-src.img');
	cpSync(src, remote);
	const dst = join(dir, 'changing.img');
	const down0 = proxy.bytes.down;
	const running = runCli([`wan:${remote}`, dst, '--truncate', '-w', '2', '--json'], sshd.env, {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.down - down0, 20 * MiB, running);
	// Within the first wait (0.5 s): the same size, another block.
	const fd = openSync(remote, 'r+');
	writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * 5);
	closeSync(fd);
	const result = await running;
	assert.is(result.status, 2, result.stderr);
	assert.match(result.stderr, new RegExp(`rblocksync: ssh wan: ${remote}: SRC changed during the sync; DST is not a consistent copy`));
	assert.is(result.json?.['ok'], false);
});

test('relay: SRC\'s host\'s connection is cut mid-run, DST\'s stays: resumed at the checkpoints', async () => {
	const dst = join(dir, 'relay.img');
	const down0 = proxy.bytes.down;
	const running = runCli([`wan:${src}`, `pve:${dst}`, '--truncate', '-w', '2', '--json'], traced(), {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.down - down0, 28 * MiB, running);
	const result = await running;
	survived(result, dst, 2, true);
	assert.ok(Number(result.json?.['dstBytesRead']) < 14 * MiB, String(result.json?.['dstBytesRead']));
});

test('relay: both hosts\' connections are cut mid-run', async () => {
	const dst = join(dir, 'relay2.img');
	const up0 = proxy.bytes.up;
	const running = runCli([`wan:${src}`, `wan2:${dst}`, '--truncate', '-w', '2', '--json'], traced(), {timeoutMs: 120_000});
	// The relay sends SRC's data up to DST's host: cut once a good part went up.
	await cutAt(() => proxy.bytes.up - up0, 28 * MiB, running);
	survived(await running, dst, 2, false);
});

test('the sshd session is killed mid-run: reconnected, resumed, in sync', async () => {
	const dst = join(dir, 'killed.img');
	// One worker: --bwlimit's budget is not shared evenly between workers, and each must be past its first CHECKPOINT.
	const running = runCli([src, `pve:${dst}`, '--truncate', '-w', '1', '--json', '--bwlimit', '12M'], traced(), {timeoutMs: 120_000});
	let finished = false;
	void running.then(() => {
		finished = true;
	});
	// Data flowing: DST allocates a good part.
	while (!finished && allocatedOrZero(dst) < 24 * MiB) {
		await sleep(10);
	}
	assert.not.ok(finished, 'the run ended before the kill');
	const pids = sshd.sessionPids();
	assert.ok(pids.length > 0, 'no sshd session process');
	for (const pid of pids) {
		try {
			process.kill(pid, 'SIGKILL');
		} catch {
			// Already gone.
		}
	}
	survived(await running, dst, 1, false);
});

function allocatedOrZero(path: string): number {
	try {
		return allocated(path);
	} catch {
		return 0;
	}
}

test('three cuts in a row exhaust --retries 2: exit 2 and the failed summary', async () => {
	const dst = join(dir, 'exhausted.img');
	const up0 = proxy.bytes.up;
	const running = runCli([src, `wan:${dst}`, '--truncate', '-w', '2', '--json', '--retries', '2'], sshd.env, {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.up - up0, 16 * MiB, running);
	for (let cut = 1; cut < 3; cut++) {
		// Each reconnect opens a new connection: cut it as soon as it carries the session again.
		const connections = proxy.connections;
		let finished = false;
		void running.then(() => {
			finished = true;
		});
		while (!finished && proxy.connections <= connections) {
			await sleep(10);
		}
		await sleep(300);
		proxy.cutAll();
	}
	const result = await running;
	assert.is(result.status, 2, result.stderr);
	assert.match(result.stderr, /rblocksync: ssh wan: .*before the sync finished; DST may be partially updated\n$/);
	// Two attempts (a cut may land inside one, before it reconnected), then the drop's own error.
	assert.is([...result.stderr.matchAll(/warning: .*; reconnecting in [\d.]+ s \((\d) of 2\)/g)].map(match => match[1]).join(','), '1,2', result.stderr);
	assert.is(result.json?.['ok'], false);
	assert.match(String(result.json?.['error']), /DST may be partially updated$/);
	assert.ok(typeof result.json?.['reconnects'] === 'number' && result.json['reconnects'] <= 2, String(result.json?.['reconnects']));
});

test('--retries 0 keeps a dropped link fatal: exit 2, no reconnect', async () => {
	const dst = join(dir, 'noretry.img');
	const up0 = proxy.bytes.up;
	const connections = proxy.connections;
	const running = runCli([src, `wan:${dst}`, '--truncate', '-w', '2', '--json', '--retries', '0'], traced(), {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.up - up0, 16 * MiB, running);
	const result = await running;
	assert.is(result.status, 2, result.stderr);
	// Today's run: no CHECKPOINT asked for (DEST syncs only at its end), one line of error.
	assert.not.match(result.stderr, / checkpoint \d+/);
	const lines = result.stderr.split('\n').filter(line => line !== '' && !line.startsWith('rblocksync: trace '));
	assert.is(lines.length, 1, result.stderr);
	assert.match(lines[0]!, /^rblocksync: ssh wan: .*DST may be partially updated$/);
	assert.is(result.json?.['reconnects'], 0);
	assert.is(proxy.connections, connections + 1, 'it connected again');
});

test('a host key that changed between attempts is refused: exit 1, no second attempt', async () => {
	const home = join(dir, 'home-changed');
	cpSync(sshd.home, home, {recursive: true});
	const env = {...sshd.env, HOME: home};
	const dst = join(dir, 'changed.img');
	const up0 = proxy.bytes.up;
	const connections = proxy.connections;
	const running = runCli([src, `wan:${dst}`, '--truncate', '-w', '2', '--json'], env, {timeoutMs: 120_000});
	await cutAt(() => proxy.bytes.up - up0, 16 * MiB, running);
	// Another key for the proxy's address, as a host reinstalled (or a man in the middle) would offer.
	const knownHosts = join(home, '.ssh/known_hosts');
	const other = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
	writeFileSync(knownHosts, readFileSync(knownHosts, 'utf8').replace(new RegExp(`^(\\[127\\.0\\.0\\.1\\]:${proxy.port} \\S+) \\S+$`, 'm'), `$1 ${other}`));
	const result = await running;
	assert.is(result.status, 1, result.stderr);
	assert.match(result.stderr, /rblocksync: ssh wan: THE HOST KEY OF wan .* HAS CHANGED: .*refusing to connect/);
	assert.is(result.json?.['ok'], false);
	assert.is(proxy.connections, connections + 2, 'one connection, then one attempt');
});

test.run();
