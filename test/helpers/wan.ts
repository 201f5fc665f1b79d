// The test sshd behind the user-space delay proxy (bench/wan/delay-proxy.ts), reached as the Host alias `wan`: its
// ssh config and known_hosts entries are added to the sshd's home, so every tool run with that home goes through it.
import {appendFileSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type DelayProxy, startDelayProxy} from '../../bench/wan/delay-proxy.js';
import {type Sshd, startSshd} from './sshd.js';

/** Starts a proxy in front of `sshd` with the given round-trip time and rate (bytes/s, 0: unlimited) and names it `wan`. */
export async function startWan(sshd: Sshd, link: {rttMs: number; rate: number}): Promise<DelayProxy> {
	const proxy = await startDelayProxy({host: '127.0.0.1', port: sshd.port}, link);
	appendFileSync(join(sshd.home, '.ssh/config'), `\nHost wan\n\tHostName 127.0.0.1\n\tPort ${proxy.port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tIdentitiesOnly yes\n`);
	const [, type, key] = sshd.hostKeyLine.split(' ');
	appendFileSync(join(sshd.home, '.ssh/known_hosts'), `[127.0.0.1]:${proxy.port} ${type} ${key}\n`);
	return proxy;
}

/** A test sshd, the proxy in front of it as `wan`, and a temporary directory; stop() ends them and removes it. */
export type WanFixture = {readonly sshd: Sshd; readonly proxy: DelayProxy; readonly dir: string; stop(): Promise<void>};

export async function startWanFixture(link: {rttMs: number; rate: number}, prefix: string): Promise<WanFixture> {
	const sshd = await startSshd();
	const proxy = await startWan(sshd, link);
	const dir = mkdtempSync(join(tmpdir(), prefix));
	return {sshd, proxy, dir, async stop() {
		await proxy.stop();
		await sshd.stop();
		rmSync(dir, {recursive: true, force: true});
	}};
}
