// SIGINT/SIGTERM during a long sync: exit 130, "interrupted; DST may be partially updated", never a success.
import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, startCli} from '../helpers/cli.js';
import {makeTempDir, MiB, removeTempDir} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';
import {callsOn, callsOnFile, opensOf, startTracedCli} from '../helpers/strace.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

type Context = {dir: string; src: string; sshd?: Sshd};
const interrupt = suite<Context>('interrupt', {dir: '', src: ''});
const SIZE = 2048 * MiB;

interrupt.before(context => {
	// On tmpfs when there is one: gigabytes written here need not reach (and load) the disk.
	context.dir = makeTempDir('rblocksync-e2e-', fs.existsSync('/dev/shm') ? '/dev/shm' : undefined);
	context.src = path.join(context.dir, 'big.img');
	// 2 GiB of non-zero data: one 32 MiB random chunk written 64 times (fast to make, all blocks non-zero).
	const chunk = randomBytes(32 * MiB);
	const fd = fs.openSync(context.src, 'w');
	try {
		for (let at = 0; at < SIZE; at += chunk.length) {
			fs.writeSync(fd, chunk, 0, chunk.length, at);
		}
	} finally {
		fs.closeSync(fd);
	}
});

/** Until DST holds data (a loaded machine may take a while to write its first chunk), then a little more. */
async function dataWritten(dst: string): Promise<void> {
	for (let waited = 0; waited < 30_000 && !(fs.existsSync(dst) && fs.statSync(dst).blocks > 0); waited += 20) {
		await sleep(20);
	}
	await sleep(100);
}

/** From a traced run: DST was written, and flushed after its last write and before the "interrupted" line. */
function assertFlushedBeforeMessage(calls: Parameters<typeof callsOnFile>[0], dst: string, stderr: string): void {
	const writes = callsOnFile(calls, ['pwrite64', 'pwritev'], dst).map(call => call.index);
	const flushes = callsOnFile(calls, ['fdatasync', 'fsync'], dst).map(call => call.index);
	const message = calls.findIndex(call => call.name === 'write' && /^2(<[^>]*>)?, /.test(call.args) && call.args.includes('interrupted'));
	assert.ok(writes.length > 0, 'nothing was written before the signal');
	assert.ok(message > 0, `no "interrupted" message: ${stderr}`);
	assert.ok(flushes.some(f => f > Math.max(...writes) && f < message), `DST was not flushed after its last write (${Math.max(...writes)}) and before the message (${message}); flushes at ${flushes.join(', ')}`);
}

interrupt.after(async context => {
	await context.sshd?.stop();
	removeTempDir(context.dir);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
	interrupt(`should stop on ${signal}, exit 130 and never report success`, async context => {
		const dst = path.join(context.dir, `dst-${signal}.img`);
		const cli = startCli(['--truncate', '--json', '--progress', 'plain', context.src, dst]);
		await cli.waitForStderr(/^syncing /m);
		await dataWritten(dst);
		assert.is(cli.child.exitCode, null, 'the sync ended before it could be interrupted; make the image larger');
		const sentAt = Date.now();
		cli.child.kill(signal);
		const result = await cli.done;
		const stopSeconds = (Date.now() - sentAt) / 1000;
		assert.is(result.code, 130, `exit ${result.code} (signal ${result.signal}); stderr: ${result.stderr}`);
		assert.match(result.stderr, /^rblocksync: interrupted; DST may be partially updated$/m);
		assert.not.match(result.stderr, /in sync/);
		assert.ok(result.json === undefined || result.json.ok === false, `a success summary was printed: ${result.stdout}`);
		assert.ok(stopSeconds < 10, `took ${stopSeconds} s to stop`);
		assert.is(fs.statSync(dst).size, SIZE, 'DST was created at SRC size before the sync began');
	});
}

interrupt('should have kept, flushed and correct, what was written before the interruption', async context => {
	const dst = path.join(context.dir, 'dst-SIGINT.img');
	assert.ok(fs.existsSync(dst), 'runs after the SIGINT test');
	// A dry run (no 2 GiB flush to disk): blocks found equal were written before the signal.
	const result = runCli(['--dry-run', '--json', '--quiet', context.src, dst], {timeoutMs: 120_000});
	assert.is(result.code, 0, result.stderr);
	assert.ok(result.json!.blocksChanged < result.json!.blocksTotal, 'nothing written before the interruption was kept');
	assert.ok(result.json!.blocksChanged > 0, 'the sync was not interrupted');
});

interrupt('should flush what it wrote to DST before exiting 130 (traced)', async context => {
	if (spawnSync('strace', ['-V']).status !== 0) {
		return skip(context, 'strace is not installed (apt-get install strace)');
	}
	const dst = path.join(context.dir, 'dst-traced.img');
	const traced = startTracedCli(['--truncate', '--progress', 'plain', context.src, dst], context.dir);
	await traced.waitForStderr(/^syncing /m);
	await dataWritten(dst);
	traced.kill('SIGINT');
	const {code, stderr, calls} = await traced.done;
	assert.is(code, 130, stderr);
	const [open] = opensOf(calls, dst).filter(o => o.flags.includes('O_RDWR'));
	assert.ok(open, 'DST was never opened for writing');
	const writes = callsOn(calls, ['pwrite64', 'pwritev'], open.fd, open.index);
	const flushes = callsOn(calls, ['fdatasync', 'fsync'], open.fd, open.index);
	const message = calls.findIndex(call => call.name === 'write' && call.args.startsWith('2, ') && call.args.includes('interrupted'));
	assert.ok(writes.length > 0, 'nothing was written before the signal');
	assert.ok(message > 0, 'no "interrupted" message');
	assert.ok(flushes.some(f => f > Math.max(...writes) && f < message), 'DST was not flushed after its last write and before exiting');
});

interrupt('should flush what a pull wrote to its local DST before exiting 130 (traced: DEST in this process)', async context => {
	if (spawnSync('strace', ['-V']).status !== 0) {
		return skip(context, 'strace is not installed (apt-get install strace)');
	}
	context.sshd ??= await startSshd();
	const dst = path.join(context.dir, 'dst-pulled.img');
	fs.writeFileSync(dst, '');
	fs.truncateSync(dst, SIZE);
	// DST exists (a worker thread's DEST, writing through its own fd); no digest cache, so nothing but the data is written.
	const traced = startTracedCli(['--no-cache', '--progress', 'plain', `pve:${context.src}`, dst], context.dir, {fdPaths: true, env: context.sshd.env});
	await traced.waitForStderr(/^syncing /m);
	await dataWritten(dst);
	traced.kill('SIGINT');
	const {code, stderr, calls} = await traced.done;
	assert.is(code, 130, stderr);
	assertFlushedBeforeMessage(calls, dst, stderr);
});

interrupt('should flush what a pull over many files wrote to a local DST before exiting 130 (traced)', async context => {
	if (spawnSync('strace', ['-V']).status !== 0) {
		return skip(context, 'strace is not installed (apt-get install strace)');
	}
	context.sshd ??= await startSshd();
	const tree = path.join(context.dir, 'tree');
	const into = path.join(context.dir, 'into');
	fs.mkdirSync(tree, {recursive: true});
	fs.mkdirSync(into, {recursive: true});
	fs.linkSync(context.src, path.join(tree, 'big.img'));
	const dst = path.join(into, 'big.img');
	fs.writeFileSync(dst, '');
	fs.truncateSync(dst, SIZE);
	const traced = startTracedCli(['--no-cache', '--progress', 'plain', '-r', `pve:${tree}/`, `${into}/`], context.dir, {fdPaths: true, env: context.sshd.env});
	await dataWritten(dst);
	traced.kill('SIGINT');
	const {code, stderr, calls} = await traced.done;
	assert.is(code, 130, stderr);
	assertFlushedBeforeMessage(calls, dst, stderr);
});

interrupt.run();
