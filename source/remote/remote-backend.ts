// The digest protocol between a SOURCE and a DEST role over links (SSH channels, worker threads, in-process):
// connects, deploys agents, prepares DST once, then one session per worker range, relayed here.
import {existsSync} from 'node:fs';
import type {Range} from '../blocks/blocks.js';
import type {Phase, PrepareHooks, Prepared, RangeHooks, SyncBackend} from '../engine/backend.js';
import {throwIfStoppedBeforeDst} from '../engine/run-sync.js';
import type {Direction, WorkerState} from '../engine/progress.js';
import {InterruptedError} from '../errors.js';
import {ImageKindCode, type Message, openFlagBits, Role} from '../protocol/messages.js';
import {connect, type Connection} from '../ssh/connect.js';
import {forwardStderr} from '../ssh/exec.js';
import {ConnectionPool} from '../ssh/pool.js';
import {type AgentPlan, prepareAgent} from './deploy.js';
import {type Link, StreamLink, ThreadLink} from './link.js';
import {canPunch, openLink, relaySession} from './session.js';

/** Where one role runs: this host (a thread or in-process), or a remote host through SSH. */
export type RoleEndpoint =
	| {readonly kind: 'local'; readonly path: string}
	| {readonly kind: 'remote'; readonly host: string; readonly user?: string; readonly port?: number; readonly path: string};

export type RemoteOptions = {
	readonly src: RoleEndpoint;
	readonly dst: RoleEndpoint;
	/** How the endpoints are named in messages and the summary. */
	readonly srcName: string;
	readonly dstName: string;
	readonly truncate: boolean;
	readonly blockSize: number;
	readonly dryRun: boolean;
	readonly copy: boolean;
	readonly force: boolean;
	readonly hash: string;
	readonly compress: number;
	readonly port: number | undefined;
	readonly identity: string | undefined;
	readonly acceptNewHostKey: boolean;
	/** A timeline of the phases on stderr (RBLOCKSYNC_TRACE=1). */
	readonly trace: boolean;
	/** Local roles in worker threads (false: in-process, RBLOCKSYNC_LOCAL_THREADS=0). */
	readonly localThreads: boolean;
	/** Prefer uploading the agent over one installed on the host (RBLOCKSYNC_REMOTE_AGENT=upload). */
	readonly uploadAgent: boolean;
	readonly keepaliveMs: number;
};

type Host = {pool: ConnectionPool<Connection>; plan: AgentPlan; alias: string};

/** Push, pull and remote-to-remote. */
export class RemoteBackend implements SyncBackend {
	setupBytesSent = 0;
	private readonly hosts = new Map<string, Promise<Host>>();
	private readonly links = new Set<Link>();
	/** Links opened ahead, per worker index, for the sync phase. */
	private early: Array<Promise<[Link, Link]>> = [];
	/** The current phase's links per worker, for their wire bytes. */
	private workerLinks: Link[][] = [];
	private srcIdentity = '';
	private size = 0;
	private warn: (message: string) => void = () => {};
	private readonly started = performance.now();
	private readonly localDestIsNew: boolean;

	constructor(private readonly options: RemoteOptions) {
		// Decided before the prepare step creates it.
		this.localDestIsNew = options.dst.kind === 'local' && !existsSync(options.dst.path);
	}

	private trace(what: string): void {
		if (this.options.trace) {
			process.stderr.write(`rblocksync: trace ${((performance.now() - this.started) / 1000).toFixed(3)} ${what}\n`);
		}
	}

	async prepare(hooks: PrepareHooks): Promise<Prepared> {
		const {options} = this;
		this.warn = hooks.warn;
		// Both preparing agents start at once (node startup dominates), and then serve worker 0.
		const probes = Promise.all([this.makeLink(options.src), this.makeLink(options.dst)]);
		this.early = [probes];
		probes.catch(() => {});
		// Preparation: SRC's size, then DST checked (and created or resized) once, before any worker.
		const [srcProbe, dstProbe] = await probes;
		const source = await openLink(srcProbe, this.openMessage(Role.source, 'sync', true, {start: 0, end: 0}), this.warn);
		this.size = source.opened.size;
		this.srcIdentity = source.opened.identity;
		this.trace('SRC opened');
		throwIfStoppedBeforeDst(hooks.signal);
		// The workers' agents start while DST is being prepared. Worker 0 takes over SRC's preparing agent;
		// DST's stays apart, holding DST's lock until the very end, as the local engine's main thread does.
		const ranges = hooks.rangesFor(this.size);
		this.early[0] = Promise.all([srcProbe, this.makeLink(options.dst)]);
		this.early[0].catch(() => {});
		for (let id = 1; id < ranges.length; id++) {
			const pair = Promise.all([this.makeLink(options.src), this.makeLink(options.dst)]);
			pair.catch(() => {});
			this.early.push(pair);
		}
		const dest = await openLink(dstProbe, this.openMessage(Role.dest, 'sync', true, {start: 0, end: 0}), this.warn);
		if (options.dst.kind === 'remote' && !canPunch(dest.caps) && dest.opened.kind === ImageKindCode.file) {
			this.warn(`${options.dst.host}: holes will be written as zeros: native helper unavailable`);
		}
		this.trace('DST prepared');
		const direction: Direction = options.src.kind === 'local' ? 'push' : options.dst.kind === 'local' ? 'pull' : 'relay';
		return {src: options.srcName, dst: options.dstName, direction, size: this.size, dstExtraBytes: dest.opened.dstExtraBytes};
	}

	async runRange(range: Range, index: number, phase: Phase, hooks: RangeHooks): Promise<{completed: boolean}> {
		const {options} = this;
		const early = phase === 'sync' ? this.early[index] : undefined;
		const [srcLink, dstLink] = early ? await early : await Promise.all([this.makeLink(options.src), this.makeLink(options.dst)]);
		this.workerLinks[index] = [srcLink, dstLink];
		const state = hooks.state;
		try {
			const [opSrc, opDst] = await Promise.all([
				openLink(srcLink, this.openMessage(Role.source, phase, false, range), this.warn),
				openLink(dstLink, this.openMessage(Role.dest, phase, false, range), this.warn),
			]);
			this.trace(`worker ${index} opened`);
			const counters = await relaySession(srcLink, dstLink, {source: opSrc.held, dest: opDst.held}, {
				stats: counters => Object.assign(state, counters, {wireBytesSent: state.wireBytesSent, wireBytesReceived: state.wireBytesReceived}),
				warn: hooks.warn,
				signal: hooks.signal,
			}, () => new InterruptedError('interrupted'));
			Object.assign(state, counters);
			this.trace(`worker ${index} done`);
			return {completed: true};
		} catch (error) {
			srcLink.close();
			dstLink.close();
			if (error instanceof InterruptedError && hooks.signal.aborted) {
				return {completed: false};
			}
			throw error;
		}
	}

	async endPhase(): Promise<void> {
		// DEST flushes DST (fdatasync) before it says DONE.
	}

	async beforeVerify(): Promise<void> {}

	sample(states: readonly WorkerState[]): void {
		states.forEach((state, index) => {
			const remote = (this.workerLinks[index] ?? []).filter(link => link.remote);
			state.wireBytesSent = remote.reduce((sum, link) => sum + link.bytesOut, 0);
			state.wireBytesReceived = remote.reduce((sum, link) => sum + link.bytesIn, 0);
		});
	}

	async close(): Promise<void> {
		await Promise.allSettled(this.early);
		for (const link of this.links) {
			link.close();
		}
		for (const host of this.hosts.values()) {
			host.then(h => h.pool.closeAll(), () => {});
		}
	}

	/** SRC's identity (with its host's boot id) goes to DEST, which refuses SRC itself when it runs on the same host. */
	private openMessage(role: Role, phase: Phase, prepare: boolean, range: Range): Message {
		const {options} = this;
		const endpoint = role === Role.source ? options.src : options.dst;
		const flags = openFlagBits({
			truncate: options.truncate, dryRun: options.dryRun || phase === 'verify', copy: options.copy && phase === 'sync', force: options.force, prepare,
		});
		return {
			type: 'open', role, flags, blockSize: options.blockSize, compress: options.compress,
			srcSize: this.size, start: range.start, end: range.end, hash: options.hash, path: endpoint.path,
			srcIdentity: role === Role.dest ? this.srcIdentity : '',
		};
	}

	private hostFor(endpoint: Extract<RoleEndpoint, {kind: 'remote'}>): Promise<Host> {
		const {options} = this;
		const port = endpoint.port ?? options.port;
		const key = `${endpoint.user ?? ''}@${endpoint.host}:${port ?? ''}`;
		let host = this.hosts.get(key);
		if (!host) {
			const open = async (): Promise<Connection> => connect({
				host: endpoint.host, acceptNewHostKey: options.acceptNewHostKey, warn: this.warn, keepaliveMs: options.keepaliveMs,
				...(endpoint.user === undefined ? {} : {user: endpoint.user}),
				...(port === undefined ? {} : {port}),
				...(options.identity === undefined ? {} : {identity: options.identity}),
			});
			host = (async () => {
				const connection = await open();
				this.trace(`${endpoint.host}: connected`);
				try {
					const plan = await prepareAgent(connection, endpoint.host, options.uploadAgent, this.warn);
					this.trace(`${endpoint.host}: agent ${plan.how}`);
					// The agent bundles uploaded to the hosts count as bytes sent, like the sessions' frames.
					this.setupBytesSent += plan.uploadedBytes;
					return {pool: new ConnectionPool(connection, open), plan, alias: endpoint.host};
				} catch (error) {
					connection.close();
					throw error;
				}
			})();
			this.hosts.set(key, host);
		}
		return host;
	}

	private async makeLink(endpoint: RoleEndpoint): Promise<Link> {
		if (endpoint.kind === 'local') {
			// A local DST that does not exist yet only takes writes (a first copy sends no digests): handing
			// every byte on to a thread costs more than writing it here (pull, 1 GiB: 4.6-5.2 s -> 3.9 s).
			const link = ThreadLink.create(!this.options.localThreads || (endpoint === this.options.dst && this.localDestIsNew));
			this.links.add(link);
			return link;
		}
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
		const link = new StreamLink(host.alias, channel, () => connection.lost);
		channel.on('exit', (code: number | null, exitSignal?: string) => link.exited(code, exitSignal));
		forwardStderr(channel, line => this.warn(`${host.alias}: ${line}`));
		this.links.add(link);
		return link;
	}
}
