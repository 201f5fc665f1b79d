// The SSH connections of a run, started as soon as its options are read: the handshake's round trips (five at
// least, each 80 ms on a far link, and sshd's own work) then overlap the loading of the engine, the reporter and
// the images (~0.1 s here), instead of following it. RemoteHosts takes the connection its first link needs; what
// the run never takes (it failed first, or went elsewhere) is closed by closeEarly().
import type {Connection, ConnectOptions} from '../ssh/connect.js';
import {type Bounds, DEFAULT_BOUNDS} from './bounds.js';
import type {HostEndpoint, HostOptions} from './hosts.js';

/** What a connection is made with, but for its warning sink and abort signal (given when it is taken). */
export type EarlyOptions = Omit<ConnectOptions, 'warn' | 'signal'>;

type Early = {
	readonly connecting: Promise<Connection>;
	readonly abort: AbortController;
	/** Warnings said before the connection was taken, and where later ones go. */
	readonly said: string[];
	sink: ((message: string) => void) | undefined;
};

const early = new Map<string, Early>();

/** The options a host's connections are made with (the early one too: the same key, or it is not used). */
export function earlyOptions(endpoint: HostEndpoint, options: Pick<HostOptions, 'port' | 'identity' | 'acceptNewHostKey' | 'keepaliveMs' | 'bounds'>, bounds: Bounds = options.bounds ?? DEFAULT_BOUNDS): EarlyOptions {
	const port = endpoint.port ?? options.port;
	return {
		host: endpoint.host, acceptNewHostKey: options.acceptNewHostKey, keepaliveMs: options.keepaliveMs, timeoutMs: bounds.connectMs,
		...(endpoint.user === undefined ? {} : {user: endpoint.user}),
		...(port === undefined ? {} : {port}),
		...(options.identity === undefined ? {} : {identity: options.identity}),
	};
}

/** The same connection's key whichever options object it was made from (the fields connect() reads). */
export function earlyKey(options: EarlyOptions): string {
	return JSON.stringify([options.host, options.user ?? null, options.port ?? null, options.identity ?? null, options.acceptNewHostKey, options.keepaliveMs ?? null, options.timeoutMs ?? null, options.home ?? null]);
}

/** Starts connecting (once per key); `signal` (the run's interrupt) aborts a handshake in progress. */
export function connectEarly(options: EarlyOptions, signal: AbortSignal): void {
	const key = earlyKey(options);
	if (early.has(key)) {
		return;
	}
	const abort = new AbortController();
	const onAbort = (): void => abort.abort();
	signal.addEventListener('abort', onAbort, {once: true});
	const entry: Early = {
		abort, said: [], sink: undefined,
		connecting: import('../ssh/connect.js').then(({connect}) => connect({...options, signal: abort.signal, warn: message => {
			if (entry.sink) {
				entry.sink(message);
			} else {
				entry.said.push(message);
			}
		}})),
	};
	// Reported when it is taken; one that is not taken was not the run's.
	entry.connecting.catch(() => {}).finally(() => signal.removeEventListener('abort', onAbort));
	early.set(key, entry);
}

/**
 * The connection started early with exactly these options, once (undefined: none was): its warnings so far are
 * said to `warn` now, later ones as they come; `signal` (the taker's teardown) aborts its handshake from now on.
 */
export function takeEarly(options: EarlyOptions, warn: (message: string) => void, signal: AbortSignal): Promise<Connection> | undefined {
	const key = earlyKey(options);
	const entry = early.get(key);
	if (!entry) {
		return undefined;
	}
	early.delete(key);
	for (const message of entry.said.splice(0)) {
		warn(message);
	}
	entry.sink = warn;
	if (signal.aborted) {
		entry.abort.abort();
	} else {
		signal.addEventListener('abort', () => entry.abort.abort(), {once: true});
	}
	return entry.connecting;
}

/** Closes (or stops) every connection started early and not taken. */
export function closeEarly(): void {
	for (const entry of early.values()) {
		entry.abort.abort();
		entry.connecting.then(connection => connection.close(), () => {});
	}
	early.clear();
}
