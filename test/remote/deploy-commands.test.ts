// The deploy step's probe and upload command lines, run by a local sh in a temporary HOME (no sshd needed).
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawnSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Bundle, bundleFor, makeBundle, parseProbe, planAgent, probeCommand, startCommand, uploadCommand} from '../../source/remote/deploy.js';
import {PROTOCOL_VERSION} from '../../source/protocol/messages.js';

let home: string;
let bin: string;
const bundle = makeBundle([['rblocksync-agent.mjs', randomBytes(70_000)], ['blake3.wasm', randomBytes(3000)], ['rblocksync_native.node', randomBytes(1)]]);

function sh(command: string, input?: Buffer): {status: number | null; stdout: string; stderr: string} {
	const result = spawnSync('sh', ['-c', command], {input, env: {HOME: home, PATH: `${bin}:/usr/bin:/bin`}, encoding: 'utf8'});
	return {status: result.status, stdout: result.stdout, stderr: result.stderr};
}

const upload = (b: Bundle): ReturnType<typeof sh> => sh(uploadCommand(b), Buffer.concat(b.files.map(file => file.content)));
const cached = (b: Bundle): boolean => parseProbe(sh(probeCommand([b], false)).stdout).cached.has(b.hash);
const cache = (): string => join(home, '.cache/rblocksync');
const agentPath = (b: Bundle): string => join(cache(), `agent-${b.hash}`, 'rblocksync-agent.mjs');

function fakeRblocksync(script: string): void {
	writeFileSync(join(bin, 'rblocksync'), `#!/bin/sh\n${script}\n`);
	chmodSync(join(bin, 'rblocksync'), 0o755);
}

const probe = suite('parseProbe and probeCommand');

probe.before.each(() => {
	home = mkdtempSync(join(tmpdir(), 'rbs-deploy-'));
	bin = join(home, 'bin');
	mkdirSync(bin);
});

probe.after.each(() => {
	rmSync(home, {recursive: true, force: true});
});

probe('should read an installed rblocksync\'s protocol number, and protocol 1 from a build that prints none', () => {
	fakeRblocksync('[ "$1" = --agent-protocol ] && echo 7');
	assert.is(parseProbe(sh(probeCommand([], false)).stdout).protocol, 7);
	fakeRblocksync('echo "Unknown flag --agent-protocol" >&2; exit 2');
	const old = parseProbe(sh(probeCommand([], false)).stdout);
	assert.ok(old.installed);
	assert.is(old.protocol, 1);
	fakeRblocksync('echo "rblocksync 0.0.9, usage: ..."');
	assert.is(parseProbe(sh(probeCommand([], false)).stdout).protocol, 1);
});

probe('should say what sudo -n said (a password it needs) and what --remote-command printed, its last line', () => {
	writeFileSync(join(bin, 'sudo'), '#!/bin/sh\n[ "$1" = -n ] || exit 9\nshift\n[ -e "$HOME/nopw" ] && exec "$@"\necho "sudo: a terminal is required to read the password" >&2\necho "sudo: a password is required" >&2\nexit 1\n');
	chmodSync(join(bin, 'sudo'), 0o755);
	fakeRblocksync('echo "starting" >&2; echo 7');
	const refused = parseProbe(sh(probeCommand([], false, {sudo: true, command: 'rblocksync'})).stdout);
	assert.is(refused.sudo, 'sudo: a password is required');
	assert.is(refused.command, 'sudo: a password is required');
	assert.throws(() => planAgent(refused, 'kvm2', {sudo: true}, undefined), (error: Error) => error.message === 'ssh kvm2: --remote-sudo: sudo -n cannot run the agent as root there (sudo: a password is required); allow it without a password (NOPASSWD in sudoers) or drop --remote-sudo');
	writeFileSync(join(home, 'nopw'), '');
	const allowed = parseProbe(sh(probeCommand([], false, {sudo: true, command: 'rblocksync'})).stdout);
	assert.is(allowed.sudo, 'ok');
	assert.is(allowed.command, '7');
	assert.throws(() => planAgent(allowed, 'kvm2', {sudo: true, command: 'rblocksync'}, undefined), (error: Error) => error.message.startsWith(`ssh kvm2: --remote-command rblocksync speaks protocol 7, this rblocksync `));
	fakeRblocksync(`echo ${PROTOCOL_VERSION}`);
	const ours = parseProbe(sh(probeCommand([], false, {sudo: true, command: 'rblocksync'})).stdout);
	assert.equal(planAgent(ours, 'kvm2', {sudo: true, command: 'rblocksync'}, undefined), {command: 'exec sudo -n rblocksync --agent', how: 'installed', uploadedBytes: 0});
	assert.equal(planAgent(ours, 'kvm2', {sudo: true}, undefined), {command: 'exec sudo -n "$(command -v rblocksync)" --agent', how: 'installed', uploadedBytes: 0});
});

probe('should not ask the installed rblocksync when the upload is forced', () => {
	fakeRblocksync(`echo called >> ${join(home, 'calls')}; echo 7`);
	const result = parseProbe(sh(probeCommand([], true)).stdout);
	assert.ok(result.installed);
	assert.is(result.protocol, 1);
	assert.equal(readdirSync(home).filter(name => name === 'calls'), []);
});

probe('should parse node\'s major version, the architecture and every intact cached bundle', () => {
	const result = parseProbe('rbs-which=\nrbs-node=v18.20.4\nrbs-arch=aarch64\nrbs-cached=0123456789abcdef\nrbs-cached=fedcba9876543210\n');
	assert.is(result.installed, false);
	assert.is(result.nodeMajor, 18);
	assert.is(result.arch, 'aarch64');
	assert.equal([...result.cached], ['0123456789abcdef', 'fedcba9876543210']);
	assert.is(parseProbe('rbs-node=\n').nodeMajor, 0);
});

probe('should ship the native helper only to a host of its architecture', () => {
	const plain = makeBundle([['rblocksync-agent.mjs', Buffer.from('a')]]);
	const bundles = {plain, native: bundle, arch: 'x86_64'};
	assert.is(bundleFor(bundles, 'x86_64'), bundle);
	assert.is(bundleFor(bundles, 'aarch64'), plain);
	assert.is(bundleFor({plain, native: undefined, arch: undefined}, 'x86_64'), plain);
	assert.is.not(plain.hash, bundle.hash);
	assert.match(bundle.hash, /^[\da-f]{16}$/);
});

probe.run();

const start = suite('startCommand');

start.before.each(() => {
	home = mkdtempSync(join(tmpdir(), 'rbs-deploy-'));
	bin = join(home, 'bin');
	mkdirSync(bin);
});

start.after.each(() => {
	rmSync(home, {recursive: true, force: true});
});

/** A node that prints its version, or the script it was asked to run: what an exec of the agent looks like here. */
function fakeNode(version: string): void {
	writeFileSync(join(bin, 'node'), `#!/bin/sh
[ "$1" = --version ] && { echo ${version}; exit 0; }
echo "node ran $1"
`);
	chmodSync(join(bin, 'node'), 0o755);
}

/** The bundle's files in its cache directory, as an upload leaves them. */
function place(b: Bundle): void {
	mkdirSync(join(cache(), `agent-${b.hash}`), {recursive: true});
	for (const file of b.files) {
		writeFileSync(join(cache(), `agent-${b.hash}`, file.name), file.content);
	}
}

const plain = makeBundle([['rblocksync-agent.mjs', randomBytes(5000)], ['blake3.wasm', randomBytes(300)]]);
const arch = spawnSync('uname', ['-m'], {encoding: 'utf8'}).stdout.trim();

start('should run the installed rblocksync of this protocol without a probe, and print the probe for another protocol', () => {
	fakeRblocksync(`[ "$1" = --agent-protocol ] && { echo ${PROTOCOL_VERSION}; exit 0; }; echo "agent $1"`);
	assert.is(sh(startCommand({plain, native: undefined, arch: undefined}, false)).stdout, 'agent --agent\n');
	fakeRblocksync(`[ "$1" = --agent-protocol ] && { echo ${PROTOCOL_VERSION + 1}; exit 0; }; echo "agent $1"`);
	fakeNode('v20.1.0');
	place(plain);
	// Another protocol: the driver decides (and warns) from the probe, which starts with "r", never a frame's first byte.
	const other = sh(startCommand({plain, native: undefined, arch: undefined}, false)).stdout;
	assert.match(other, /^rbs-which=/);
	assert.is(parseProbe(other).protocol, PROTOCOL_VERSION + 1);
	assert.ok(parseProbe(other).cached.has(plain.hash));
});

start('should run the intact cached bundle of the host\'s architecture where no rblocksync is installed, else print the probe', () => {
	fakeNode('v18.19.0');
	const bundles = {plain, native: bundle, arch};
	assert.match(sh(startCommand(bundles, false)).stdout, /^rbs-which=\n/);
	place(plain);
	// The host's uname -m is the native bundle's: only that one is run.
	assert.match(sh(startCommand(bundles, false)).stdout, /^rbs-which=/);
	assert.is(sh(startCommand({plain, native: bundle, arch: 'no-such-arch'}, false)).stdout, `node ran ${join(home, '.cache/rblocksync', `agent-${plain.hash}`, 'rblocksync-agent.mjs')}\n`);
	place(bundle);
	assert.is(sh(startCommand(bundles, false)).stdout, `node ran ${agentPath(bundle)}\n`);
	truncateSync(agentPath(bundle), 10);
	assert.match(sh(startCommand(bundles, false)).stdout, /^rbs-which=/, 'a damaged bundle was run');
	place(bundle);
	fakeNode('v16.20.2');
	assert.match(sh(startCommand(bundles, false)).stdout, /^rbs-which=/, 'node 16 was asked to run the agent');
});

start('should pass over the installed rblocksync for the cached bundle when the upload is forced', () => {
	fakeRblocksync(`echo called >> ${join(home, 'calls')}; echo ${PROTOCOL_VERSION}`);
	fakeNode('v22.3.0');
	place(plain);
	const bundles = {plain, native: undefined, arch: undefined};
	assert.is(sh(startCommand(bundles, true)).stdout, `node ran ${join(home, '.cache/rblocksync', `agent-${plain.hash}`, 'rblocksync-agent.mjs')}\n`);
	// Installed, but not asked: the cached bundle is this version's agent.
	assert.equal(readdirSync(home).filter(name => name === 'calls'), []);
	// Not forced: the installed one of this protocol runs (the fake prints its protocol for any argument).
	assert.is(sh(startCommand(bundles, false)).stdout, `${PROTOCOL_VERSION}\n`);
	assert.equal(readdirSync(home).filter(name => name === 'calls'), ['calls']);
});

start.run();

const install = suite('uploadCommand');

install.before.each(() => {
	home = mkdtempSync(join(tmpdir(), 'rbs-deploy-'));
	bin = join(home, 'bin');
	mkdirSync(bin);
});

install.after.each(() => {
	rmSync(home, {recursive: true, force: true});
});

install('should publish the files in a 0700 directory that the probe then finds intact, leaving no staging directory', () => {
	assert.not.ok(cached(bundle));
	const result = upload(bundle);
	assert.is(result.status, 0, result.stderr);
	assert.ok(cached(bundle));
	for (const file of bundle.files) {
		assert.ok(readFileSync(join(cache(), `agent-${bundle.hash}`, file.name)).equals(file.content), file.name);
	}
	assert.is(statSync(cache()).mode & 0o777, 0o700);
	assert.is(statSync(join(cache(), `agent-${bundle.hash}`)).mode & 0o777, 0o700);
	assert.equal(readdirSync(cache()), [`agent-${bundle.hash}`]);
});

install('should not trust a truncated or damaged cached agent, and replace it', () => {
	assert.is(upload(bundle).status, 0);
	truncateSync(agentPath(bundle), 1000);
	assert.not.ok(cached(bundle), 'a truncated agent passed the check');
	assert.is(upload(bundle).status, 0);
	assert.ok(cached(bundle));
	const damaged = readFileSync(agentPath(bundle));
	damaged[12_345] = damaged[12_345]! ^ 0x40;
	writeFileSync(agentPath(bundle), damaged);
	assert.not.ok(cached(bundle), 'a flipped byte passed the check');
	rmSync(join(cache(), `agent-${bundle.hash}`, 'blake3.wasm'));
	assert.not.ok(cached(bundle), 'a missing file passed the check');
	const result = upload(bundle);
	assert.is(result.status, 0, result.stderr);
	assert.ok(cached(bundle));
	assert.ok(readFileSync(agentPath(bundle)).equals(bundle.files[0]!.content));
	assert.equal(readdirSync(cache()), [`agent-${bundle.hash}`]);
});

install('should keep an intact directory a concurrent run published, and replace a file in its place', () => {
	assert.is(upload(bundle).status, 0);
	const inode = statSync(join(cache(), `agent-${bundle.hash}`)).ino;
	assert.is(upload(bundle).status, 0);
	assert.is(statSync(join(cache(), `agent-${bundle.hash}`)).ino, inode, 'an intact directory was replaced');
	rmSync(join(cache(), `agent-${bundle.hash}`), {recursive: true});
	writeFileSync(join(cache(), `agent-${bundle.hash}`), 'not a directory');
	assert.is(upload(bundle).status, 0);
	assert.ok(cached(bundle));
	assert.equal(readdirSync(cache()), [`agent-${bundle.hash}`]);
});

install('should fail with the cause on one line when the files cannot be written', () => {
	mkdirSync(join(home, '.cache'));
	writeFileSync(cache(), 'not a directory');
	const result = upload(bundle);
	assert.is(result.status, 1);
	assert.match(result.stderr, /^EEXIST: .*rblocksync'\n$/);
	assert.not.ok(cached(bundle));
});

install('should refuse bytes that do not match their digests', () => {
	const result = sh(uploadCommand(bundle), Buffer.concat(bundle.files.map(file => file.content)).subarray(1));
	assert.is(result.status, 1);
	assert.is(result.stderr, 'rblocksync-agent.mjs arrived incomplete\n');
	assert.equal(readdirSync(cache()), []);
});

install.run();
