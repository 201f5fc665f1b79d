// The test sshd behind the user-space delay proxy (bench/wan/delay-proxy.ts), reached as the Host alias `wan`: its
// ssh config and known_hosts entries are added to the sshd's home, so every tool run with that home goes through it.
import {appendFileSync} from 'node:fs';
import {join} from 'node:path';
import {type DelayProxy, startDelayProxy} from '../../bench/wan/delay-proxy.js';
import type {Sshd} from './sshd.js';

/** Starts a proxy in front of `sshd` with the given round-trip time and rate (bytes/s, 0: unlimited) and names it `wan`. */
export async function startWan(sshd: Sshd, link: {rttMs: number; rate: number}): Promise<DelayProxy> {
	const proxy = await startDelayProxy({host: '127.0.0.1', port: sshd.port}, link);
	appendFileSync(join(sshd.home, '.ssh/config'), `\nHost wan\n\tHostName 127.0.0.1\n\tPort ${proxy.port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tIdentitiesOnly yes\n`);
	const [, type, key] = sshd.hostKeyLine.split(' ');
	appendFileSync(join(sshd.home, '.ssh/known_hosts'), `[127.0.0.1]:${proxy.port} ${type} ${key}\n`);
	return proxy;
}
