// The digest protocol between a SOURCE and a DEST role over links (SSH channels, worker threads, in-process):
// connects, deploys agents, prepares DST once, then one session per worker range, relayed here.
import {existsSync} from 'node:fs';
import path from 'node:path';
import {decodePassRecord, encodePassRecord} from '../image/bitmap.js';
import type {Range} from '../blocks/blocks.js';
import type {Phase, PrepareHooks, Prepared, RangeHooks, SyncBackend} from '../engine/backend.js';
import {throwIfStoppedBeforeDst} from '../engine/run-sync.js';
import type {Direction, WorkerState} from '../engine/progress.js';
import {InterruptedError, LinkDownError, LinkLostError, RblocksyncError, RefusedError, TransferError, UsageError} from '../errors.js';
import {emptyCounters} from '../blocks/counters.js';
import type {Counters} from '../engine/progress.js';
import {checkpointProblem} from '../delta/session-rules.js';
import {geometryFor} from '../delta/chunks.js';
import {sourceChangedMessage} from '../image/source-version.js';
import {CACHE_UNCHANGED, Capability, compressByte, type CompressSpec, ImageKindCode, type Message, OpenFlag, openFlagBits, RECORD_ONLY, Role, WIDE_SESSION} from '../protocol/messages.js';
import {type Bounds, DEFAULT_BOUNDS, settledWithin, THREADS_END_MS, unlessAborted} from './bounds.js';
import type {RemoteAgent} from './deploy.js';
import {RemoteHosts} from './hosts.js';
import {type Link, ThreadLink} from './link.js';
import {canPunch, type Held, openLink, prefixOf, relaySession} from './session.js';
import {helloMessage} from '../agent/agent-core.js';

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
	/** --verify: SRC's quick check never answers the sync phase. */
	readonly verify?: boolean;
	/** DEST keeps a digest cache of DST on DST's host (not --no-cache); absent: none. */
	readonly cache?: boolean;
	/** --cache-dir: the digest cache's directory on DST's host; absent: that host's default. */
	readonly cacheDir?: string | undefined;
	/** --trust-cache: a block device's cache is used, this percentage of its chunks checked every run; absent: not used. */
	readonly trustCache?: number | undefined;
	/** --compress; absent: off. */
	readonly compress?: CompressOption;
	/** --bwlimit in bytes per second, one budget for the whole run (0 or absent: no limit). */
	readonly bwlimit?: number;
	readonly port: number | undefined;
	readonly identity: string | undefined;
	/** --remote-sudo, --remote-command: how the agent runs on every remote host (absent: as the SSH user, rblocksync or the bundle). */
	readonly remoteAgent?: RemoteAgent;
	readonly acceptNewHostKey: boolean;
	/** --src-format/--dst-format: undefined when not given (an image holding a format header is then refused). */
	readonly srcFormat?: string | undefined;
	readonly dstFormat?: string | undefined;
	/** --bitmap NAME: SRC's dirty bitmap; a pass after a recorded one to this very DST reads only what it marks. */
	readonly bitmap?: string | undefined;
	/** --qmp: SRC's running VM's monitor socket, on SRC's host. */
	readonly qmp?: string | undefined;
	/** --force-share: a formatted SRC read past its lock. */
	readonly forceShare?: boolean;
	/** A timeline of the phases on stderr (RBLOCKSYNC_TRACE=1). */
	readonly trace: boolean;
	/** Local roles in worker threads (false: in-process, RBLOCKSYNC_LOCAL_THREADS=0). */
	readonly localThreads: boolean;
	/** Prefer uploading the agent over one installed on the host (RBLOCKSYNC_REMOTE_AGENT=upload). */
	readonly uploadAgent: boolean;
	readonly keepaliveMs: number;
	/** How long each step may wait on a host (--timeout); DEFAULT_BOUNDS when absent. */
	readonly bounds?: Bounds;
	/** --retries: how many times a run may reconnect after a link dropped (absent or 0: a drop fails the run). */
	readonly retries?: number;
};

/** The first wait before reconnecting, doubled after each failed attempt up to RECONNECT_MAX_DELAY_MS. */
export const RECONNECT_FIRST_DELAY_MS = 500;
export const RECONNECT_MAX_DELAY_MS = 8000;

/** Whether an error is a link that went away (an SSH connection or channel, an agent ended without an ERROR): --retries reconnects. */
export function isLinkFailure(error: unknown): boolean {
	return error instanceof LinkLostError || error instanceof LinkDownError;
}

/** `a` + `b`, counter by counter. */
function addCounters(a: Counters, b: Counters): Counters {
	const sum = {...a};
	for (const key of Object.keys(b) as Array<keyof Counters>) {
		sum[key] += b[key];
	}
	return sum;
}

/** --compress as the user gave it: the codec follows from both agents' HELLO (compressFor). */
export type CompressOption = {readonly mode: 'off' | 'auto' | 'on'; readonly level: number};

/**
 * OPEN's compress spec for a session, from both roles' HELLO capabilities: zstd when both have it, else zlib
 * (levels above 9 capped) with `fallback` naming the role without zstd; auto only for a SOURCE that measures
 * (an older one gets nothing for auto, a plain zlib level when asked for a level). `remote`: a role runs on
 * another host; without one (a local run with a formatted endpoint: roles in threads of this process) auto is
 * off, as the link is memory: zlib's samples of incompressible data cost SOURCE 3.5 s of CPU per GiB here.
 */
export function compressFor(option: CompressOption | undefined, sourceCaps: number, destCaps: number, remote = true): {spec: CompressSpec; fallback?: 'SOURCE' | 'DEST'} {
	if (!option || option.mode === 'off' || (option.mode === 'auto' && !remote)) {
		return {spec: undefined};
	}
	const auto = option.mode === 'auto';
	if ((sourceCaps & Capability.compressAuto) === 0) {
		return auto ? {spec: undefined} : {spec: {codec: 'zlib', level: Math.min(9, option.level), auto: false}, fallback: 'SOURCE'};
	}
	if ((sourceCaps & destCaps & Capability.zstd) !== 0) {
		return {spec: {codec: 'zstd', level: option.level, auto}};
	}
	return {spec: {codec: 'zlib', level: Math.min(9, option.level), auto}, fallback: (sourceCaps & Capability.zstd) === 0 ? 'SOURCE' : 'DEST'};
}

/** "zstd 1, auto", "zlib 6", "off" (the summary's compress row and --json's compression). */
export function describeCompression(spec: CompressSpec): string {
	return spec ? `${spec.codec} ${spec.level}${spec.auto ? ', auto' : ''}` : 'off';
}

/** Push, pull and remote-to-remote. */
export class RemoteBackend implements SyncBackend {
	/** The agent bundles this backend's hosts had uploaded (none when the hosts are shared: the run counts those once). */
	/** DST bytes read before the sessions: a trusted device cache's sample, read by DST's preparing agent. */
	setupDstBytesRead = 0;

	get setupBytesSent(): number {
		return this.ownHosts ? this.remoteHosts.uploadedBytes : 0;
	}
	private readonly remoteHosts: RemoteHosts;
	private readonly ownHosts: boolean;
	private readonly links = new Set<Link>();
	/** The links whose role runs in a thread of this process: close() waits for their threads to end. */
	private readonly threads = new Set<Link>();
	/** Each link's byte counters when this run took it. */
	private readonly linkBase = new Map<Link, [number, number]>();
	/** Links opened ahead, per worker index, for the sync phase. */
	private early: Array<Promise<[Link, Link]>> = [];
	/** The current phase's links per worker, for their wire bytes. */
	private workerLinks: Link[][] = [];
	private srcIdentity = '';
	/** SRC's agent's HELLO capabilities: with `keyed`, DEST's workers key their digests with the cache's key (KEY). */
	private srcCaps = 0;
	/** DST's preparing agent's HELLO capabilities. */
	private dstCaps = 0;
	/** SRC's quick-check stamp from its preparing agent's CACHE ('' when none: a device, a recent write, an older agent). */
	private srcStamp = '';
	/** SRC as its first preparing agent saw it (OPENED's version): a later one, after a reconnect, must find the same. */
	private srcVersion: string | undefined;
	/** DEST's cache vouches for SRC and DST both unchanged since its run (SRC's quick check): the sync phase reads nothing. */
	private unchanged = false;
	/** The sessions' compression, decided from both preparing agents' HELLO (the workers run the same agents). */
	private compression: CompressSpec = undefined;
	/** SOURCE's data runs through the relay: their bytes, and their bytes on the wire (compressed or not). */
	private readonly dataBytes = {raw: 0, wire: 0};
	/** A DEST session of the sync phase opened: DST may have been written from then on (a later drop is exit 2). */
	private destOpened = false;
	/** SRC's preparing agent, kept until the end: it holds SRC's shared lock and checks SRC after the sync phase. */
	private srcHolder: {link: Link; held: Held} | undefined;
	/** DST's preparing agent, "bootid:pid:fd" in its OPENED: the DEST workers write through its open file description. */
	private dstHolderToken = '';
	/** The NBD sockets the preparing agents serve a formatted SRC and DST on (their OPENED's server): each worker's holder. */
	private srcServer = '';
	private dstServer = '';
	/** Set when DST's preparing agent ended before close(): every session stops (lockWatch) and the run fails with it. */
	private lockLost: TransferError | undefined;
	private lockWatch = new AbortController();
	/** --retries: attempts to reconnect left for the run; reconnects made; a drop's recovery under way, shared by its workers. */
	private retriesLeft: number;
	private reconnectCount = 0;
	private generation = 0;
	private recovering: Promise<void> | undefined;
	/** The generation whose recovery took DST's lock again (0: never): checkpoints made before it no longer count. */
	private relockedAt = 0;
	/** The wire bytes of each worker's links that were dropped (its sessions before a reconnect). */
	private readonly droppedWire: Array<[number, number]> = [];
	/** After a reconnect DEST's digest cache is no longer kept (its holder may be gone, a worker's records cut short). */
	private cacheDropped = false;
	private closing = false;
	/** DST's preparing agent once its prepare step began: after its HELLO, OPEN went out and may have created or resized DST. */
	private dstPreparing: Link | undefined;
	/** DEST's digest cache as its preparing agent found it (its CACHE frame); undefined without --cache or in a dry run. */
	private cacheStatus: string | undefined;
	/** --bitmap: whether this pass reads only the chunks the bitmap marks, and why not; DST's stamp after the sync phase. */
	private bitmapIncremental = false;
	private bitmapStatus: string | undefined;
	private dstStampAfter = '';
	private size = 0;
	private warn: (message: string) => void = () => {};
	private readonly started = performance.now();
	private readonly localDestIsNew: boolean;
	/** The driver's HELLO: DEST's CHECKPOINT asked for only when a drop may be survived (--retries above 0). */
	private readonly hello: Message;

	/** `localLink`: the link for a local endpoint (default: a worker thread, or in-process); tests pass memory images. */
	/** `hosts`: connections shared with other backends of the run (kept open by close()); default: this backend's own. */
	constructor(private readonly options: RemoteOptions, private readonly localLink?: (endpoint: RoleEndpoint) => Link, hosts?: RemoteHosts) {
		this.ownHosts = hosts === undefined;
		this.remoteHosts = hosts ?? new RemoteHosts(options);
		if (this.ownHosts) {
			this.remoteHosts.warn = message => this.warn(message);
		}
		this.retriesLeft = options.retries ?? 0;
		// Checkpoints (an fdatasync each) only where a link can drop: not in a local run (a formatted endpoint's threads).
		this.hello = helloMessage(this.retriesLeft > 0 && (options.src.kind !== 'local' || options.dst.kind !== 'local'));
		// Decided before the prepare step creates it.
		this.localDestIsNew = options.dst.kind === 'local' && !existsSync(options.dst.path);
	}

	private trace(what: string): void {
		if (this.options.trace) {
			process.stderr.write(`rblocksync: trace ${((performance.now() - this.started) / 1000).toFixed(3)} ${what}\n`);
		}
	}

	private get bounds(): Bounds {
		return this.options.bounds ?? DEFAULT_BOUNDS;
	}

	/** Every step below is bounded (connect, agent start, HELLO, OPENED); a signal ends the wait at once, close() the rest. */
	async prepare(hooks: PrepareHooks): Promise<Prepared> {
		return unlessAborted(this.prepareBoth(hooks), hooks.signal, () => new InterruptedError(this.dstPreparing?.greeted !== undefined ? 'interrupted before the sync began' : 'interrupted before DST was opened; DST untouched'));
	}

	private async prepareBoth(hooks: PrepareHooks): Promise<Prepared> {
		const {options} = this;
		this.warn = hooks.warn;
		// Both preparing agents start at once (node startup dominates).
		const probes = Promise.all([this.makeLink(options.src), this.makeLink(options.dst)]);
		probes.catch(() => {});
		// With SRC remote its size comes a few round trips from now: the workers' agents start at once, as many as
		// the largest image gets; those a smaller one does not need are closed once SRC's size is known.
		const pair = (): Promise<[Link, Link]> => {
			const links = Promise.all([this.makeLink(options.src), this.makeLink(options.dst)]);
			links.catch(() => {});
			return links;
		};
		this.early = options.src.kind === 'remote' ? hooks.rangesFor(Number.MAX_SAFE_INTEGER).map(() => pair()) : [];
		// Preparation: SRC's size, then DST checked (and created or resized) once, before any worker.
		const [srcProbe, dstProbe] = await probes;
		const source = await openLink(srcProbe, this.openMessage(Role.source, 'sync', true, {start: 0, end: 0}), this.warn, this.bounds.replyMs, undefined, this.hello);
		this.size = source.opened.size;
		this.srcIdentity = source.opened.identity;
		this.srcCaps = source.caps;
		this.srcStamp = this.wantsCache() ? source.cache ?? '' : '';
		this.srcServer = source.opened.server ?? '';
		this.srcVersion = source.opened.version;
		this.srcHolder = {link: srcProbe, held: source.held};
		this.trace('SRC opened');
		throwIfStoppedBeforeDst(hooks.signal);
		// The workers' agents start while DST is being prepared. Both preparing agents stay apart, holding their
		// image's lock until the very end, as the local engine's main thread does; SRC's then checks SRC (checkSource).
		const ranges = hooks.rangesFor(this.size);
		for (const extra of this.early.splice(ranges.length)) {
			extra.then(links => links.forEach(link => {
				link.close();
				this.links.delete(link);
			}), () => {});
		}
		while (this.early.length < ranges.length) {
			this.early.push(pair());
		}
		this.dstPreparing = dstProbe;
		// SRC's stamp goes ahead of DST's prepare OPEN to an agent that takes it; with --copy and --verify (which read or
		// write everything) only to be recorded.
		const stamp = (caps: number): Message | undefined => (caps & Capability.quickCheck) === 0 || this.srcStamp === '' ? undefined
			: {type: 'cache', status: options.copy || options.verify === true ? `${RECORD_ONLY}${this.srcStamp}` : this.srcStamp};
		const dest = await openLink(dstProbe, this.openMessage(Role.dest, 'sync', true, {start: 0, end: 0}), this.warn, this.bounds.replyMs, stamp, this.hello);
		this.dstHolderToken = dest.opened.identity;
		this.dstCaps = dest.caps;
		const compression = compressFor(options.compress, this.srcCaps, dest.caps, options.src.kind === 'remote' || options.dst.kind === 'remote');
		this.compression = compression.spec;
		if (compression.fallback && options.compress?.mode === 'on') {
			const host = compression.fallback === 'SOURCE' ? options.src : options.dst;
			const name = host.kind === 'remote' ? `${host.host}'s agent` : 'this host';
			this.warn(`--compress: ${name} has no zstd (${compression.fallback === 'SOURCE' && (this.srcCaps & Capability.compressAuto) === 0 ? 'an older rblocksync' : 'libzstd.so.1 not loaded'}): compressing with zlib ${Math.min(9, options.compress.level)}`);
		}
		this.cacheStatus = this.wantsCache() ? dest.cache ?? 'off: the agent on DST\'s host keeps no digest cache' : undefined;
		this.unchanged = this.cacheStatus === CACHE_UNCHANGED;
		if (this.unchanged) {
			this.trace('SRC and DST unchanged (quick check)');
		}
		this.setupDstBytesRead = dest.cacheBytesRead ?? 0;
		this.dstServer = dest.opened.server ?? '';
		this.decideBitmap(source.opened.pass, dest.opened.pass);
		this.watchLockHolder(dstProbe, dest.held);
		if (options.dst.kind === 'remote' && !canPunch(dest.caps) && dest.opened.kind === ImageKindCode.file) {
			this.warn(`${options.dst.host}: holes will be written as zeros: native helper unavailable`);
		}
		this.trace('DST prepared');
		const direction: Direction = options.src.kind === 'local' ? (options.dst.kind === 'local' ? 'local' : 'push') : options.dst.kind === 'local' ? 'pull' : 'relay';
		return {src: options.srcName, dst: options.dstName, direction, size: this.size, dstExtraBytes: dest.opened.dstExtraBytes};
	}

	async runRange(range: Range, index: number, phase: Phase, hooks: RangeHooks): Promise<{completed: boolean}> {
		const {options} = this;
		const early = phase === 'sync' ? this.early[index] : undefined;
		if (phase === 'sync' && this.unchanged) {
			// SRC's quick check: nothing to compare or write. The links opened ahead are closed unused.
			// (A run over many files gives them back at close(), for the next file.)
			if (this.ownHosts) {
				early?.then(links => links.forEach(link => link.close()), () => {});
			}
			hooks.state.bytesScanned = range.end - range.start;
			return {completed: true};
		}
		const state = hooks.state;
		const chunkSize = geometryFor(options.blockSize).chunkSize;
		const limit = Math.min(range.end, this.size);
		/** Where this worker's session starts: the range's start, then the last CHECKPOINT of a session whose link dropped. */
		let from = range.start;
		/** The counters of the sessions before (their bytes scanned: up to `from`). */
		let before: Counters | undefined;
		let pending: Promise<[Link, Link]> = early ?? this.makePair();
		for (;;) {
			const generation = this.generation;
			let links: [Link, Link];
			try {
				links = await unlessAborted(pending, hooks.signal, () => new InterruptedError('interrupted'));
			} catch (error) {
				if (hooks.signal.aborted) {
					return {completed: false};
				}
				if (isLinkFailure(error)) {
					// The host went again while this worker reconnected.
					await this.recover(generation, error, hooks.signal);
					pending = this.makePair();
					continue;
				}
				throw error;
			}
			const [srcLink, dstLink] = links;
			this.workerLinks[index] = [srcLink, dstLink];
			// The session stops when the run does (hooks.signal) and, at once, when DST's lock holder ends.
			const stop = new AbortController();
			const onStop = (): void => stop.abort();
			const watched = [hooks.signal, this.lockWatch.signal];
			for (const signal of watched) {
				signal.addEventListener('abort', onStop);
			}
			let checkpoint = from;
			let seen: Counters | undefined;
			const merged = (counters: Counters): Counters => (before ? addCounters(before, counters) : counters);
			try {
				this.throwIfLockLost();
				const part = {start: from, end: range.end};
				const [opSrc, opDst] = await unlessAborted(Promise.all([
					openLink(srcLink, this.openMessage(Role.source, phase, false, part), this.warn, this.bounds.replyMs, undefined, this.hello),
					openLink(dstLink, this.openMessage(Role.dest, phase, false, part), this.warn, this.bounds.replyMs, undefined, this.hello),
				]), stop.signal, () => this.lockLost ?? new InterruptedError('interrupted'));
				this.throwIfLockLost();
				this.destOpened ||= phase === 'sync';
				this.trace(`worker ${index} opened${from > range.start ? ` at ${from}` : ''}`);
				const counters = await relaySession(srcLink, dstLink, {source: opSrc.held, dest: opDst.held}, {
					stats: counters => {
						seen = counters;
						Object.assign(state, merged(counters), {wireBytesSent: state.wireBytesSent, wireBytesReceived: state.wireBytesReceived});
					},
					warn: hooks.warn,
					signal: stop.signal,
					stallMs: this.bounds.stallMs,
					...(this.remoteHosts.pacer ? {pacer: this.remoteHosts.pacer} : {}),
					dataBytes: this.dataBytes,
					checkpoint: offset => {
						const problem = checkpointProblem(from, limit, chunkSize, checkpoint, offset);
						checkpoint = problem === undefined ? offset : checkpoint;
						this.trace(`worker ${index} checkpoint ${offset}`);
						return problem;
					},
				}, () => this.lockLost ?? new InterruptedError('interrupted'));
				Object.assign(state, merged(counters), {wireBytesSent: state.wireBytesSent, wireBytesReceived: state.wireBytesReceived});
				this.trace(`worker ${index} done`);
				return {completed: true};
			} catch (error) {
				srcLink.close();
				dstLink.close();
				this.dropLinks(index, [srcLink, dstLink]);
				// A worker that failed because the holder ended (its open, a write) reports the holder's end.
				const cause = this.lockLost && (error === this.lockLost || error instanceof InterruptedError || isLinkFailure(error)) ? this.lockLost : error;
				if (hooks.signal.aborted && error instanceof InterruptedError) {
					return {completed: false};
				}
				if (!isLinkFailure(cause) || hooks.signal.aborted) {
					throw cause;
				}
				// The link dropped: reconnect (once for every worker it took down) and go on from DEST's last CHECKPOINT.
				await this.recover(generation, cause, hooks.signal);
				// What the sessions so far did counts (their writes, reads); what is scanned again does not.
				// DST's lock went with the drop and was taken again: another run may have written DST in between, so no
				// checkpoint vouches for it any more: the whole range is compared again (only what differs is sent).
				const resume = this.relockedAt > generation ? range.start : checkpoint;
				before = {...(seen ? merged(seen) : before ?? emptyCounters()), wireBytesSent: 0, wireBytesReceived: 0, bytesScanned: resume - range.start};
				this.trace(`worker ${index} resumes at ${resume}`);
				from = resume;
				pending = this.makePair();
			} finally {
				for (const signal of watched) {
					signal.removeEventListener('abort', onStop);
				}
			}
		}
	}

	private makePair(): Promise<[Link, Link]> {
		const links = Promise.all([this.makeLink(this.options.src), this.makeLink(this.options.dst)]);
		links.catch(() => {});
		return links;
	}

	/** A worker's links that went with a drop: their wire bytes stay counted. */
	private dropLinks(index: number, links: readonly Link[]): void {
		const dropped = this.droppedWire[index] ?? [0, 0];
		for (const link of links.filter(link => link.remote)) {
			dropped[0] += link.bytesOut - (this.linkBase.get(link)?.[0] ?? 0);
			dropped[1] += link.bytesIn - (this.linkBase.get(link)?.[1] ?? 0);
			this.linkBase.delete(link);
			this.links.delete(link);
		}
		this.droppedWire[index] = dropped;
		this.workerLinks[index] = [];
	}

	/**
	 * After a drop (`cause`, seen by a worker whose links were made in `generation`): once for all its workers, wait
	 * (backoff), then take the preparing agents that went with it again: DST's lock (refused if another run holds it
	 * now: nothing is written), SRC's holder (SRC must be the same file of the same size). Each attempt takes one of
	 * --retries; none left: the drop's own error fails the run. A refusal (a changed host key, a precondition) is final.
	 */
	private async recover(generation: number, cause: unknown, signal: AbortSignal): Promise<void> {
		if (this.generation > generation) {
			return;
		}
		this.recovering ??= this.reconnect(cause, signal).finally(() => {
			this.recovering = undefined;
		});
		await this.recovering;
	}

	private async reconnect(cause: unknown, signal: AbortSignal): Promise<void> {
		let delay = RECONNECT_FIRST_DELAY_MS;
		let last = cause;
		const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error)).replace(/; DST may be partially updated$/, '');
		for (;;) {
			if (this.retriesLeft <= 0) {
				// What the drop that was not survived said, as a run without --retries says it (exit 2). A host that
				// could not be reached again (a new connection, a channel) once DST may have been written is no
				// longer "before any write".
				throw cause instanceof LinkDownError && this.destOpened
					? new LinkLostError(`${reason(cause)} before the sync finished; DST may be partially updated`, {cause})
					: cause;
			}
			this.retriesLeft -= 1;
			this.warn(`${reason(last)}; reconnecting in ${delay / 1000} s (${(this.options.retries ?? 0) - this.retriesLeft} of ${this.options.retries ?? 0})`);
			await unlessAborted(new Promise(resolve => setTimeout(resolve, delay)), signal, () => new InterruptedError());
			try {
				this.cacheDropped = true;
				await unlessAborted(this.retakeHolders(), signal, () => new InterruptedError());
				this.generation += 1;
				this.reconnectCount += 1;
				this.trace(`reconnected (${this.reconnectCount})`);
				return;
			} catch (error) {
				if (!isLinkFailure(error)) {
					throw error instanceof UsageError && !(error instanceof RefusedError) ? new TransferError(`${error.message}; DST may be partially updated`, {cause: error}) : error;
				}
				last = error;
				delay = Math.min(delay * 2, RECONNECT_MAX_DELAY_MS);
			}
		}
	}

	/** The preparing agents a drop ended, again: DST's (its lock) first, then SRC's. */
	private async retakeHolders(): Promise<void> {
		const {options} = this;
		if (this.lockLost && options.dst.kind === 'remote') {
			const link = await this.makeLink(options.dst);
			const dest = await openLink(link, this.openMessage(Role.dest, 'sync', true, {start: 0, end: 0}), this.warn, this.bounds.replyMs, undefined, this.hello);
			this.dstHolderToken = dest.opened.identity;
			this.dstServer = dest.opened.server ?? '';
			this.dstPreparing = link;
			this.lockLost = undefined;
			this.lockWatch = new AbortController();
			this.watchLockHolder(link, dest.held);
			this.relockedAt = this.generation + 1;
			this.trace('DST locked again');
		}
		const holder = this.srcHolder;
		if (holder && holder.held.closed && options.src.kind === 'remote') {
			const link = await this.makeLink(options.src);
			const message = this.openMessage(Role.source, 'sync', true, {start: 0, end: 0});
			const source = await openLink(link, this.srcVersion === undefined ? message : {...message, version: this.srcVersion}, this.warn, this.bounds.replyMs, undefined, this.hello);
			if (source.opened.size !== this.size || source.opened.identity !== this.srcIdentity) {
				link.close();
				throw new TransferError(`${prefixOf(link)}${sourceChangedMessage(options.src.path)}`);
			}
			this.srcHolder = {link, held: source.held};
			this.srcServer = source.opened.server ?? '';
			this.trace('SRC opened again');
		}
	}

	async endPhase(_phase: Phase, completed: boolean): Promise<void> {
		// DEST flushes DST (fdatasync) before it says DONE. A holder that ended after the last write still fails the
		// run, unless --retries takes DST's lock again (to the end of the run: the digest cache's commit, SRC's check).
		if (completed && this.lockLost && isLinkFailure(this.lockLost)) {
			await this.recover(this.generation, this.lockLost, new AbortController().signal);
		}
		this.throwIfLockLost();
	}

	/** --retries: how many times the run reconnected. */
	reconnects(): number {
		return this.reconnectCount;
	}

	async checkSource(failed: boolean): Promise<void> {
		if (!failed && this.srcHolder?.held.closed && this.options.src.kind === 'remote') {
			// SRC's holder went with a drop after the last session: another one checks SRC (the same file and size).
			const lost = new LinkLostError(`${prefixOf(this.srcHolder.link)}${this.srcHolder.held.reason ?? 'the connection closed'} before SRC could be checked`);
			await this.recover(this.generation, lost, new AbortController().signal);
		}
		const holder = this.srcHolder;
		const path = this.options.src.path;
		if (!holder || holder.held.closed) {
			if (failed) {
				return;
			}
			throw new TransferError(`${holder ? prefixOf(holder.link) : ''}SRC ${path}: its agent ended before SRC could be checked${holder?.held.reason ? `: ${holder.held.reason}` : ''}`);
		}
		// A second prepare OPEN to the agent that opened SRC at prepare: it compares SRC's size and a file's
		// mtime/ctime with what it saw then (an older agent just opens SRC again: its size is compared here).
		let opened: Awaited<ReturnType<typeof openLink>>['opened'];
		try {
			opened = (await openLink(holder.link, this.openMessage(Role.source, 'sync', true, {start: 0, end: 0}), this.warn, this.bounds.replyMs, undefined, this.hello)).opened;
		} catch (error) {
			if (failed && !(error instanceof Error && error.message.includes(sourceChangedMessage(path)))) {
				return;
			}
			// A refusal now (SRC gone, unreadable) comes after DST was written: exit 2, not 1.
			throw error instanceof RblocksyncError && error.exitCode === 1 ? new TransferError(error.message, {cause: error}) : error;
		}
		if (opened.size !== this.size) {
			throw new TransferError(`${prefixOf(holder.link)}${sourceChangedMessage(path)}`);
		}
	}

	/**
	 * A second prepare OPEN to DST's preparing agent: with the cache flag it commits the digest cache its workers
	 * wrote; with --bitmap it answers DST's stamp after the sync phase, for the record of this pass.
	 */
	async finishSync(): Promise<string | undefined> {
		if (this.cacheDropped && this.cacheStatus !== undefined && !this.cacheStatus.startsWith('off')) {
			// Its holder ended with the link (an uncommitted cache is dropped) or workers' records were cut short.
			this.cacheStatus = 'off: not kept after a reconnect; the next run reads DST';
		}
		const status = this.cacheStatus;
		const link = this.dstPreparing;
		const cacheOn = status !== undefined && !status.startsWith('off');
		if ((!cacheOn && !this.usesBitmap()) || !link) {
			return status;
		}
		try {
			const message = this.openMessage(Role.dest, 'sync', true, {start: 0, end: 0});
			this.trace('DST commits');
			const reply = await openLink(link, cacheOn ? message : {...message, flags: message.flags & ~OpenFlag.cache}, this.warn, this.bounds.replyMs, undefined, this.hello);
			this.trace('DST committed');
			this.watchLockHolder(link, reply.held);
			this.dstStampAfter = reply.opened.pass ?? '';
			return cacheOn ? reply.cache ?? status : status;
		} catch (error) {
			const reason = error instanceof Error ? error.message : String(error);
			this.warn(cacheOn ? `DST ${this.options.dst.path}: its digest cache was not kept: ${reason}` : `DST ${this.options.dst.path}: ${reason}`);
			return cacheOn ? `off: ${reason}` : status;
		}
	}

	/** --bitmap: what this pass was ("incremental", "full: <reason>"), for the summary; undefined without --bitmap. */
	bitmapSummary(): string | undefined {
		return this.bitmapStatus;
	}

	compressionSummary(): {compression: string; compressionRatio: number} | undefined {
		const {raw, wire} = this.dataBytes;
		return {compression: describeCompression(this.compression), compressionRatio: wire > 0 ? raw / wire : 1};
	}

	/**
	 * After the whole run succeeded (and --verify): SRC's preparing agent rotates the bitmap and records this pass
	 * (the commit OPEN). A failure here leaves every dirty bit (bitmap.ts) and at worst no record, so the next pass
	 * compares everything: a warning, not a failed run.
	 */
	async finishRun(): Promise<void> {
		const holder = this.srcHolder;
		const name = this.options.bitmap;
		if (!this.usesBitmap() || name === undefined || !holder) {
			return;
		}
		const keep = (reason: string): void => this.warn(`SRC ${this.options.src.path}: the dirty bitmap ${name} was not started afresh (${reason}); the next pass compares everything it marks, or all of SRC`);
		if (this.dstStampAfter === '' || holder.held.closed) {
			keep(this.dstStampAfter === '' ? 'DST\'s agent gave no stamp' : 'SRC\'s agent ended');
			return;
		}
		const message = this.openMessage(Role.source, 'sync', true, {start: 0, end: 0});
		try {
			await openLink(holder.link, {...message, pass: encodePassRecord({dst: this.dstKey(), stamp: this.dstStampAfter})}, this.warn, this.bounds.replyMs, undefined, this.hello);
			this.trace('bitmap started afresh');
		} catch (error) {
			keep(error instanceof Error ? error.message : String(error));
		}
	}

	private usesBitmap(): boolean {
		return this.options.bitmap !== undefined && !this.options.dryRun;
	}

	/** DST as the record of a pass names it: its host and port as given, and its path (absolute when local). */
	private dstKey(): string {
		const dst = this.options.dst;
		return dst.kind === 'local' ? `local:${path.resolve(dst.path)}` : `ssh:${dst.user ?? ''}@${dst.host}:${dst.port ?? this.options.port ?? ''}:${dst.path}`;
	}

	/** An incremental pass only when SRC's record of the last pass names this DST with the stamp it has now. */
	private decideBitmap(recorded: string | undefined, stamp: string | undefined): void {
		if (this.options.bitmap === undefined) {
			return;
		}
		const record = decodePassRecord(recorded);
		let reason: string | undefined;
		if (!record) {
			reason = 'no completed pass with this bitmap yet';
		} else if (record.dst !== this.dstKey()) {
			reason = 'the last pass with this bitmap went to another DST';
		} else if (!stamp || record.stamp !== stamp) {
			reason = 'DST changed since the last pass';
		} else if (this.options.copy) {
			reason = '--copy';
		}
		this.bitmapIncremental = reason === undefined;
		this.bitmapStatus = reason === undefined ? 'incremental' : `full: ${reason}`;
		this.trace(`bitmap ${this.bitmapStatus}`);
	}

	private wantsCache(): boolean {
		return this.options.cache === true && !this.options.dryRun && !this.cacheDropped;
	}

	/** Nothing here: each role drops its own range from its host's page cache at OPEN (the dropCache flag). */
	async beforeVerify(): Promise<void> {}

	sample(states: readonly WorkerState[]): void {
		states.forEach((state, index) => {
			const remote = (this.workerLinks[index] ?? []).filter(link => link.remote);
			const [droppedOut, droppedIn] = this.droppedWire[index] ?? [0, 0];
			state.wireBytesSent = droppedOut + remote.reduce((sum, link) => sum + link.bytesOut - (this.linkBase.get(link)?.[0] ?? 0), 0);
			state.wireBytesReceived = droppedIn + remote.reduce((sum, link) => sum + link.bytesIn - (this.linkBase.get(link)?.[1] ?? 0), 0);
		});
	}

	async close(): Promise<void> {
		this.trace('closing');
		this.closing = true;
		// Not waiting for what is still opening (a connection, an agent's channel): it gives up or is closed as it arrives (makeLink).
		const lettingGo: Array<Promise<void>> = [];
		for (const link of this.links) {
			if (this.ownHosts) {
				link.close();
			} else {
				// A run over many files keeps its agents: RESET lets go of this file (its lock, its image); one that does not ACK is closed.
				const given = this.remoteHosts.giveBack(link, link.greeted !== undefined);
				if (link.threadEnded) {
					// Taken back (RESET: its images closed), or closed for not taking it: then its thread's end.
					lettingGo.push(given.then(() => (link.ended ? link.threadEnded!() : undefined)));
				}
			}
		}
		if (this.ownHosts) {
			this.remoteHosts.close();
			// A local role's thread (a pull's DEST) flushes DST as it ends: the run's outcome is told after that, not before.
			await Promise.all([...this.threads].map(link => link.threadEnded!()));
		} else if (lettingGo.length > 0) {
			// The same for a file of many: its local threads flush DST as they let go of it (RESET), before its line.
			await settledWithin(Promise.all(lettingGo), THREADS_END_MS);
		}
	}

	/** SRC's identity (with its host's boot id) goes to DEST, which refuses SRC itself when it runs on the same host. */
	private openMessage(role: Role, phase: Phase, prepare: boolean, range: Range): Extract<Message, {type: 'open'}> {
		const {options} = this;
		const endpoint = role === Role.source ? options.src : options.dst;
		const format = role === Role.source ? options.srcFormat : options.dstFormat;
		const server = role === Role.source ? this.srcServer : this.dstServer;
		const holder = prepare ? '' : server || (role === Role.dest ? this.dstHolderToken : '');
		const flags = openFlagBits({
			truncate: options.truncate, dryRun: options.dryRun || phase === 'verify', copy: options.copy && phase === 'sync', force: options.force, prepare,
			// DEST: its digest cache; SOURCE's prepare step: SRC's quick-check stamp (its CACHE frame).
			dropCache: phase === 'verify', cache: phase === 'sync' && this.wantsCache() && (role === Role.dest || prepare),
			keyed: role === Role.dest && phase === 'sync' && this.wantsCache() && (this.srcCaps & Capability.keyed) !== 0,
		});
		// --bitmap: every prepare OPEN names it (SRC's agent manages it, DST's reports its stamp); a SOURCE worker's
		// only in an incremental pass's sync phase (it then reads only what the bitmap marks).
		const bitmap = options.bitmap !== undefined && (prepare || (role === Role.source && phase === 'sync' && this.bitmapIncremental)) ? options.bitmap : undefined;
		const qmp = role === Role.source ? options.qmp : undefined;
		const locking = role === Role.source && options.forceShare === true ? 'off' : undefined;
		const cached = role === Role.dest && this.wantsCache() && (prepare || phase === 'sync');
		const cacheDir = cached ? options.cacheDir : undefined;
		const trustCache = cached && options.trustCache !== undefined ? String(options.trustCache) : undefined;
		// A worker's session runs wide when both preparing agents offered it (the workers run the same agents).
		const session = !prepare && (this.srcCaps & this.dstCaps & Capability.wideSession) !== 0 ? WIDE_SESSION : undefined;
		return {
			type: 'open', role, flags, blockSize: options.blockSize, compress: compressByte(role === Role.source && phase === 'sync' && !prepare ? this.compression : undefined),
			srcSize: this.size, start: range.start, end: range.end, hash: options.hash, path: endpoint.path,
			srcIdentity: role === Role.dest ? this.srcIdentity : '',
			...(holder ? {holder} : {}),
			...(format === undefined ? {} : {format}),
			...(bitmap === undefined ? {} : {bitmap}),
			...(qmp === undefined ? {} : {qmp}),
			...(locking === undefined ? {} : {locking}),
			...(cacheDir === undefined ? {} : {cacheDir}),
			...(trustCache === undefined ? {} : {trustCache}),
			...(session === undefined ? {} : {session}),
		};
	}

	/**
	 * DST's preparing agent holds DST's lock for this run: if it ends before close() (killed, its channel or
	 * connection lost), every session stops at once and the run fails, rather than going on while another
	 * run may take the lock. (Each DEST worker also keeps the lock itself meanwhile: image/lock-holder.ts.)
	 */
	private watchLockHolder(link: Link, held: Held): void {
		const ended = (reason: string | undefined): void => {
			if (this.closing || this.lockLost) {
				return;
			}
			const message = lockHolderEnded(prefixOf(link), reason, !this.options.dryRun);
			this.lockLost = reason?.startsWith('protocol error') ? new TransferError(message) : new LinkLostError(message);
			this.trace('DST lock holder ended');
			this.lockWatch.abort();
		};
		link.onFrame = () => {};
		link.onClose = ended;
		if (held.closed) {
			ended(held.reason);
		}
	}

	private throwIfLockLost(): void {
		if (this.lockLost) {
			throw this.lockLost;
		}
	}

	private async makeLink(endpoint: RoleEndpoint): Promise<Link> {
		if (endpoint.kind === 'local' && this.localLink) {
			const link = this.localLink(endpoint);
			this.links.add(link);
			return link;
		}
		if (endpoint.kind === 'local') {
			// A local DST that does not exist yet only takes writes (a first copy sends no digests): handing
			// every byte on to a thread costs more than writing it here (pull, 1 GiB: 4.6-5.2 s -> 3.9 s).
			const inProcess = !this.options.localThreads || (endpoint === this.options.dst && this.localDestIsNew);
			const link = this.ownHosts ? ThreadLink.create(inProcess) : await this.remoteHosts.localLink(inProcess);
			this.adopt(link);
			return link;
		}
		const link = await this.remoteHosts.link(endpoint, message => this.warn(message), !this.ownHosts);
		if (this.closing) {
			// The run ended while this agent was starting: nothing will close it but this.
			link.close();
			throw new InterruptedError('interrupted');
		}
		this.adopt(link);
		return link;
	}

	/** A link of this run's: closed (or given back) by close(); its wire bytes counted from now (a reused one carried others'). */
	private adopt(link: Link): void {
		this.links.add(link);
		if (link.threadEnded) {
			this.threads.add(link);
		}
		this.linkBase.set(link, [link.bytesOut, link.bytesIn]);
	}
}

/**
 * The one line for a DST lock holder that ended: "the agent holding DST's lock ended (killed by signal KILL)".
 * A lost connection is worded as the sessions on it word it (they end with it).
 */
export function lockHolderEnded(prefix: string, reason: string | undefined, wrote: boolean): string {
	const partial = wrote ? '; DST may be partially updated' : '';
	if (reason !== undefined && !reason.startsWith('the agent ')) {
		return `${prefix}${reason} before the sync finished${partial}`;
	}
	const how = reason === undefined ? '' : ` (${reason.slice('the agent '.length).replace(/^was /, '')})`;
	return `${prefix}the agent holding DST's lock ended${how}${partial}`;
}
