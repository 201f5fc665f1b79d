import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawnSync} from 'node:child_process';
import {createHmac, randomBytes} from 'node:crypto';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {checkKnownHosts, fingerprint, hostEntryName, knownHostsLine, knownKeyTypes} from '../../source/ssh/known-hosts.js';

const test = suite('checkKnownHosts');

function blob(type: string, body: Buffer): Buffer {
	const name = Buffer.from(type);
	const length = Buffer.alloc(4);
	length.writeUInt32BE(name.length);
	return Buffer.concat([length, name, body]);
}
const key = blob('ssh-ed25519', randomBytes(36));
const other = blob('ssh-ed25519', randomBytes(36));
const rsa = blob('ssh-rsa', randomBytes(64));
const b64 = (k: Buffer) => k.toString('base64');

function hashed(name: string): string {
	const salt = randomBytes(20);
	return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

test('should accept a plain, a hashed and a [host]:port entry', () => {
	assert.equal(checkKnownHosts(`pve,10.0.0.1 ssh-ed25519 ${b64(key)}\n`, 'pve', 22, key), {kind: 'known'});
	assert.equal(checkKnownHosts(`${hashed('pve')} ssh-ed25519 ${b64(key)}`, 'pve', 22, key), {kind: 'known'});
	assert.equal(checkKnownHosts(`[127.0.0.1]:2222 ssh-ed25519 ${b64(key)}`, '127.0.0.1', 2222, key), {kind: 'known'});
	assert.equal(checkKnownHosts(`${hashed('[127.0.0.1]:2222')} ssh-ed25519 ${b64(key)}`, '127.0.0.1', 2222, key), {kind: 'known'});
});

test('should call a host unknown when only other hosts or ports are listed', () => {
	assert.equal(checkKnownHosts(`other ssh-ed25519 ${b64(key)}\n# pve\n`, 'pve', 22, key), {kind: 'unknown'});
	assert.equal(checkKnownHosts(`127.0.0.1 ssh-ed25519 ${b64(key)}`, '127.0.0.1', 2222, key), {kind: 'unknown'});
	assert.equal(checkKnownHosts(`pve ssh-rsa ${b64(rsa)}`, 'pve', 22, key), {kind: 'unknown'});
	assert.equal(checkKnownHosts('', 'pve', 22, key), {kind: 'unknown'});
});

test('should report a changed key with its line, and a revoked key', () => {
	assert.equal(checkKnownHosts(`x y z\npve ssh-ed25519 ${b64(other)}`, 'pve', 22, key), {kind: 'changed', line: 2});
	assert.equal(checkKnownHosts(`pve ssh-ed25519 ${b64(key)}\n@revoked * ssh-ed25519 ${b64(key)}`, 'pve', 22, key), {kind: 'revoked', line: 2});
	assert.equal(checkKnownHosts(`@cert-authority * ssh-ed25519 ${b64(key)}`, 'pve', 22, key), {kind: 'unknown'});
});

test('should format the line to add, the fingerprint and the key types', () => {
	assert.is(hostEntryName('pve', 22), 'pve');
	assert.is(knownHostsLine('127.0.0.1', 2222, key), `[127.0.0.1]:2222 ssh-ed25519 ${b64(key)}`);
	assert.match(fingerprint(key), /^SHA256:[A-Za-z0-9+/]{43}$/);
	assert.equal(knownKeyTypes(`pve ssh-rsa ${b64(rsa)}\npve ssh-ed25519 ${b64(key)}`, 'pve', 22), ['ssh-rsa', 'ssh-ed25519']);
});

test('should write a hashed line (HashKnownHosts) that this reader and ssh-keygen -F both find', () => {
	const salt = randomBytes(20);
	const line = knownHostsLine('127.0.0.1', 2222, key, salt);
	assert.ok(line.startsWith(`|1|${salt.toString('base64')}|`), line);
	assert.not.ok(line.includes('127.0.0.1'), 'the host name must not show');
	assert.equal(checkKnownHosts(line, '127.0.0.1', 2222, key), {kind: 'known'});
	assert.equal(checkKnownHosts(line, '127.0.0.1', 22, key), {kind: 'unknown'});
	const dir = mkdtempSync(join(tmpdir(), 'rbs-kh-'));
	try {
		writeFileSync(join(dir, 'known_hosts'), `${line}\n`);
		const found = spawnSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', join(dir, 'known_hosts')], {encoding: 'utf8'});
		assert.is(found.status, 0, `ssh-keygen -F did not find the hashed entry: ${found.stdout}${found.stderr}`);
	} finally {
		rmSync(dir, {recursive: true, force: true});
	}
});

test.run();
