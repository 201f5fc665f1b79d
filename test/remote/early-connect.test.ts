// The connection main.ts starts as soon as the options are read is the one the run uses (the proxy in front of the
// test sshd counts connections): one per run, not an early one plus the run's own; a run that fails before it reaches
// the host closes it and exits as before; what it warned while nobody had taken it (a host key added) is said once.
import {chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import type {DelayProxy} from '../../bench/wan/delay-proxy.js';
import {startWanFixture, type WanFixture} from '../helpers/wan.js';
import type {Sshd} from '../helpers/sshd.js';
import {makeImage, runCli, sameContent} from '../helpers/remote-images.js';

const test = suite('the early SSH connection');
const MiB = 1024 * 1024;
let sshd: Sshd;
let proxy: DelayProxy;
let dir: string;
let fixture: WanFixture;

test.before(async () => {
	fixture = await startWanFixture({rttMs: 0, rate: 0}, 'rbs-early-');
	({sshd, proxy, dir} = fixture);
});

test.after(async () => {
	await fixture.stop();
});

test('should make one connection for a run with one worker (the early one, taken)', async () => {
	const src = join(dir, 'src.img');
	const dst = join(dir, 'dst.img');
	makeImage(src, 4 * MiB);
	const before = proxy.connections;
	const result = await runCli([src, `wan:${dst}`, '--truncate', '-w', '1', '-q'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst));
	assert.is(proxy.connections - before, 1);
	// A pull too: the early connection is SRC's host's.
	const back = join(dir, 'back.img');
	const pulled = proxy.connections;
	const pull = await runCli([`wan:${dst}`, back, '--truncate', '-w', '1', '-q'], sshd.env);
	assert.is(pull.status, 0, pull.stderr);
	assert.ok(sameContent(src, back));
	assert.is(proxy.connections - pulled, 1);
});

test('should close the early connection of a run that fails before it reaches the host, DST untouched', async () => {
	const dst = join(dir, 'never.img');
	const started = Date.now();
	const result = await runCli([join(dir, 'missing.img'), `wan:${dst}`, '--truncate'], sshd.env);
	assert.is(result.status, 1, result.stderr);
	assert.match(result.stderr, /^rblocksync: SRC .*missing\.img: no such file or directory\n$/);
	assert.not.ok(existsSync(dst));
	// The connection it started does not hold the exit (cli.tsx's 2 s backstop would).
	assert.ok(Date.now() - started < 1800, `${Date.now() - started} ms`);
});

test('should say what the early connection warned (a host key added by --accept-new-host-key) once, in the run', async () => {
	// A HOME whose known_hosts does not know the host yet.
	const home = join(dir, 'home');
	mkdirSync(join(home, '.ssh'), {recursive: true, mode: 0o700});
	copyFileSync(join(sshd.home, '.ssh/id_installed'), join(home, '.ssh/id_installed'));
	chmodSync(join(home, '.ssh/id_installed'), 0o600);
	writeFileSync(join(home, '.ssh/config'), `Host fresh\n\tHostName 127.0.0.1\n\tPort ${proxy.port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tIdentitiesOnly yes\n`);
	const src = join(dir, 'src.img');
	const dst = join(dir, 'fresh.img');
	const result = await runCli([src, `fresh:${dst}`, '--truncate', '--accept-new-host-key'], {...sshd.env, HOME: home});
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(src, dst));
	assert.is([...result.stderr.matchAll(/added ssh-ed25519 key fingerprint SHA256:\S+ to .*known_hosts/g)].length, 1, result.stderr + result.stdout);
	assert.match(readFileSync(join(home, '.ssh/known_hosts'), 'utf8'), /^\S+ ssh-ed25519 AAAA/m);
});

test.run();
