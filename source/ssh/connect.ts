// Opens an SSH connection the way OpenSSH would: ~/.ssh/config, known_hosts, agent then key files, keepalives, ProxyJump.
import fs from 'node:fs';
import os from 'node:os';
import {randomBytes} from 'node:crypto';
import {basename, dirname, isAbsolute, join} from 'node:path';
import ssh2, {type AnyAuthMethod, type Client, type ClientChannel, type ConnectConfig} from 'ssh2';
import type {Duplex} from 'node:stream';
import {describeSystemError, InterruptedError, LinkDownError, RefusedError, UsageError} from '../errors.js';
import {signKeyFilesAtOnce} from './sign-at-once.js';
import {defaultIdentityFiles, expandHome, type HostConfig, matchPattern, parseSshConfig, type ReadInclude, resolveHost} from './config.js';
import {widenReceiveWindow} from './window.js';
import {checkKnownHosts, fingerprint, keyTypeOf, knownHostsLine, knownKeyTypes} from './known-hosts.js';

export type ConnectOptions = {
	readonly host: string;
	readonly user?: string;
	readonly port?: number;
	readonly identity?: string;
	readonly acceptNewHostKey: boolean;
	/** Where the user's ~/.ssh lives; os.homedir() by default (which follows $HOME). */
	readonly home?: string;
	readonly warn: (message: string) => void;
	/** Keepalive interval; a dead link fails after KEEPALIVE_COUNT_MAX of them. */
	readonly keepaliveMs?: number;
	/** The most reaching the host may take (TCP connect, SSH handshake, authentication; each ProxyJump hop), and opening a channel. */
	readonly timeoutMs?: number;
	/** Gives up a connection still being made (the run was interrupted); one already up is closed by its owner. */
	readonly signal?: AbortSignal;
};

/** An authenticated connection to one host alias. */
export type Connection = {
	readonly client: Client;
	readonly config: HostConfig;
	/** Why the connection failed after it was up (keepalive timeout, reset), once it has. */
	readonly lost: string | undefined;
	/** Runs a fixed command line (never user data) and returns its channel. */
	exec(command: string): Promise<ClientChannel>;
	close(): void;
};

const HOST_KEY_ALGORITHMS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);

/** Keepalives: a dead link fails within 15 s x 3 by default. */
export const KEEPALIVE_INTERVAL_MS = 15_000;
export const KEEPALIVE_COUNT_MAX = 3;
/** The bound on reaching a host when none is given (ssh2's readyTimeout until --timeout). */
export const CONNECT_TIMEOUT_MS = 30_000;
/** After close() says goodbye, how long a peer that does not hang up (a stopped sshd) may keep the socket open. */
const CLOSE_GRACE_MS = 1000;

/** Connects and authenticates; throws UsageError (exit 1) for every refusal, with one line naming the host. */
export async function connect(options: ConnectOptions, via?: Connection): Promise<Connection> {
	const home = options.home ?? os.homedir();
	// As OpenSSH: the user's file, then the system-wide one; the first value found wins.
	const blocks = [
		...parseSshConfig(readOptional(join(home, '.ssh', 'config')), includeReader(join(home, '.ssh'), home)),
		...parseSshConfig(readOptional(SYSTEM_CONFIG), includeReader('/etc/ssh', home)),
	];
	const config = resolveHost(blocks, {
		alias: options.host, home,
		...(options.user === undefined ? {} : {user: options.user}),
		...(options.port === undefined ? {} : {port: options.port}),
		...(options.identity === undefined ? {} : {identity: options.identity}),
	});
	const label = `ssh ${options.host}`;
	let jump = via;
	if (!jump && config.proxyJump) {
		// ProxyJump a,b: to a, from there to b, from there to this host (each hop by its own config).
		for (const hop of config.proxyJump.split(',')) {
			const target = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(hop.trim());
			if (!target) {
				throw new UsageError(`${label}: cannot read ProxyJump ${config.proxyJump}`);
			}
			const previous = jump;
			try {
				jump = await connect({...options, host: target[2]!, ...(target[1] ? {user: target[1]} : {}), ...(target[3] ? {port: Number(target[3])} : {}), identity: undefined}, previous);
			} catch (error) {
				previous?.close(); // The hops already up must not keep the process alive.
				throw error;
			}
		}
	}
	try {
		return await connectThrough(options, config, label, home, jump);
	} catch (error) {
		if (jump !== via) {
			jump?.close();
		}
		throw error;
	}
}

/** The connection to `config`'s host itself, through `jump` when there is one. */
async function connectThrough(options: ConnectOptions, config: HostConfig, label: string, home: string, jump: Connection | undefined): Promise<Connection> {
	const keepaliveMs = options.keepaliveMs ?? KEEPALIVE_INTERVAL_MS;
	const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
	const within = `within ${timeoutMs / 1000} s`;
	const knownHostsPath = join(home, '.ssh', 'known_hosts');
	const knownText = readOptional(knownHostsPath) + '\n' + readOptional('/etc/ssh/ssh_known_hosts');
	let refusal: string | undefined;
	const hostVerifier = (key: Buffer): boolean => {
		const verdict = checkKnownHosts(knownText, config.hostName, config.port, key);
		const where = `${options.host} (${config.hostName} port ${config.port})`;
		const print = `${keyTypeOf(key)} key fingerprint ${fingerprint(key)}`;
		switch (verdict.kind) {
			case 'known':
				return true;
			case 'revoked':
				refusal = `the host key of ${where} is marked @revoked in line ${verdict.line} of ${knownHostsPath}; refusing to connect`;
				return false;
			case 'changed':
				refusal = `THE HOST KEY OF ${where} HAS CHANGED: the server offers ${print}, which does not match line ${verdict.line} of ${knownHostsPath}; refusing to connect (if the change is expected, remove that line)`;
				return false;
			case 'unknown': {
				const line = knownHostsLine(config.hostName, config.port, key);
				if (options.acceptNewHostKey) {
					appendKnownHost(knownHostsPath, config.hashKnownHosts ? knownHostsLine(config.hostName, config.port, key, randomBytes(20)) : line);
					options.warn(`${options.host}: added ${print} to ${knownHostsPath}`);
					return true;
				}
				refusal = `the host key of ${where} is not known (${print}); to trust it, add this line to ${knownHostsPath} or run with --accept-new-host-key: ${line}`;
				return false;
			}
		}
	};
	const auths = authMethods(config, home, options.warn);
	// Offer the key types known_hosts holds first, as OpenSSH does, so a known host is not met with another key type.
	const preferred = knownKeyTypes(knownText, config.hostName, config.port)
		.flatMap(type => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]))
		.filter(type => HOST_KEY_ALGORITHMS.has(type));
	const client = new ssh2.Client();
	const connectConfig: ConnectConfig = {
		host: config.hostName,
		port: config.port,
		username: config.user,
		hostVerifier,
		authHandler: auths.methods,
		keepaliveInterval: keepaliveMs,
		keepaliveCountMax: KEEPALIVE_COUNT_MAX,
		readyTimeout: timeoutMs,
		...(preferred.length > 0 ? {algorithms: {serverHostKey: {prepend: preferred}} as unknown as ConnectConfig['algorithms']} : {}),
	};
	if (jump) {
		connectConfig.sock = await forward(jump, config.hostName, config.port, label, timeoutMs);
	}
	const where = `${config.hostName} port ${config.port}`;
	let reached = false;
	let up = false;
	let lost: string | undefined;
	let failed: ((error: Error) => void) | undefined;
	// One listener for the client's whole life: ssh2 can emit several errors for one failure (a handshake
	// timeout, then the connection lost before the handshake), and an error without a listener is a crash.
	client.on('error', (error: Error & {level?: string; code?: string}) => {
		if (!up) {
			client.destroy();
			if (refusal) {
				failed?.(new RefusedError(`${label}: ${refusal}`));
			} else if (error.level === 'client-authentication') {
				failed?.(new RefusedError(`${label}: authentication failed for ${config.user}@${config.hostName} (tried ${auths.tried.join(', ') || 'nothing: no agent and no key file'})`));
			} else if (error.level === 'client-timeout') {
				failed?.(new LinkDownError(reached
					? `${label}: ${where} accepted the connection but completed no SSH handshake ${within}`
					: `${label}: cannot connect to ${where}: no answer ${within}`, {cause: error}));
			} else if (error.code) {
				failed?.(new LinkDownError(`${label}: cannot connect to ${where}: ${describeSystemError(error)}`, {cause: error}));
			} else if (/before handshake/i.test(error.message)) {
				failed?.(new LinkDownError(`${label}: ${where} closed the connection before the SSH handshake`, {cause: error}));
			} else {
				failed?.(new UsageError(`${label}: ${error.message}`, {cause: error}));
			}
			failed = undefined;
			return;
		}
		// After `ready`, errors (keepalive timeout, reset) end the channels; their close reports this reason.
		lost ??= /keepalive/i.test(error.message) ? `no answer to keepalives for ${(keepaliveMs * KEEPALIVE_COUNT_MAX) / 1000} s: the connection is dead` : `the connection failed: ${describeSystemError(error)}`;
		client.end();
		client.destroy();
	});
	client.on('connect', () => {
		reached = true;
	});
	client.on('close', () => {
		lost ??= 'the connection closed';
		failed?.(new LinkDownError(`${label}: ${where} closed the connection before it was ready`));
		failed = undefined;
	});
	const onAbort = (): void => {
		client.destroy();
		failed?.(new InterruptedError('interrupted before DST was opened; DST untouched'));
		failed = undefined;
	};
	options.signal?.addEventListener('abort', onAbort);
	try {
		await new Promise<void>((resolve, reject) => {
			failed = reject;
			client.once('ready', () => {
				up = true;
				failed = undefined;
				resolve();
			});
			if (options.signal?.aborted) {
				onAbort();
			} else {
				client.connect(connectConfig);
				signKeyFilesAtOnce(client);
			}
		});
	} finally {
		options.signal?.removeEventListener('abort', onAbort);
	}
	return {
		client,
		config,
		get lost() {
			return lost;
		},
		exec: async command => new Promise((resolve, reject) => {
			// sshd answers a channel request at once; one that never comes (a stopped sshd) must not hold the run.
			let late = false;
			const timer = setTimeout(() => {
				late = true;
				reject(new LinkDownError(`${label}: the host opened no channel for a command ${within}`));
			}, timeoutMs);
			const done = (error: Error | undefined, channel?: ClientChannel): void => {
				clearTimeout(timer);
				if (late) {
					channel?.close();
				} else if (error) {
					reject(new LinkDownError(`${label}: cannot start a command: ${lost ?? error.message}`));
				} else {
					// A pull's SOURCE sends on it: ssh2's 2 MiB receive window would hold one channel to ~25 MiB/s at 80 ms.
					widenReceiveWindow(channel!);
					resolve(channel!);
				}
			};
			try {
				client.exec(command, done);
			} catch (error) {
				// ssh2 throws at once on a connection that is already gone.
				done(error instanceof Error ? error : new Error(String(error)));
			}
		}),
		close() {
			client.end();
			// A peer that does not hang up (stopped) must not keep this process alive: the socket goes anyway.
			setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref();
			jump?.close();
		},
	};
}

/** OpenSSH's order: the agent (unless IdentitiesOnly), then -i and IdentityFile keys, then the default key files. */
function authMethods(config: HostConfig, home: string, warn: (message: string) => void): {methods: AnyAuthMethod[]; tried: string[]} {
	const methods: AnyAuthMethod[] = [];
	const tried: string[] = [];
	const agent = process.env['SSH_AUTH_SOCK'];
	if (agent && !config.identitiesOnly) {
		methods.push({type: 'agent', username: config.user, agent});
		tried.push('the agent');
	}
	const files = [...new Set([...config.identityFiles, ...defaultIdentityFiles(home)])];
	for (const file of files) {
		let text: Buffer;
		try {
			text = fs.readFileSync(file);
		} catch (error) {
			if (config.identityFiles.includes(file)) {
				warn(`${config.alias}: identity file ${file}: ${describeSystemError(error)}`);
			}
			continue;
		}
		const parsed = ssh2.utils.parseKey(text);
		if (parsed instanceof Error) {
			warn(`${config.alias}: identity file ${file} cannot be used (${parsed.message}); encrypted keys need the agent`);
			continue;
		}
		methods.push({type: 'publickey', username: config.user, key: text});
		tried.push(file);
	}
	return {methods, tried};
}

async function forward(jump: Connection, host: string, port: number, label: string, timeoutMs: number): Promise<Duplex> {
	return new Promise((resolve, reject) => {
		let late = false;
		const timer = setTimeout(() => {
			late = true;
			reject(new UsageError(`${label}: ProxyJump through ${jump.config.alias} opened no connection within ${timeoutMs / 1000} s`));
		}, timeoutMs);
		jump.client.forwardOut('127.0.0.1', 0, host, port, (error, stream) => {
			clearTimeout(timer);
			if (late) {
				stream?.destroy();
			} else if (error) {
				reject(new UsageError(`${label}: ProxyJump through ${jump.config.alias} failed: ${error.message}`));
			} else {
				resolve(stream);
			}
		});
	});
}

function appendKnownHost(path: string, line: string): void {
	fs.mkdirSync(join(path, '..'), {recursive: true, mode: 0o700});
	fs.appendFileSync(path, `${line}\n`, {mode: 0o600});
}

const SYSTEM_CONFIG = '/etc/ssh/ssh_config';

/** Reads the files an Include word names: ~ expanded, relative to `base`, with * and ? in the file name. */
function includeReader(base: string, home: string): ReadInclude {
	return word => {
		const expanded = expandHome(word, home);
		const path = isAbsolute(expanded) ? expanded : join(base, expanded);
		const name = basename(path);
		if (!/[*?]/.test(name)) {
			return [readOptional(path)];
		}
		let names: string[];
		try {
			names = fs.readdirSync(dirname(path));
		} catch {
			return [];
		}
		return names.filter(entry => matchPattern(name, entry)).sort().map(entry => readOptional(join(dirname(path), entry)));
	};
}

function readOptional(path: string): string {
	try {
		return fs.readFileSync(path, 'utf8');
	} catch {
		return '';
	}
}
