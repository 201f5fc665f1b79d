import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {execFileSync, spawnSync} from 'node:child_process';
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {belowSshd, type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, runCli} from '../helpers/remote-images.js';
import {holdLock} from '../helpers/lock.js';

const test = suite('SSH faults');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-faults-'));
});

test.after(async () => {
	for (const mount of ['full', 'ro']) {
		spawnSync('umount', [join(dir, mount)]);
	}
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

/** A copy of the harness HOME with another known_hosts (and optionally another config). */
function homeWith(name: string, knownHosts: string, config?: string): NodeJS.ProcessEnv {
	const home = join(dir, name);
	cpSync(sshd.home, home, {recursive: true});
	writeFileSync(join(home, '.ssh/known_hosts'), knownHosts);
	if (config !== undefined) {
		writeFileSync(join(home, '.ssh/config'), config);
	}
	return {...sshd.env, HOME: home};
}

/** Every process below sshd that is not sshd itself: the agents. */
function agents(): number[] {
	return belowSshd(sshd).map(row => row.pid);
}

function oneLine(stderr: string): void {
	assert.is(stderr.trim().split('\n').length, 1, stderr);
}

test('should refuse an unknown host key with its fingerprint and the line to add, and append it when asked', async () => {
	const env = homeWith('unknown', '');
	const src = join(dir, 'small.img');
	makeImage(src, MiB);
	const refused = await runCli([src, `pve:${join(dir, 'unknown-dst.img')}`, '--truncate', '-q'], env);
	assert.is(refused.status, 1);
	oneLine(refused.stderr);
	assert.match(refused.stderr, /host key of pve \(127\.0\.0\.1 port \d+\) is not known \(ssh-ed25519 key fingerprint SHA256:[A-Za-z0-9+/]{43}\)/);
	assert.ok(refused.stderr.includes(sshd.hostKeyLine), refused.stderr);
	assert.not.ok(existsSync(join(dir, 'unknown-dst.img')));
	const accepted = await runCli([src, `pve:${join(dir, 'unknown-dst.img')}`, '--truncate', '-q', '--accept-new-host-key'], env);
	assert.is(accepted.status, 0, accepted.stderr);
	// Debian's /etc/ssh/ssh_config says HashKnownHosts yes: the line is added hashed, as ssh would.
	const added = readFileSync(join(env['HOME']!, '.ssh/known_hosts'), 'utf8');
	const [, type, key] = sshd.hostKeyLine.split(' ');
	assert.ok(added.includes(`${type} ${key}`), added);
	assert.is(added.includes('127.0.0.1'), !/^\s*HashKnownHosts\s+yes/im.test(readFileSync('/etc/ssh/ssh_config', 'utf8')), added);
	const again = await runCli([src, `pve:${join(dir, 'unknown-dst.img')}`, '-q'], env);
	assert.is(again.status, 0, `the added line must be found the next time: ${again.stderr}`);
});

test('should always refuse a changed host key', async () => {
	const other = sshd.hostKeyLine.replace(/ \S+$/, ' AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl');
	const env = homeWith('changed', `${other}\n`);
	const result = await runCli([join(dir, 'small.img'), `pve:${join(dir, 'changed-dst.img')}`, '--truncate', '-q', '--accept-new-host-key'], env);
	assert.is(result.status, 1);
	oneLine(result.stderr);
	assert.match(result.stderr, /THE HOST KEY OF pve .* HAS CHANGED: .* does not match line 1 of/);
	assert.not.ok(existsSync(join(dir, 'changed-dst.img')));
});

test('should refuse a key the server does not accept', async () => {
	const home = join(dir, 'wrongkey');
	const env = homeWith('wrongkey', readFileSync(join(sshd.home, '.ssh/known_hosts'), 'utf8'));
	execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(home, '.ssh/stranger')]);
	const config = readFileSync(join(home, '.ssh/config'), 'utf8').replace(/IdentityFile ~\/\.ssh\/id_installed/, 'IdentityFile ~/.ssh/stranger');
	writeFileSync(join(home, '.ssh/config'), config);
	const result = await runCli([join(dir, 'small.img'), `pve:${join(dir, 'wrongkey-dst.img')}`, '--truncate', '-q'], env);
	assert.is(result.status, 1);
	oneLine(result.stderr);
	assert.match(result.stderr, /^rblocksync: ssh pve: authentication failed for root@127\.0\.0\.1 \(tried .*stranger\)/);
	assert.not.ok(existsSync(join(dir, 'wrongkey-dst.img')));
});

test('should refuse a missing remote SRC, a missing DST directory and a read-only DST with exit 1', async () => {
	const missing = await runCli([`pve:${join(dir, 'nope.img')}`, join(dir, 'nope-back.img'), '--truncate', '-q'], sshd.env);
	assert.is(missing.status, 1);
	assert.is(missing.stderr, `rblocksync: ssh pve: SRC ${join(dir, 'nope.img')}: no such file or directory\n`);
	assert.not.ok(existsSync(join(dir, 'nope-back.img')));
	const noDir = await runCli([join(dir, 'small.img'), `pve:${join(dir, 'no/such/dir.img')}`, '--truncate', '-q'], sshd.env);
	assert.is(noDir.status, 1);
	oneLine(noDir.stderr);
	assert.match(noDir.stderr, /^rblocksync: ssh pve: DST .*no\/such\/dir\.img: cannot create it in .*: no such file or directory/);
	const noTruncate = await runCli([join(dir, 'small.img'), `pve:${join(dir, 'absent.img')}`, '-q'], sshd.env);
	assert.is(noTruncate.status, 1);
	assert.is(noTruncate.stderr, `rblocksync: ssh pve: DST ${join(dir, 'absent.img')} does not exist; use --truncate to create it\n`);
	const ro = join(dir, 'ro');
	mkdirSync(ro);
	writeFileSync(join(dir, 'ro-seed.img'), Buffer.alloc(MiB));
	execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', ro]);
	cpSync(join(dir, 'ro-seed.img'), join(ro, 'dst.img'));
	execFileSync('mount', ['-o', 'remount,ro', ro]);
	const readOnly = await runCli([join(dir, 'small.img'), `pve:${join(ro, 'dst.img')}`, '-q'], sshd.env);
	assert.is(readOnly.status, 1);
	assert.is(readOnly.stderr, `rblocksync: ssh pve: DST ${join(ro, 'dst.img')}: read-only file system\n`);
});

test('should refuse a remote SRC and DST that are the same file, writing nothing', async () => {
	const src = join(dir, 'same.img');
	makeImage(src, MiB);
	const before = readFileSync(src);
	const result = await runCli([`pve:${src}`, `pve:${dir}/./same.img`, '-q'], sshd.env);
	assert.is(result.status, 1);
	assert.is(result.stderr, `rblocksync: ssh pve: SRC and DST are the same file: ${dir}/./same.img\n`);
	assert.ok(readFileSync(src).equals(before));
	// The same machine reached as "remote" by a push: caught by the boot id, whatever the names.
	const push = await runCli([src, `pve2:${dir}/./same.img`, '-q'], sshd.env);
	assert.is(push.status, 1);
	assert.is(push.stderr, `rblocksync: ssh pve2: SRC and DST are the same file: ${dir}/./same.img\n`);
});

test('should refuse a remote DST that another run holds locked, writing nothing', async () => {
	const src = join(dir, 'lock-src.img');
	const dst = join(dir, 'lock-dst.img');
	makeImage(src, 2 * MiB);
	writeFileSync(dst, Buffer.alloc(2 * MiB, 7));
	const lock = await holdLock(dst);
	try {
		const result = await runCli([src, `pve:${dst}`, '-q'], sshd.env);
		assert.is(result.status, 1);
		assert.is(result.stderr, `rblocksync: ssh pve: DST ${dst} is locked by another process (another rblocksync run?); try again when it has finished\n`);
		assert.ok(readFileSync(dst).equals(Buffer.alloc(2 * MiB, 7)));
	} finally {
		await lock.release();
	}
});

test('should keep a second run off a remote DST while a first one writes it, to its last worker', async () => {
	const src = join(dir, 'busy-src.img');
	const dst = join(dir, 'busy-dst.img');
	makeImage(src, 512 * MiB, {zeroEvery: 0, holeEvery: 0});
	let firstEnded = false;
	const first = runCli([src, `pve:${dst}`, '--truncate', '-q', '-w', '2'], sshd.env).finally(() => {
		firstEnded = true;
	});
	for (let waited = 0; waited < 20_000 && !(existsSync(dst) && statSync(dst).blocks * 512 >= 16 * MiB); waited += 20) {
		await new Promise(resolve => setTimeout(resolve, 20));
	}
	const [second, dryRun] = await Promise.all([runCli([src, `pve:${dst}`, '-q'], sshd.env), runCli([src, `pve:${dst}`, '-q', '--dry-run'], sshd.env)]);
	assert.not.ok(firstEnded, 'the first run ended before the others were refused; make the image larger');
	const done = await first;
	assert.ok(statSync(dst).blocks * 512 >= 16 * MiB, 'the first run never got going');
	assert.is(second.status, 1, second.stderr);
	assert.is(second.stderr, `rblocksync: ssh pve: DST ${dst} is locked by another process (another rblocksync run?); try again when it has finished\n`);
	assert.is(dryRun.status, 1, dryRun.stderr);
	assert.is(done.status, 0, done.stderr);
	assert.ok(readFileSync(src).equals(readFileSync(dst)));
});

test('should fail with exit 2 when the remote file system fills up', async () => {
	const full = join(dir, 'full');
	mkdirSync(full);
	execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', full]);
	const src = join(dir, 'big-random.img');
	makeImage(src, 8 * MiB, {zeroEvery: 0, holeEvery: 0});
	const result = await runCli([src, `pve:${join(full, 'dst.img')}`, '--truncate', '-q'], sshd.env);
	assert.is(result.status, 2);
	oneLine(result.stderr);
	assert.match(result.stderr, /^rblocksync: ssh pve: .*dst\.img: write at offset \d+: no space left on device; DST may be partially updated\n$/);
});

for (const [name, victim] of [['the connection is cut', 'sshd'], ['the agent is killed', '--agent']] as const) {
	test(`should fail with exit 2, never success, when ${name} mid-transfer`, async () => {
		const src = join(dir, 'killed-src.img');
		if (!existsSync(src)) {
			makeImage(src, 256 * MiB, {zeroEvery: 0, holeEvery: 0});
		}
		const dst = join(dir, `killed-${victim.replace(/\W/g, '')}.img`);
		const running = runCli([src, `pve:${dst}`, '--truncate', '-q', '-w', '1', '--retries', '0'], sshd.env);
		// Wait until data is flowing (DST grows), then kill.
		for (let waited = 0; waited < 20_000 && !(existsSync(dst) && Number(execFileSync('du', ['-b', '--apparent-size', dst], {encoding: 'utf8'}).split('\t')[0]) > 0 && execFileSync('du', ['-k', dst], {encoding: 'utf8'}).split('\t')[0] !== '0'); waited += 50) {
			await new Promise(resolve => setTimeout(resolve, 50));
		}
		const pids = victim === 'sshd' ? sshd.sessionPids() : agents();
		assert.ok(pids.length > 0, `no ${victim} process found`);
		for (const pid of pids) {
			try {
				process.kill(pid, 'SIGKILL');
			} catch {
				// Already gone.
			}
		}
		const result = await running;
		assert.is(result.status, 2, result.stderr);
		oneLine(result.stderr);
		assert.match(result.stderr, /^rblocksync: ssh pve: .*; DST may be partially updated\n$/);
	});
}

test('should fail with exit 2 when the link goes silent (keepalives), not hang', async () => {
	const src = join(dir, 'killed-src.img');
	const dst = join(dir, 'silent-dst.img');
	if (!existsSync(src)) {
		makeImage(src, 256 * MiB, {zeroEvery: 0, holeEvery: 0});
	}
	const running = runCli([src, `pve:${dst}`, '--truncate', '-q', '-w', '1', '--retries', '0'], {...sshd.env, RBLOCKSYNC_SSH_KEEPALIVE_MS: '500'}, {timeoutMs: 30_000});
	for (let waited = 0; waited < 20_000 && !(existsSync(dst) && execFileSync('du', ['-k', dst], {encoding: 'utf8'}).split('\t')[0] !== '0'); waited += 50) {
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	const stopped = sshd.sessionPids();
	stopped.forEach(pid => process.kill(pid, 'SIGSTOP'));
	const started = Date.now();
	try {
		const result = await running;
		assert.is(result.status, 2, result.stderr);
		oneLine(result.stderr);
		assert.match(result.stderr, /^rblocksync: ssh pve: no answer to keepalives for 1.5 s: the connection is dead before the sync finished; DST may be partially updated\n$/);
		assert.ok(Date.now() - started < 15_000);
	} finally {
		stopped.forEach(pid => process.kill(pid, 'SIGKILL'));
	}
});

test.run();
