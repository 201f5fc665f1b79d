// Non-root remote users: --remote-sudo runs the uploaded agent as root through `sudo -n` (test users of the test
// sshd, one with NOPASSWD sudo, one without), and --remote-command names the command that runs the agent.
import {spawnSync} from 'node:child_process';
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, runCli, sameContent} from '../helpers/remote-images.js';
import {skip, type TestContext} from '../helpers/skip.js';

const test = suite('--remote-sudo and --remote-command');
const MiB = 1024 * 1024;
const root = fileURLToPath(new URL('../..', import.meta.url));
const withSudo = `rbssudo${process.pid}`;
const withoutSudo = `rbsnosudo${process.pid}`;
const sudoers = `/etc/sudoers.d/${withSudo}`;
let sshd: Sshd;
let dir: string;
let missing: string | undefined;

const run = (command: string, args: string[]): void => {
	const result = spawnSync(command, args, {encoding: 'utf8'});
	if (result.status !== 0) {
		throw new Error(`${command} ${args.join(' ')}: ${result.stderr || result.error?.message || String(result.status)}`);
	}
};

/** A login user of the test sshd with the node-only key (pvenode's), its home and ~/.ssh its own. */
function addUser(name: string): void {
	run('useradd', ['-m', '-s', '/bin/sh', '-p', '*', name]);
	const ssh = join('/home', name, '.ssh');
	mkdirSync(ssh, {mode: 0o700});
	writeFileSync(join(ssh, 'authorized_keys'), `${readFileSync(join(sshd.home, '.ssh/id_node.pub'), 'utf8').trim()}\n`);
	run('chown', ['-R', `${name}:${name}`, ssh]);
}

test.before(async () => {
	if (process.getuid?.() !== 0) {
		missing = 'needs root (useradd, sudoers)';
		return;
	}
	if (!existsSync('/usr/bin/sudo') || spawnSync('useradd', ['--help']).status !== 0) {
		missing = 'needs sudo and useradd (.ci/run installs sudo)';
		return;
	}
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-sudo-'));
	chmodSync(dir, 0o700);
	addUser(withSudo);
	addUser(withoutSudo);
	writeFileSync(sudoers, `${withSudo} ALL=(root) NOPASSWD: ALL\n`, {mode: 0o440});
});

test.after(async () => {
	if (missing) {
		return;
	}
	rmSync(sudoers, {force: true});
	for (const name of [withSudo, withoutSudo]) {
		spawnSync('userdel', ['-r', '-f', name], {stdio: 'ignore'});
	}
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

test('should write a root-only DST as a NOPASSWD sudo user, the agent cached in that user\'s home', async (context: TestContext) => {
	if (missing) {
		return skip(context, missing);
	}
	const src = join(dir, 'src.img');
	const dst = join(dir, 'dst.img');
	makeImage(src, 3 * MiB);
	// As the user alone, DST (in root's 0700 directory) cannot be written: exit 1 before anything is created.
	const plain = await runCli([src, `${withSudo}@pvenode:${dst}`, '--truncate', '-q'], sshd.env);
	assert.is(plain.status, 1, plain.stderr);
	assert.not.ok(existsSync(dst));
	const result = await runCli([src, `${withSudo}@pvenode:${dst}`, '--truncate', '--remote-sudo', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst));
	assert.is(statSync(dst).uid, 0, 'DST was written by root');
	const cache = join('/home', withSudo, '.cache/rblocksync');
	assert.ok(readdirSync(cache).some(name => name.startsWith('agent-')), 'the agent is not in the SSH user\'s cache');
	assert.is(statSync(cache).uid, statSync(join('/home', withSudo)).uid, 'the SSH user\'s cache belongs to that user');
	// A pull of the root-only image back, the cached agent reused.
	const back = join(dir, 'back.img');
	const pull = await runCli([`${withSudo}@pvenode:${dst}`, back, '--truncate', '--remote-sudo', '--json'], sshd.env);
	assert.is(pull.status, 0, pull.stderr);
	assert.ok(sameContent(src, back));
});

test('should fail in one line with exit 1, never waiting, when sudo would ask for a password', async (context: TestContext) => {
	if (missing) {
		return skip(context, missing);
	}
	const src = join(dir, 'src-nopw.img');
	const dst = join(dir, 'dst-nopw.img');
	makeImage(src, MiB);
	const started = Date.now();
	const result = await runCli([src, `${withoutSudo}@pvenode:${dst}`, '--truncate', '--remote-sudo', '-q'], sshd.env, {timeoutMs: 30_000});
	const took = Date.now() - started;
	assert.is(result.status, 1, result.stderr);
	assert.ok(took < 20_000, `took ${took} ms`);
	const lines = result.stderr.trim().split('\n');
	assert.is(lines.length, 1, result.stderr);
	assert.match(lines[0]!, /^rblocksync: ssh pvenode: --remote-sudo: sudo -n cannot run the agent as root there \(sudo: .*password.*\); allow it without a password \(NOPASSWD in sudoers\) or drop --remote-sudo$/);
	assert.not.ok(existsSync(dst));
});

test('should run the agent through --remote-command, and refuse a command that is no agent', async (context: TestContext) => {
	if (missing) {
		return skip(context, missing);
	}
	const src = join(dir, 'src-cmd.img');
	const dst = join(dir, 'dst-cmd.img');
	makeImage(src, 2 * MiB);
	// pvenode has node but no rblocksync on PATH: the command names this checkout's CLI.
	const command = `${process.execPath} ${join(root, 'dist/cli.js')}`;
	const result = await runCli([src, `pvenode:${dst}`, '--truncate', '--remote-command', command, '--json'], {...sshd.env, RBLOCKSYNC_TRACE: '1'});
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst));
	assert.match(result.stderr, /pvenode: agent installed/);
	const bad = await runCli([src, `pvenode:${join(dir, 'dst-bad.img')}`, '--truncate', '--remote-command', '/bin/false', '-q'], sshd.env);
	assert.is(bad.status, 1, bad.stderr);
	assert.is(bad.stderr.trim(), 'rblocksync: ssh pvenode: --remote-command /bin/false: `/bin/false --agent-protocol` printed no protocol number; give the command that runs rblocksync there');
	assert.not.ok(existsSync(join(dir, 'dst-bad.img')));
});

test.run();
