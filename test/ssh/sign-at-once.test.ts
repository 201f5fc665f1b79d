// A key file's key signs its first USERAUTH_REQUEST (no "publickey -- check" round trip), against the real test sshd:
// ed25519 and RSA (rsa-sha2-*) key files log in with one request, a key the server does not take still fails cleanly
// (no hang), and the agent's keys keep ssh2's query (their private half is not here).
import {execFileSync, spawnSync} from 'node:child_process';
import {appendFileSync, mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import ssh2 from 'ssh2';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {hashOfKeyAlgorithm, signKeyFilesAtOnce} from '../../source/ssh/sign-at-once.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const test = suite('signing with a key file at once');
let sshd: Sshd;
let keys: string;

function keygen(type: string, name: string): string {
	const path = join(keys, name);
	execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', path]);
	return path;
}

type Login = {ok: boolean; error?: string; lines: string[]};

/** One login as root with `auth` (ssh2's options), patched unless `plain`; ssh2's debug lines kept. */
async function login(auth: Partial<ssh2.ConnectConfig>, plain = false): Promise<Login> {
	const lines: string[] = [];
	const client = new ssh2.Client();
	return new Promise<Login>(resolve => {
		const timer = setTimeout(() => {
			client.destroy();
			resolve({ok: false, error: 'no answer within 20 s', lines});
		}, 20_000);
		client.on('ready', () => {
			clearTimeout(timer);
			client.end();
			resolve({ok: true, lines});
		});
		client.on('error', error => {
			clearTimeout(timer);
			client.destroy();
			resolve({ok: false, error: error.message, lines});
		});
		client.connect({host: '127.0.0.1', port: sshd.port, username: 'root', hostVerifier: () => true, debug: line => lines.push(line), ...auth});
		if (!plain) {
			signKeyFilesAtOnce(client);
		}
	});
}

const checks = (result: Login): number => result.lines.filter(line => line.includes('USERAUTH_REQUEST (publickey -- check)')).length;
const signed = (result: Login): number => result.lines.filter(line => line.includes('USERAUTH_REQUEST (publickey)')).length;

test.before(async () => {
	sshd = await startSshd();
	keys = mkdtempSync(join(tmpdir(), 'rbs-sign-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(keys, {recursive: true, force: true});
});

test('should name the hash of each RSA signature algorithm and leave the others to the key type', () => {
	assert.is(hashOfKeyAlgorithm('rsa-sha2-512'), 'sha512');
	assert.is(hashOfKeyAlgorithm('rsa-sha2-256'), 'sha256');
	assert.is(hashOfKeyAlgorithm('ssh-rsa'), 'sha1');
	assert.is(hashOfKeyAlgorithm('ssh-ed25519'), undefined);
	assert.is(hashOfKeyAlgorithm(undefined), undefined);
});

test('should log in with an ed25519 and an RSA key file in one signed request, no query', async () => {
	for (const type of ['ed25519', 'rsa']) {
		const key = keygen(type, `id_${type}`);
		appendFileSync(join(sshd.dir, 'authorized_keys'), readFileSync(`${key}.pub`));
		const result = await login({privateKey: readFileSync(key)});
		assert.ok(result.ok, `${type}: ${result.error ?? ''}`);
		assert.is(checks(result), 0, `${type}: ${result.lines.join('\n')}`);
		assert.is(signed(result), 1, type);
		// Without the patch ssh2 queries first: what this saves is that round trip.
		const plain = await login({privateKey: readFileSync(key)}, true);
		assert.ok(plain.ok, plain.error);
		assert.is(checks(plain), 1, type);
	}
});

test('should fail a key the server does not take, as before, without hanging', async () => {
	const key = keygen('ed25519', 'id_stranger');
	const result = await login({privateKey: readFileSync(key)});
	assert.not.ok(result.ok);
	assert.match(result.error ?? '', /All configured authentication methods failed/);
	assert.is(checks(result), 0);
});

test("should keep ssh2's query for the agent's keys", async () => {
	const socket = join(keys, 'agent.sock');
	const agent = spawnSync('ssh-agent', ['-a', socket, '-s'], {encoding: 'utf8'});
	assert.is(agent.status, 0, agent.stderr);
	const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
	try {
		const key = keygen('ed25519', 'id_agent');
		appendFileSync(join(sshd.dir, 'authorized_keys'), readFileSync(`${key}.pub`));
		const added = spawnSync('ssh-add', [key], {env: {...process.env, SSH_AUTH_SOCK: socket}, encoding: 'utf8'});
		assert.is(added.status, 0, added.stderr);
		const result = await login({agent: socket});
		assert.ok(result.ok, result.error);
		assert.is(checks(result), 1, result.lines.join('\n'));
	} finally {
		process.kill(pid, 'SIGTERM');
	}
});

test.run();
