// A signal ends any run within 5 s with exit 130, in every phase: connecting (to a port that never speaks SSH),
// the handshake (an agent that never says HELLO) and mid-session; DST is untouched before it was opened, and no
// agent is left on the host (closing the SSH channels ends the agents).
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {existsSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {Sshd} from '../helpers/sshd.js';
import {belowSshd, type FaultBench, leftBehind, type Running, silentServer, sleep, startFaultBench, startRun, waitFor} from '../helpers/hung-peers.js';

const test = suite('signals in every phase');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;
let src: string;
let big: string;
const DST_BYTES = Buffer.alloc(MiB, 0xa5);

let bench: FaultBench;

test.before(async () => {
	bench = await startFaultBench('rbs-signals-');
	({sshd, dir, src, big} = bench);
});

test.after(async () => {
	await bench.stop();
});

/** Sends `signal` to the run; asserts exit 130 within 5 s, the one line, and the --json summary. */
async function interrupt(run: Running, signal: NodeJS.Signals, line: string): Promise<void> {
	assert.not.ok(run.ended, 'the run ended before it could be interrupted');
	const sentAt = Date.now();
	process.kill(run.pid, signal);
	const result = await run.done;
	const seconds = (result.endedAt - sentAt) / 1000;
	assert.is(result.status, 130, `status ${result.status} (signal ${result.signal}); stderr: ${result.stderr}`);
	assert.is(result.stderr, `${line}\n`);
	assert.ok(seconds < 5, `took ${seconds.toFixed(2)} s to stop`);
	assert.is(result.json?.['ok'], false, result.stdout);
	assert.is(result.json?.['error'], line.replace(/^rblocksync: /, ''));
	const left = await leftBehind(sshd);
	assert.equal(left.map(row => `${row.pid} ${row.args}`), [], 'processes left below the test sshd');
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
	test(`should end on ${signal} while connecting to a port that never speaks SSH`, async () => {
		const server = await silentServer();
		try {
			const run = startRun([src, `ssh://root@127.0.0.1:${server.port}${join(dir, 'never.img')}`, '--json'], sshd.env);
			assert.ok(await waitFor(() => server.accepted > 0 || run.ended), 'no connection came');
			await sleep(200);
			await interrupt(run, signal, 'rblocksync: interrupted before DST was opened; DST untouched');
		} finally {
			await server.close();
		}
	});

	test(`should end on ${signal} during the handshake with an agent that never says HELLO, DST untouched`, async () => {
		const dst = join(dir, `mute-${signal}.img`);
		writeFileSync(dst, DST_BYTES);
		const run = startRun([src, `pveextra:${dst}`, '--json'], sshd.env);
		assert.ok(await waitFor(() => run.ended || belowSshd(sshd).some(row => row.args === 'cat')), 'the mute agent never started');
		await sleep(200);
		await interrupt(run, signal, 'rblocksync: interrupted before DST was opened; DST untouched');
		assert.ok(readFileSync(dst).equals(DST_BYTES), 'DST changed');
	});

	test(`should end on ${signal} mid-session, leaving no agent`, async () => {
		const dst = join(dir, `mid-${signal}.img`);
		const run = startRun([`pve:${big}`, dst, '--truncate', '-w', '2', '--json'], sshd.env);
		assert.ok(await waitFor(() => run.ended || (existsSync(dst) && statSync(dst).blocks > 16 * 1024 * 2)), 'the sync never got going');
		await interrupt(run, signal, 'rblocksync: interrupted; DST may be partially updated');
	});
}

test.run();
