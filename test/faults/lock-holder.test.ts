// The agent holding a remote DST's lock is killed mid-run: the run must fail at once (exit 2), and no second
// run may write DST while anything of the first one still can (its workers keep the lock: lock-holder.ts).
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {belowSshd, type Sshd, startSshd} from '../helpers/sshd.js';
import {type CliResult, makeImage, runCli} from '../helpers/remote-images.js';

const test = suite('DST lock holder');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;
let srcA: string;
let srcB: string;

test.before(async () => {
	sshd = await startSshd();
	// On tmpfs when there is one: the images need not reach a disk.
	dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rbs-lock-holder-'));
	srcA = join(dir, 'a.img');
	srcB = join(dir, 'b.img');
	makeImage(srcA, 512 * MiB, {zeroEvery: 0, holeEvery: 0});
	makeImage(srcB, 512 * MiB, {zeroEvery: 0, holeEvery: 0});
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

/** The processes below the test sshd (the agents), sshd's own excepted. */
function agents(): Set<number> {
	return new Set(belowSshd(sshd).map(row => row.pid));
}

/** The pid that took DST's exclusive flock (/proc/locks), when an agent of the test sshd holds one. */
function lockHolder(path: string): number | undefined {
	const inode = statSync(path).ino;
	const line = readFileSync('/proc/locks', 'utf8').split('\n').find(row => /\bFLOCK\s+ADVISORY\s+WRITE\b/.test(row) && row.includes(`:${inode} `));
	const pid = line ? Number(line.trim().split(/\s+/)[4]) : undefined;
	return pid !== undefined && agents().has(pid) ? pid : undefined;
}

async function sleep(ms: number): Promise<void> {
	return new Promise(resolve => setTimeout(resolve, ms));
}

/** Starts a push of SRC A onto `dst` with two workers; resolves once data is flowing and the holder is known. */
/** `retries`: --retries (today's fatal end of a holder: 0). */
async function startPush(dst: string, onStart?: (pid: number) => void, retries = '0'): Promise<{running: Promise<CliResult>; holder: number; ended: () => boolean}> {
	let ended = false;
	const running = runCli([srcA, `pve:${dst}`, '--truncate', '-q', '-w', '2', '--retries', retries], sshd.env, {...(onStart ? {onStart} : {}), timeoutMs: 60_000}).finally(() => {
		ended = true;
	});
	let holder: number | undefined;
	for (let waited = 0; waited < 20_000 && !ended; waited += 20) {
		holder ??= existsSync(dst) ? lockHolder(dst) : undefined;
		if (holder !== undefined && statSync(dst).blocks * 512 >= 16 * MiB) {
			break;
		}
		await sleep(20);
	}
	assert.ok(holder !== undefined && !ended, 'no agent held DST\'s lock while the first run wrote; make the image larger');
	return {running, holder, ended: () => ended};
}

const lockedMessage = (dst: string): string => `rblocksync: ssh pve: DST ${dst} is locked by another process (another rblocksync run?); try again when it has finished\n`;
const holderEnded = 'rblocksync: ssh pve: the agent holding DST\'s lock ended (killed by signal KILL); DST may be partially updated\n';

test('should fail with exit 2 at once when the agent holding DST\'s lock is killed, and never let a second run write alongside', async () => {
	const dst = join(dir, 'killed.img');
	const first = await startPush(dst);
	process.kill(first.holder, 'SIGKILL');
	const killed = Date.now();
	const second = runCli([srcB, `pve:${dst}`, '-q', '-w', '2'], sshd.env);
	const done = await first.running;
	assert.is(done.status, 2, done.stderr);
	assert.is(done.stderr, holderEnded);
	assert.ok(Date.now() - killed < 5000, `the first run took ${Date.now() - killed} ms to stop`);
	const after = await second;
	if (after.status === 1) {
		assert.is(after.stderr, lockedMessage(dst));
	} else {
		// It got the lock: only once nothing of the first run could write any more, so DST is B throughout.
		assert.is(after.status, 0, after.stderr);
		assert.ok(readFileSync(dst).equals(readFileSync(srcB)), 'DST is neither SRC: two runs wrote it at once');
	}
});

test('with --retries, should take DST\'s lock again after its holder was killed, or fail writing nothing when another run took it first', async () => {
	const dst = join(dir, 'retaken.img');
	const first = await startPush(dst, undefined, '3');
	process.kill(first.holder, 'SIGKILL');
	const second = runCli([srcB, `pve:${dst}`, '-q', '-w', '2', '--retries', '0'], sshd.env);
	const [done, after] = await Promise.all([first.running, second]);
	// Never both: one of the two runs holds DST's lock to its end, the other is refused.
	if (done.status === 0) {
		assert.is(after.status, 1, after.stderr);
		assert.is(after.stderr, lockedMessage(dst));
		assert.ok(readFileSync(dst).equals(readFileSync(srcA)), 'DST is not SRC A');
	} else {
		assert.is(done.status, 2, done.stderr);
		assert.match(done.stderr, new RegExp(`rblocksync: ssh pve: DST ${dst} is locked by another process .*; DST may be partially updated\n$`));
		assert.is(after.status, 0, after.stderr);
		assert.ok(readFileSync(dst).equals(readFileSync(srcB)), 'DST is not SRC B: two runs wrote it at once');
	}
});

test('should keep DST locked by the workers while the first run cannot stop them, and fail that run once it can', async () => {
	const dst = join(dir, 'stopped.img');
	let driver = 0;
	const first = await startPush(dst, pid => {
		driver = pid;
	});
	// The driver cannot react (stopped) and its lock holder is gone: its workers still hold the lock.
	process.kill(driver, 'SIGSTOP');
	let done: CliResult;
	try {
		process.kill(first.holder, 'SIGKILL');
		const second = await runCli([srcB, `pve:${dst}`, '-q', '-w', '2'], sshd.env);
		assert.is(second.status, 1, second.stderr);
		assert.is(second.stderr, lockedMessage(dst));
		const dryRun = await runCli([srcB, `pve:${dst}`, '-q', '--dry-run'], sshd.env);
		assert.is(dryRun.status, 1, dryRun.stderr);
	} finally {
		process.kill(driver, 'SIGCONT');
		done = await first.running;
	}
	assert.is(done.status, 2, done.stderr);
	assert.is(done.stderr, holderEnded);
	// Once the first run is over, its workers let go of DST.
	let third: CliResult | undefined;
	for (let attempt = 0; attempt < 50 && third?.status !== 0; attempt++) {
		third = await runCli([srcB, `pve:${dst}`, '-q', '-w', '2'], sshd.env);
		if (third.status !== 0) {
			assert.is(third.stderr, lockedMessage(dst));
			await sleep(100);
		}
	}
	assert.is(third?.status, 0, third?.stderr);
	assert.ok(readFileSync(dst).equals(readFileSync(srcB)));
});

test.run();
