// Adds host alias `pvefake` to a running test sshd (test/helpers/sshd.ts): its own key, whose authorized_keys
// environment= puts a bin directory first on PATH, where `rblocksync` is test/faults/fake-agent.ts run by tsx.
// The misbehaviour is read from a file at each start, so one sshd serves every case.
import {execFileSync} from 'node:child_process';
import {appendFileSync, chmodSync, mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import type {Sshd} from '../helpers/sshd.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export type FakeHost = {
	readonly alias: string;
	/** Selects the fake agent's next misbehaviour (a key of MODES in fake-agent.ts). */
	use(mode: string): void;
};

/** Installs the fake agent as `rblocksync` for a new alias of this sshd; `--agent-protocol` prints 1 as a real one does. */
export function addFakeHost(sshd: Sshd, alias = 'pvefake'): FakeHost {
	const bin = join(sshd.dir, `bin-${alias}`);
	mkdirSync(bin);
	const modeFile = join(bin, 'mode');
	writeFileSync(modeFile, '');
	writeFileSync(join(bin, 'rblocksync'), [
		'#!/bin/sh',
		'[ "$1" = --agent-protocol ] && { echo 1; exit 0; }',
		`cd ${root} || exit 1`,
		`RBLOCKSYNC_FAKE="$(cat ${modeFile})" exec node --import tsx test/faults/fake-agent.ts "$@"`,
		'',
	].join('\n'));
	chmodSync(join(bin, 'rblocksync'), 0o755);
	const key = join(sshd.home, '.ssh', `id_${alias}`);
	execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', alias, '-f', key]);
	const publicKey = execFileSync('ssh-keygen', ['-y', '-f', key], {encoding: 'utf8'}).trim();
	// bin-node (the harness's) holds node, sh and cat.
	appendFileSync(join(sshd.dir, 'authorized_keys'), `environment="PATH=${bin}:${join(sshd.dir, 'bin-node')}" ${publicKey}\n`);
	appendFileSync(join(sshd.home, '.ssh', 'config'), `\nHost ${alias}\n\tHostName 127.0.0.1\n\tPort ${sshd.port}\n\tUser root\n\tIdentityFile ~/.ssh/id_${alias}\n\tIdentitiesOnly yes\n`);
	return {alias, use: mode => writeFileSync(modeFile, mode)};
}
