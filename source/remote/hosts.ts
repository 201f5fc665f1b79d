// The SSH side of the driver: one connection pool and one agent plan per host, and agents started as links on them.
// One RemoteHosts serves a whole run, across every file of a run over many files (one handshake per host).
import {InterruptedError, TransferError, UsageError} from '../errors.js';
import type {Connection} from '../ssh/connect.js';
import {forwardStderr} from '../ssh/exec.js';
import {ConnectionPool} from '../ssh/pool.js';
import {type Bounds, DEFAULT_BOUNDS, settledWithin, THREADS_END_MS} from './bounds.js';
import {earlyOptions, takeEarly} from './early-connect.js';
import {type AgentPlan, agentFromProbe, localStartCommand, prepareAgent, type RemoteAgent} from './deploy.js';
import {type Link, StreamLink, ThreadLink} from './link.js';
import {Capability, decode, encode, type Message, PROTOCOL_VERSION} from '../protocol/messages.js';
import {tooOldForTrees} from './tree-host.js';
import {helloMessage} from '../agent/agent-core.js';
import {Pacer} from './pacer.js';

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
	/** --bwlimit in bytes per second (0 or absent: none): one budget for every file and worker of the run. */
	readonly bwlimit?: number;
	/** --retries: above 0, the agents' HELLO asks DEST for CHECKPOINT. */
	readonly retries?: number;
};

/**
 * A connected host. Without --remote-sudo/--remote-command its agents start with the one-exec start command
 * (deploy.ts: no probe channel first) until one of them prints the probe instead: `planning` then decides once for
 * every link of the host (an upload, say) and `plan` starts the rest. With them, `plan` comes from the probe first.
 */
type Host = {pool: ConnectionPool<Connection>; alias: string; start?: string; plan?: AgentPlan; planning?: Promise<AgentPlan>};

export class RemoteHosts {
	/** Bytes of agent bundles uploaded so far (wire bytes too). */
	uploadedBytes = 0;
	/** Where connection warnings (a new host key) go; a run over many files points it at its reporter. */
	warn: (message: string) => void = () => {};
	private readonly hosts = new Map<string, Promise<Host>>();
	/** Agents (and local worker threads) whose session is over, RESET and waiting for the next file's OPEN, per host. */
	private readonly idle = new Map<string, Link[]>();
	/** Links being given back (their RESET in flight), per host, and the next files' requests waiting for them. */
	private readonly returning = new Map<string, number>();
	private readonly waiting = new Map<string, Array<(link: Link | undefined) => void>>();
	/** Which host each link was made for, to give it back there. */
	private readonly homes = new WeakMap<Link, string>();
	private readonly teardown = new AbortController();
	private closing = false;
	/** The local role threads made for the run's files: its outcome is told once they ended (closeAndWait). */
	private readonly threads = new Set<Link>();
	private readonly started = performance.now();

	/** --bwlimit: the one token bucket every worker's relay draws from, whichever file it syncs. */
	readonly pacer: Pacer | undefined;

	constructor(private readonly options: HostOptions) {
		this.pacer = options.bwlimit ? new Pacer(options.bwlimit) : undefined;
	}

	private get bounds(): Bounds {
		return this.options.bounds ?? DEFAULT_BOUNDS;
	}

	private trace(what: string): void {
		if (this.options.trace) {
			process.stderr.write(`rblocksync: trace ${((performance.now() - this.started) / 1000).toFixed(3)} ${what}\n`);
		}
	}

	private keyOf(endpoint: HostEndpoint): string {
		return `${endpoint.user ?? ''}@${endpoint.host}:${endpoint.port ?? this.options.port ?? ''}`;
	}

	/** An idle link of that host's, still open; undefined when there is none. */
	private takeIdle(key: string): Link | undefined {
		const links = this.idle.get(key);
		while (links && links.length > 0) {
			const link = links.pop()!;
			if (!link.isClosed) {
				return link;
			}
		}
		return undefined;
	}

	/**
	 * An idle link of that host's, or the next one given back when one is on its way (its RESET takes a round trip, a
	 * new agent a process start): undefined when none is, or the one awaited was closed instead.
	 */
	private async reusable(key: string): Promise<Link | undefined> {
		const idle = this.takeIdle(key);
		const queue = this.waiting.get(key) ?? [];
		if (idle || (this.returning.get(key) ?? 0) <= queue.length) {
			return idle;
		}
		this.waiting.set(key, queue);
		return new Promise<Link | undefined>(resolve => queue.push(resolve));
	}

	/** A link given back (or undefined: closed instead) goes to the first request waiting, else among the idle. */
	private returned(key: string, link: Link | undefined): void {
		this.returning.set(key, (this.returning.get(key) ?? 1) - 1);
		const waiter = this.waiting.get(key)?.shift();
		if (waiter) {
			waiter(link);
			return;
		}
		if (link && this.closing) {
			// Given back after the run ended: nothing will take it.
			link.close();
			return;
		}
		if (link) {
			let links = this.idle.get(key);
			if (!links) {
				links = [];
				this.idle.set(key, links);
			}
			links.push(link);
		}
	}

	/**
	 * Starts `count` agents on the host (`local`: worker threads here) for the files about to be synced, each kept idle
	 * once it took RESET: the files' links then find them up rather than start them one file at a time. One that fails
	 * to start is not retried here (the file that wanted it starts its own and reports why).
	 */
	prestart(endpoint: HostEndpoint | 'local', count: number): void {
		const key = endpoint === 'local' ? 'local' : this.keyOf(endpoint);
		for (let index = 0; index < count && !this.closing; index++) {
			this.returning.set(key, (this.returning.get(key) ?? 0) + 1);
			const made = endpoint === 'local' ? this.newLocalLink() : this.newLink(endpoint, message => this.warn(message), true);
			made.then(link => {
				link.onFrame = () => {};
				link.onClose = () => {};
				if (this.closing) {
					link.close();
					this.returned(key, undefined);
					return;
				}
				this.returned(key, link);
			}, () => this.returned(key, undefined));
		}
	}

	/** A worker thread for a local role: an idle one of the run's, else a new one (`inProcess`: never pooled). */
	async localLink(inProcess: boolean): Promise<Link> {
		if (inProcess) {
			return ThreadLink.create(true);
		}
		const idle = await this.reusable('local');
		if (idle) {
			return idle;
		}
		return this.newLocalLink();
	}

	private async newLocalLink(): Promise<Link> {
		const link = ThreadLink.create(false);
		if (link.threadEnded) {
			this.threads.add(link);
		}
		await this.makeReusable(link);
		this.homes.set(link, 'local');
		return link;
	}

	/** HELLO, then RESET: the agent will outlive its sessions (doc/protocol.md). Throws if it does not answer both. */
	private async makeReusable(link: Link): Promise<void> {
		let program: string | undefined;
		const ok = await this.exchange(link, [encode(helloMessage((this.options.retries ?? 0) > 0)), encode({type: 'reset'})], message => {
			if (message.type === 'hello') {
				if (message.protocol !== PROTOCOL_VERSION) {
					return false;
				}
				link.greeted = message.caps;
				program = message.program;
				return undefined;
			}
			return message.type === 'ack' && message.error === '' && link.greeted !== undefined;
		});
		if (!ok) {
			link.close();
			const prefix = link.remote ? `ssh ${link.label}: ` : '';
			if (program !== undefined && ((link.greeted ?? 0) & Capability.tree) === 0) {
				throw new UsageError(`${prefix}${tooOldForTrees(program)}`);
			}
			throw new TransferError(`${prefix}the agent did not take RESET (an older rblocksync?)`);
		}
	}

	/** Sends `frames`, then hands each reply to `verdict` until it says true or false (false on the end, a timeout, a bad frame). */
	private exchange(link: Link, frames: readonly Buffer[], verdict: (message: Message) => boolean | undefined): Promise<boolean> {
		return new Promise<boolean>(resolve => {
			const timer = setTimeout(() => resolve(false), this.bounds.replyMs);
			const settle = (ok: boolean): void => {
				clearTimeout(timer);
				link.onFrame = () => {};
				link.onClose = () => {};
				resolve(ok);
			};
			link.onFrame = frame => {
				let result: boolean | undefined = false;
				try {
					const message = decode(frame);
					result = message.type === 'warn' ? undefined : verdict(message);
				} catch {
					// Not a frame of ours: not reused.
				}
				if (result !== undefined) {
					settle(result);
				}
			};
			link.onClose = () => settle(false);
			frames.forEach(frame => link.send(frame));
		});
	}

	/**
	 * Keeps a link whose run is over for the next file: `used` (it served a session or holds an image) is RESET first,
	 * and kept once its ACK came; a link that does not answer within the reply bound is closed.
	 */
	async giveBack(link: Link, used: boolean): Promise<void> {
		const key = this.homes.get(link);
		if (key === undefined || link.isClosed || this.closing) {
			link.close();
			return;
		}
		this.returning.set(key, (this.returning.get(key) ?? 0) + 1);
		if (used) {
			const acked = await this.exchange(link, [encode({type: 'reset'})], message => message.type === 'ack' && message.error === '');
			if (!acked || this.closing) {
				link.close();
				this.returned(key, undefined);
				return;
			}
		}
		link.onFrame = () => {};
		link.onClose = () => {};
		this.returned(key, link);
	}

	/** The host's connections and agent plan, made once (the first call connects and probes or deploys). */
	private hostFor(endpoint: HostEndpoint): Promise<Host> {
		const {options} = this;
		const key = this.keyOf(endpoint);
		let host = this.hosts.get(key);
		if (!host) {
			// ssh2 (~100 ms to load) only once a host is reached: a local run with a formatted image needs none of it.
			const connectOptions = earlyOptions(endpoint, options, this.bounds);
			const open = async (): Promise<Connection> => (await import('../ssh/connect.js')).connect({
				...connectOptions, warn: message => this.warn(message), signal: this.teardown.signal,
			});
			// The first connection may be under way already (main.ts started it as the run began).
			const first = takeEarly(connectOptions, message => this.warn(message), this.teardown.signal);
			host = (async () => {
				const connection = await (first ?? open());
				this.trace(`${endpoint.host}: connected`);
				const remote = options.remoteAgent;
				if (!remote?.sudo && remote?.command === undefined) {
					return {pool: new ConnectionPool(connection, open), alias: endpoint.host, start: localStartCommand(options.uploadAgent)};
				}
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
	async link(endpoint: HostEndpoint, warn: (message: string) => void, reuse = false): Promise<Link> {
		const idle = reuse ? await this.reusable(this.keyOf(endpoint)) : undefined;
		if (idle) {
			return idle;
		}
		return this.newLink(endpoint, warn, reuse);
	}

	private async newLink(endpoint: HostEndpoint, warn: (message: string) => void, reuse: boolean): Promise<Link> {
		const host = await this.hostFor(endpoint);
		// Decided before the channel opens: another link's probe may settle the plan meanwhile.
		const viaStart = host.plan === undefined;
		const command = host.plan?.command ?? host.start!;
		let link: StreamLink | undefined;
		const {channel, connection} = await this.openChannel(host, command, () => link, warn);
		// The start command may print the probe instead of starting an agent: the link then goes on with the plan's.
		link = new StreamLink(host.alias, channel, () => connection.lost, !viaStart ? undefined : async probe => {
			host.planning ??= agentFromProbe(connection, host.alias, probe, this.options.uploadAgent, message => this.warn(message), {timeoutMs: this.bounds.replyMs, signal: this.teardown.signal}).then(plan => {
				this.trace(`${host.alias}: agent ${plan.how}`);
				this.uploadedBytes += plan.uploadedBytes;
				host.plan = plan;
				return plan;
			});
			const plan = await host.planning;
			return (await this.openChannel(host, plan.command, () => link, warn)).channel;
		});
		if (reuse) {
			await this.makeReusable(link);
			this.homes.set(link, this.keyOf(endpoint));
		}
		return link;
	}

	/** An exec channel on one of the host's connections, its exit status and stderr going to `link` once there is one. */
	private async openChannel(host: Host, command: string, link: () => StreamLink | undefined, warn: (message: string) => void): Promise<{channel: Awaited<ReturnType<Connection['exec']>>; connection: Connection}> {
		const connection = await host.pool.reserve();
		let channel: Awaited<ReturnType<Connection['exec']>>;
		try {
			channel = await connection.exec(command);
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
		channel.on('exit', (code: number | null, exitSignal?: string) => link()?.exited(code, exitSignal));
		forwardStderr(channel, line => warn(`${host.alias}: ${line}`));
		return {channel, connection};
	}

	/** Closes every connection; connections still being made and agent start commands give up at once. */
	close(): void {
		this.closing = true;
		this.teardown.abort();
		for (const links of this.idle.values()) {
			links.splice(0).forEach(link => link.close());
		}
		for (const queue of this.waiting.values()) {
			queue.splice(0).forEach(waiter => waiter(undefined));
		}
		for (const host of this.hosts.values()) {
			host.then(h => h.pool.closeAll(), () => {});
		}
	}

	/**
	 * close(), then waits for the local role threads to end (each closes its image as it ends: a pull's DEST flushes
	 * DST), so that what the run reports comes after what it wrote; at most THREADS_END_MS for a thread stuck there.
	 */
	async closeAndWait(): Promise<void> {
		this.close();
		await settledWithin(Promise.all([...this.threads].map(link => link.threadEnded!())), THREADS_END_MS);
	}
}
