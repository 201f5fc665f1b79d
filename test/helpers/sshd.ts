// A real OpenSSH sshd on 127.0.0.1 for end-to-end tests, with a temporary HOME whose ~/.ssh names it.
// Host aliases (all the same sshd): pve/pve2 see `rblocksync` (this checkout's CLI) and QEMU's tools on PATH; pvenode has only node;
// pvebare has neither; pvenonative runs the agent without the native helper; pvenoisy's agent says hello on stderr first;
// pveextra (node) and pveextrabare (no node) have `extraBin` first on PATH, empty: tests put fake programs there.
// PATH (and env) is set per key through authorized_keys environment= (PermitUserEnvironment yes).
import {type ChildProcess, execFileSync, spawn, spawnSync} from 'node:child_process';
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {createServer, connect as tcpConnect} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';

const SSHD = '/usr/sbin/sshd';
const root = fileURLToPath(new URL('../..', import.meta.url));

export type Sshd = {
	readonly port: number;
	/** The temporary HOME with .ssh/config, keys and known_hosts. */
	readonly home: string;
	readonly dir: string;
	/** Environment for running the CLI against this sshd (HOME set, no ssh-agent). */
	readonly env: NodeJS.ProcessEnv;
	readonly hostKeyLine: string;
	readonly pid: number;
	/** A directory first on PATH for pveextra and pveextrabare, empty until a test writes programs there. */
	readonly extraBin: string;
	/** PIDs of the per-connection sshd processes (to cut connections). */
	sessionPids(): number[];
	stop(): Promise<void>;
};

export type ProcessRow = {pid: number; ppid: number; args: string};

/** Every process, from /proc (no procps needed). */
export function processes(): ProcessRow[] {
	const rows: ProcessRow[] = [];
	for (const name of readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) {
			continue;
		}
		try {
			const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
			const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
			const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
			rows.push({pid: Number(name), ppid, args});
		} catch {
			// The process ended meanwhile.
		}
	}
	return rows;
}

/** Every process below the test sshd but sshd's own: the agents, and whatever they run. */
export function belowSshd(sshd: Pick<Sshd, 'pid'>): ProcessRow[] {
	const rows = processes();
	const below = new Set([sshd.pid]);
	for (let grew = true; grew;) {
		grew = false;
		for (const row of rows) {
			if (below.has(row.ppid) && !below.has(row.pid)) {
				below.add(row.pid);
				grew = true;
			}
		}
	}
	return rows.filter(row => below.has(row.pid) && row.pid !== sshd.pid && !row.args.startsWith('sshd'));
}

/** Installs openssh-server when missing (root only); throws when sshd cannot be had: CI must fail, not skip. */
export function ensureSshd(): void {
	if (existsSync(SSHD) && existsSync('/usr/bin/ssh-keygen')) {
		return;
	}
	const result = spawnSync('apt-get', ['install', '-y', 'openssh-server', 'openssh-client'], {stdio: 'ignore'});
	if (result.status !== 0 || !existsSync(SSHD)) {
		throw new Error(`sshd is missing and apt-get install openssh-server failed (status ${String(result.status)}); the SSH tests need it`);
	}
}

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
		});
	});
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
	for (let attempt = 0; attempt < 100; attempt++) {
		if (child.exitCode !== null) {
			throw new Error(`sshd exited with status ${child.exitCode}: ${log()}`);
		}
		const open = await new Promise<boolean>(resolve => {
			const socket = tcpConnect(port, '127.0.0.1');
			socket.once('connect', () => {
				socket.destroy();
				resolve(true);
			});
			socket.once('error', () => resolve(false));
		});
		if (open) {
			return;
		}
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	throw new Error(`sshd did not listen on port ${port}: ${log()}`);
}

function keygen(path: string): string {
	execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rblocksync-test', '-f', path]);
	return readFileSync(`${path}.pub`, 'utf8').trim();
}

/** Starts sshd; always call stop() in a finally. */
export async function startSshd(): Promise<Sshd> {
	ensureSshd();
	mkdirSync('/run/sshd', {recursive: true, mode: 0o755});
	const dir = mkdtempSync(join(tmpdir(), 'rbs-sshd-'));
	const home = join(dir, 'home');
	const ssh = join(home, '.ssh');
	mkdirSync(ssh, {recursive: true, mode: 0o700});
	const port = await freePort();
	const hostKey = keygen(join(dir, 'host_ed25519'));

	const installedBin = join(dir, 'bin-installed');
	mkdirSync(installedBin);
	writeFileSync(join(installedBin, 'rblocksync'), `#!/bin/sh\nexec ${process.execPath} ${join(root, 'dist/cli.js')} "$@"\n`);
	chmodSync(join(installedBin, 'rblocksync'), 0o755);
	// QEMU's tools (qemu-utils) for the hosts with rblocksync installed; pvenode (node only) has none of them.
	for (const tool of ['qemu-img', 'qemu-nbd', 'qemu-io']) {
		const path = ['/usr/bin', '/bin'].map(d => join(d, tool)).find(p => existsSync(p));
		if (path) {
			symlinkSync(path, join(installedBin, tool));
		}
	}
	const noisyBin = join(dir, 'bin-noisy');
	mkdirSync(noisyBin);
	writeFileSync(join(noisyBin, 'rblocksync'), `#!/bin/sh\necho "hello from the agent" >&2\nexec ${process.execPath} ${join(root, 'dist/cli.js')} "$@"\n`);
	chmodSync(join(noisyBin, 'rblocksync'), 0o755);
	const nodeBin = join(dir, 'bin-node');
	const bareBin = join(dir, 'bin-bare');
	const extraBin = join(dir, 'bin-extra');
	mkdirSync(nodeBin);
	mkdirSync(bareBin);
	mkdirSync(extraBin);
	symlinkSync(process.execPath, join(nodeBin, 'node'));
	for (const tool of ['sh', 'bash', 'env', 'dirname', 'basename', 'sed', 'cat', 'mkdir', 'mv', 'rm', 'chmod', 'uname', 'test', 'printf', 'sha256sum']) {
		const path = ['/usr/bin', '/bin'].map(d => join(d, tool)).find(p => existsSync(p));
		if (path) {
			symlinkSync(path, join(bareBin, tool));
			symlinkSync(path, join(nodeBin, tool));
		}
	}
	const environments = {
		installed: `PATH=${installedBin}:${nodeBin}`,
		node: `PATH=${nodeBin}`,
		bare: `PATH=${bareBin}`,
		nonative: `PATH=${installedBin}:${nodeBin}",environment="RBLOCKSYNC_NO_NATIVE=1`,
		noisy: `PATH=${noisyBin}:${nodeBin}`,
		extra: `PATH=${extraBin}:${nodeBin}`,
		extrabare: `PATH=${extraBin}:${bareBin}`,
	};
	const authorized: string[] = [];
	const config: string[] = [];
	for (const [name, aliases] of [['installed', 'pve pve2'], ['node', 'pvenode'], ['bare', 'pvebare'], ['nonative', 'pvenonative'], ['noisy', 'pvenoisy'], ['extra', 'pveextra'], ['extrabare', 'pveextrabare']] as const) {
		const publicKey = keygen(join(ssh, `id_${name}`));
		authorized.push(`environment="${environments[name]}" ${publicKey}`);
		config.push(`Host ${aliases}\n\tHostName 127.0.0.1\n\tPort ${port}\n\tUser root\n\tIdentityFile ~/.ssh/id_${name}\n\tIdentitiesOnly yes\n`);
	}
	// pvejump reaches the same sshd through pve (ProxyJump).
	config.push(`Host pvejump\n\tHostName 127.0.0.1\n\tPort ${port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tProxyJump pve\n`);
	// pvejump2 goes through two hops: pve, then pve2 (ProxyJump with a list).
	config.push(`Host pvejump2\n\tHostName 127.0.0.1\n\tPort ${port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tProxyJump pve,pve2\n`);
	// pvejumpdead lists a second hop nobody answers at: proof that every hop is used.
	config.push(`Host pvejumpdead\n\tHostName 127.0.0.1\n\tPort ${port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tProxyJump pve,deadhop\n`);
	config.push(`Host deadhop\n\tHostName 127.0.0.1\n\tPort 1\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n`);
	writeFileSync(join(dir, 'authorized_keys'), `${authorized.join('\n')}\n`);
	writeFileSync(join(ssh, 'config'), config.join('\n'));
	const [type, key] = hostKey.split(' ');
	const hostKeyLine = `[127.0.0.1]:${port} ${type} ${key}`;
	writeFileSync(join(ssh, 'known_hosts'), `${hostKeyLine}\n`);
	writeFileSync(join(dir, 'sshd_config'), [
		`Port ${port}`,
		'ListenAddress 127.0.0.1',
		`HostKey ${join(dir, 'host_ed25519')}`,
		`PidFile ${join(dir, 'sshd.pid')}`,
		// Then the user's own (test users made with useradd: test/remote/remote-sudo.test.ts), read as that user.
		`AuthorizedKeysFile ${join(dir, 'authorized_keys')} .ssh/authorized_keys`,
		'StrictModes no',
		'UsePAM no',
		'PasswordAuthentication no',
		'KbdInteractiveAuthentication no',
		'PubkeyAuthentication yes',
		'PermitRootLogin prohibit-password',
		'PermitUserEnvironment yes',
		'MaxSessions 10', // OpenSSH's default, as on users' hosts: more channels need more connections
		'MaxStartups 64',
		'LogLevel ERROR',
		'',
	].join('\n'));
	const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], {stdio: ['ignore', 'ignore', 'pipe']});
	let log = '';
	child.stderr!.on('data', (chunk: Buffer) => {
		log += chunk.toString();
	});
	try {
		await waitForPort(port, child, () => log);
	} catch (error) {
		child.kill('SIGKILL');
		rmSync(dir, {recursive: true, force: true});
		throw error;
	}
	const env: NodeJS.ProcessEnv = {...process.env, HOME: home};
	delete env['SSH_AUTH_SOCK'];
	delete env['RBLOCKSYNC_REMOTE_AGENT'];
	const sessionPids = (): number[] => processes().filter(p => p.ppid === child.pid).map(p => p.pid);
	return {
		port, home, dir, env, hostKeyLine, pid: child.pid!, extraBin,
		sessionPids,
		async stop() {
			for (const pid of sessionPids()) {
				try {
					process.kill(pid, 'SIGKILL');
				} catch {
					// Already gone.
				}
			}
			if (child.exitCode === null) {
				const exited = new Promise(resolve => child.once('exit', resolve));
				child.kill('SIGTERM');
				await exited;
			}
			rmSync(dir, {recursive: true, force: true});
		},
	};
}
