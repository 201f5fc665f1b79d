// The SSH side of the driver: one connection pool and one agent plan per host, and agents started as links on them.
// One RemoteHosts serves a whole run, across every file of a run over many files (one handshake per host).
import {InterruptedError} from '../errors.js';
import {connect, type Connection} from '../ssh/connect.js';
import {forwardStderr} from '../ssh/exec.js';
import {ConnectionPool} from '../ssh/pool.js';
import {type Bounds, DEFAULT_BOUNDS} from './bounds.js';
import {type AgentPlan, prepareAgent, type RemoteAgent} from './deploy.js';
import {type Link, StreamLink} from './link.js';

export type HostEndpoint = {readonly host: string; readonly user?: string; readonly port?: number};

export type HostOptions = {
	readonly port: number | undefined;
	readonly identity: string | undefined;
	/** --remote-sudo, --remote-command: how the agent runs on every remote host. */
	readonly remoteAgent?: RemoteAgent;
	readonly acceptNewHostKey: boolean;
	readonly uploadAgent: boolean;
	readonly keepaliveMs: number;
	readonly bounds?: Bounds;
	readonly trace: boolean;
};

type Host = {pool: ConnectionPool<Connection>; plan: AgentPlan; alias: string};

export class RemoteHosts {
	/** Bytes of agent bundles uploaded so far (wire bytes too). */
	uploadedBytes = 0;
	/** Where connection warnings (a new host key) go; a run over many files points it at its reporter. */
	warn: (message: string) => void = () => {};
	private readonly hosts = new Map<string, Promise<Host>>();
	private readonly teardown = new AbortController();
	private closing = false;
	private readonly started = performance.now();

	constructor(private readonly options: HostOptions) {}

	private get bounds(): Bounds {
		return this.options.bounds ?? DEFAULT_BOUNDS;
	}

	private trace(what: string): void {
		if (this.options.trace) {
			process.stderr.write(`rblocksync: trace ${((performance.now() - this.started) / 1000).toFixed(3)} ${what}\n`);
		}
	}

	/** The host's connections and agent plan, made once (the first call connects and probes or deploys). */
	private hostFor(endpoint: HostEndpoint): Promise<Host> {
		const {options} = this;
		const port = endpoint.port ?? options.port;
		const key = `${endpoint.user ?? ''}@${endpoint.host}:${port ?? ''}`;
		let host = this.hosts.get(key);
		if (!host) {
			const open = async (): Promise<Connection> => connect({
				host: endpoint.host, acceptNewHostKey: options.acceptNewHostKey, warn: message => this.warn(message), keepaliveMs: options.keepaliveMs,
				timeoutMs: this.bounds.connectMs, signal: this.teardown.signal,
				...(endpoint.user === undefined ? {} : {user: endpoint.user}),
				...(port === undefined ? {} : {port}),
				...(options.identity === undefined ? {} : {identity: options.identity}),
			});
			host = (async () => {
				const connection = await open();
				this.trace(`${endpoint.host}: connected`);
				try {
					const plan = await prepareAgent(connection, endpoint.host, options.uploadAgent, message => this.warn(message), {timeoutMs: this.bounds.replyMs, signal: this.teardown.signal}, options.remoteAgent);
					this.trace(`${endpoint.host}: agent ${plan.how}`);
					this.uploadedBytes += plan.uploadedBytes;
					return {pool: new ConnectionPool(connection, open), plan, alias: endpoint.host};
				} catch (error) {
					connection.close();
					throw error;
				}
			})();
			// A failed connection is not retried by the next file: it fails the same way, at once.
			this.hosts.set(key, host);
		}
		return host;
	}

	/** A new agent on the host, as a link (its stderr lines to `warn`). */
	async link(endpoint: HostEndpoint, warn: (message: string) => void): Promise<Link> {
		const host = await this.hostFor(endpoint);
		const connection = await host.pool.reserve();
		let channel: Awaited<ReturnType<Connection['exec']>>;
		try {
			channel = await connection.exec(host.plan.command);
		} catch (error) {
			host.pool.release(connection);
			throw error;
		}
		channel.once('close', () => host.pool.release(connection));
		if (this.closing) {
			// The run ended while this channel was opening: nothing will close it but this.
			channel.close();
			throw new InterruptedError('interrupted');
		}
		const link = new StreamLink(host.alias, channel, () => connection.lost);
		channel.on('exit', (code: number | null, exitSignal?: string) => link.exited(code, exitSignal));
		forwardStderr(channel, line => warn(`${host.alias}: ${line}`));
		return link;
	}

	/** Closes every connection; connections still being made and agent start commands give up at once. */
	close(): void {
		this.closing = true;
		this.teardown.abort();
		for (const host of this.hosts.values()) {
			host.then(h => h.pool.closeAll(), () => {});
		}
	}
}
