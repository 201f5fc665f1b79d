// Nothing hangs, nothing crashes: a host that does not resolve or refuses, a port that never speaks SSH, an agent
// that never says HELLO and one stopped mid-session each end the run in bounded time with one line, the
// documented exit status, the --json summary (ok: false), DST untouched where promised and no agent left behind.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {existsSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {Sshd} from '../helpers/sshd.js';
import {belowSshd, closedPort, type Ended, type FaultBench, installHelloOnlyAgent, installMuteAgent, leftBehind, silentServer, startFaultBench, startRun, waitFor} from '../helpers/hung-peers.js';

const test = suite('bounded waits');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;
let src: string;
let big: string;
const DST_BYTES = Buffer.alloc(MiB, 0x5a);

let bench: FaultBench;

test.before(async () => {
	bench = await startFaultBench('rbs-timeouts-');
	({sshd, dir, src, big} = bench);
});

test.after(async () => {
	await bench.stop();
});

/** A DST that holds known bytes, to show that a failed run did not touch it. */
function dstWithBytes(name: string): string {
	const path = join(dir, name);
	writeFileSync(path, DST_BYTES);
	return path;
}

/** One line on stderr, the status, and the time it took (seconds). */
function assertEnded(result: Ended, startedAt: number, status: number, line: RegExp | string, within: [number, number]): void {
	assert.is(result.status, status, `status ${result.status} (signal ${result.signal}); stderr: ${result.stderr}`);
	assert.not.match(result.stderr, /Unhandled|node:events|\n {4}at /, result.stderr);
	assert.is(result.stderr.split('\n').filter(Boolean).length, 1, result.stderr);
	if (typeof line === 'string') {
		assert.is(result.stderr, `${line}\n`);
	} else {
		assert.match(result.stderr, line);
	}
	const seconds = (result.endedAt - startedAt) / 1000;
	assert.ok(seconds >= within[0] && seconds <= within[1], `ended after ${seconds.toFixed(2)} s, not within ${within[0]}-${within[1]} s`);
}

async function assertNoAgentLeft(): Promise<void> {
	const left = await leftBehind(sshd);
	assert.equal(left.map(row => `${row.pid} ${row.args}`), [], 'processes left below the test sshd');
}

for (const [name, bad] of [['does not resolve', 'nosuch.invalid'], ['refuses the connection', 'refused']] as const) {
	for (const side of ['DST', 'SRC'] as const) {
		test(`should end a relay whose ${side} host ${name}, with exit 1, one line and no agent left on the other host`, async () => {
			const port = await closedPort();
			const badSpec = bad === 'refused' ? `ssh://root@127.0.0.1:${port}${join(dir, 'never.img')}` : `${bad}:${join(dir, 'never.img')}`;
			const dst = dstWithBytes(`relay-${bad}-${side}.img`);
			const args = side === 'DST' ? [`pve:${src}`, badSpec] : [badSpec, `pve:${dst}`];
			const run = startRun([...args, '--timeout', '2', '--json'], sshd.env);
			const result = await run.done;
			const where = bad === 'refused' ? `ssh 127\\.0\\.0\\.1: cannot connect to 127\\.0\\.0\\.1 port ${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}` : 'ssh nosuch\\.invalid: cannot connect to nosuch\\.invalid port 22: .+';
			assertEnded(result, run.startedAt, 1, new RegExp(`^rblocksync: ${where}\\n$`), [0, 4]);
			assert.is(result.json?.['ok'], false, result.stdout);
			assert.is(result.json?.['error'], result.stderr.replace(/^rblocksync: /, '').trim());
			assert.ok(readFileSync(dst).equals(DST_BYTES), 'DST changed');
			assert.not.ok(existsSync(join(dir, 'never.img')));
			await assertNoAgentLeft();
		});
	}
}

for (const json of [false, true]) {
	test(`should end a push to a port that accepts and never speaks SSH within the --timeout, one line${json ? ' and the --json summary' : ''}`, async () => {
		const server = await silentServer();
		try {
			const run = startRun([src, `ssh://root@127.0.0.1:${server.port}${join(dir, 'silent.img')}`, '--timeout', '2', ...(json ? ['--json'] : [])], sshd.env);
			const result = await run.done;
			const line = `rblocksync: ssh 127.0.0.1: 127.0.0.1 port ${server.port} accepted the connection but completed no SSH handshake within 2 s`;
			assertEnded(result, run.startedAt, 1, line, [1.9, 6]);
			assert.is(server.accepted, 1);
			if (json) {
				assert.is(result.stdout.trim().split('\n').length, 1, result.stdout);
				assert.is(result.json?.['ok'], false);
				assert.is(result.json?.['error'], line.replace(/^rblocksync: /, ''));
				assert.is(result.json?.['direction'], 'push');
				assert.is(result.json?.['bytesWritten'], 0);
			} else {
				assert.is(result.stdout, '');
			}
		} finally {
			await server.close();
		}
	});
}

test('should end a relay whose DST port never speaks SSH, leaving no agent on SRC\'s host', async () => {
	const server = await silentServer();
	try {
		const run = startRun([`pve:${src}`, `ssh://root@127.0.0.1:${server.port}${join(dir, 'silent.img')}`, '--timeout', '2', '--json'], sshd.env);
		const result = await run.done;
		assertEnded(result, run.startedAt, 1, `rblocksync: ssh 127.0.0.1: 127.0.0.1 port ${server.port} accepted the connection but completed no SSH handshake within 2 s`, [1.9, 6]);
		assert.is(result.json?.['ok'], false);
		await assertNoAgentLeft();
	} finally {
		await server.close();
	}
});

test('should end a push to an agent that never answers HELLO within the --timeout, DST untouched', async () => {
	const dst = dstWithBytes('mute.img');
	const run = startRun([src, `pveextra:${dst}`, '--timeout', '2', '--json'], sshd.env);
	const result = await run.done;
	assertEnded(result, run.startedAt, 1, 'rblocksync: ssh pveextra: the agent did not answer HELLO within 2 s', [1.9, 6]);
	assert.is(result.json?.['ok'], false);
	assert.ok(readFileSync(dst).equals(DST_BYTES), 'DST changed');
	await assertNoAgentLeft();
});

test('should end a push to an agent that answers HELLO and never OPEN within the --timeout, DST untouched', async () => {
	installHelloOnlyAgent(sshd);
	try {
		const dst = dstWithBytes('hello-only.img');
		const run = startRun([src, `pveextra:${dst}`, '--timeout', '2', '--json'], sshd.env);
		const result = await run.done;
		assertEnded(result, run.startedAt, 1, 'rblocksync: ssh pveextra: the agent did not answer OPEN within 2 s', [1.9, 6]);
		assert.is(result.json?.['ok'], false);
		assert.ok(readFileSync(dst).equals(DST_BYTES), 'DST changed');
		await assertNoAgentLeft();
	} finally {
		installMuteAgent(sshd);
	}
});

for (const [role, direction] of [['SOURCE', 'pull'], ['DEST', 'push']] as const) {
	test(`should end a ${direction} whose ${role} agent is stopped mid-session (SIGSTOP) with exit 2, naming host and role`, async () => {
		const target = join(dir, `stopped-${role}.img`);
		const args = direction === 'pull' ? [`pve:${big}`, target] : [big, `pve:${target}`];
		const run = startRun([...args, '--truncate', '--timeout', '2', '-w', '1', '--json'], sshd.env);
		const flowing = await waitFor(() => run.ended || (existsSync(target) && statSync(target).blocks > 16 * 1024 * 2));
		assert.ok(flowing && !run.ended, 'the sync never got going, or ended before it could be stopped; make the image larger');
		const stopped = belowSshd(sshd).map(row => row.pid);
		assert.ok(stopped.length > 0, 'no agent found below the test sshd');
		stopped.forEach(pid => process.kill(pid, 'SIGSTOP'));
		const stoppedAt = Date.now();
		let result: Ended;
		try {
			result = await run.done;
		} finally {
			stopped.forEach(pid => process.kill(pid, 'SIGCONT'));
		}
		// The silence counts from the last frame: what was in flight when the agents stopped is handled first (up to ~2 s here under load).
		assertEnded(result, stoppedAt, 2, `rblocksync: ssh pve: ${role} sent nothing for 2 s; DST may be partially updated`, [1.9, 8]);
		assert.is(result.json?.['ok'], false);
		assert.ok((result.json?.['bytesWritten'] as number) > 0, 'the summary tells how far it got');
		// Continued, the agents find their channels closed and end.
		await assertNoAgentLeft();
	});
}

test('should refuse a --timeout that is not a number of seconds with one line and, with --json, an ok:false object', async () => {
	const run = startRun(['--timeout', '0', '--json', src, `pve:${join(dir, 'never.img')}`], sshd.env);
	const result = await run.done;
	assertEnded(result, run.startedAt, 1, 'rblocksync: --timeout must be a whole number of seconds from 1 to 86400; got 0', [0, 4]);
	assert.equal(result.json, {ok: false, error: '--timeout must be a whole number of seconds from 1 to 86400; got 0'});
});

test.run();
