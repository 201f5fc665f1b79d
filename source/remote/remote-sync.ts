// Push, pull and remote-to-remote: connects, deploys agents, prepares DST once, then one session per worker range.
import {formatEndpoint, type Endpoint, type RemoteEndpoint} from '../endpoint.js';
import {InterruptedError} from '../errors.js';
import type {Options} from '../options.js';
import {batchBytesFor, blockCount, splitRanges} from '../engine/blocks.js';
import {type Direction, emptyCounters, type Reporter, type Summary, type SyncStart, totalOf, type WorkerState} from '../engine/progress.js';
import {finishFailedSummary, finishSummary, onceWarner, recordVerify, startSummary} from '../engine/run-summary.js';
import {type Message, OpenFlag, Role} from '../protocol/messages.js';
import {connect, type Connection} from '../ssh/connect.js';
import {forwardStderr} from '../ssh/exec.js';
import {type AgentPlan, prepareAgent} from '../agent/bootstrap.js';
import {type Link, StreamLink, ThreadLink} from './link.js';
import {existsSync} from 'node:fs';
import {ConnectionPool} from '../ssh/pool.js';
import {canPunch, openLink, relaySession} from './session.js';
import type {Range} from '../transport/image.js';

type Host = {pool: ConnectionPool<Connection>; plan: AgentPlan; alias: string};

/** Syncs when SRC, DST or both are remote; returns the summary (also given to reporter.finish) or throws. */
export async function remoteSync(options: Options, reporter: Reporter, signal: AbortSignal): Promise<Summary> {
	const started = performance.now();
	const elapsed = (): number => (performance.now() - started) / 1000;
	const warn = onceWarner(reporter);
	// RBLOCKSYNC_TRACE=1: a timeline of the phases on stderr (for benchmarks and bug reports).
	const trace = process.env['RBLOCKSYNC_TRACE'] === '1' ? (what: string) => process.stderr.write(`rblocksync: trace ${elapsed().toFixed(3)} ${what}\n`) : () => {};
	const hosts = new Map<string, Promise<Host>>();
	const links = new Set<Link>();
	let early: Array<Promise<[Link, Link]>> = [];
	let summary: Summary | undefined;
	try {
		// The agent bundles uploaded to the hosts count as bytes sent, like the sessions' frames.
		let uploadedBytes = 0;
		const hostFor = async (endpoint: RemoteEndpoint): Promise<Host> => {
			const port = endpoint.port ?? options.port;
			const key = `${endpoint.user ?? ''}@${endpoint.host}:${port ?? ''}`;
			let host = hosts.get(key);
			if (!host) {
				const open = async (): Promise<Connection> => connect({
					host: endpoint.host, acceptNewHostKey: options.acceptNewHostKey, warn,
					...(endpoint.user === undefined ? {} : {user: endpoint.user}),
					...(port === undefined ? {} : {port}),
					...(options.identity === undefined ? {} : {identity: options.identity}),
				});
				host = (async () => {
					const connection = await open();
					trace(`${endpoint.host}: connected`);
					try {
						const plan = await prepareAgent(connection, endpoint.host);
						trace(`${endpoint.host}: agent ${plan.how}`);
						uploadedBytes += plan.uploadedBytes;
						return {pool: new ConnectionPool(connection, open), plan, alias: endpoint.host};
					} catch (error) {
						connection.close();
						throw error;
					}
				})();
				hosts.set(key, host);
			}
			return host;
		};
		// Decided before the prepare step creates it.
		const localDestIsNew = options.dst.kind === 'local' && !existsSync(options.dst.path);
		const makeLink = async (endpoint: Endpoint): Promise<Link> => {
			if (endpoint.kind === 'local') {
				// A local DST that does not exist yet only takes writes (a first copy sends no digests): handing
				// every byte on to a thread costs more than writing it here (pull, 1 GiB: 4.6-5.2 s -> 3.9 s).
				const link = ThreadLink.create(endpoint === options.dst && localDestIsNew);
				links.add(link);
				return link;
			}
			const host = await hostFor(endpoint);
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
			forwardStderr(channel, line => warn(`${host.alias}: ${line}`));
			links.add(link);
			return link;
		};
		const checkAbort = (): void => {
			if (signal.aborted) {
				throw new InterruptedError(summary ? 'interrupted; DST may be partially updated' : 'interrupted before DST was opened; DST untouched');
			}
		};
		const flags = (phase: 'sync' | 'verify', prepare: boolean): number =>
			(options.truncate ? OpenFlag.truncate : 0) | (options.dryRun || phase === 'verify' ? OpenFlag.dryRun : 0)
			| (options.copy && phase === 'sync' ? OpenFlag.copy : 0) | (options.force ? OpenFlag.force : 0) | (prepare ? OpenFlag.prepare : 0);
		// SRC's identity (with its host's boot id) goes to DEST, which refuses SRC itself when it runs on the same host.
		let srcIdentity = '';
		const openMessage = (role: Role, endpoint: Endpoint, flagBits: number, srcSize: number, range: Range): Message => ({
			type: 'open', role, flags: flagBits, blockSize: options.blockSize, compress: options.compress,
			srcSize, start: range.start, end: range.end, hash: options.hash, path: endpoint.path,
			srcIdentity: role === Role.dest ? srcIdentity : '',
		});

		// Both preparing agents start at once (node startup dominates), and then serve worker 0.
		const probes = Promise.all([makeLink(options.src), makeLink(options.dst)]);
		early = [probes];
		probes.catch(() => {});
		// Preparation: SRC's size, then DST checked (and created or resized) once, before any worker.
		const [srcProbe, dstProbe] = await probes;
		const source = await openLink(srcProbe, openMessage(Role.source, options.src, flags('sync', true), 0, {start: 0, end: 0}), warn);
		const size = source.opened.size;
		srcIdentity = source.opened.identity;
		trace('SRC opened');
		checkAbort();
		// The workers' agents start while DST is being prepared. Worker 0 takes over SRC's preparing agent;
		// DST's stays apart, holding DST's lock until the very end, as the local engine's main thread does.
		const ranges = splitRanges(size, options.workers, batchBytesFor(options.blockSize));
		early[0] = Promise.all([srcProbe, makeLink(options.dst)]);
		early[0].catch(() => {});
		for (let id = 1; id < ranges.length; id++) {
			const pair = Promise.all([makeLink(options.src), makeLink(options.dst)]);
			pair.catch(() => {});
			early.push(pair);
		}
		const dest = await openLink(dstProbe, openMessage(Role.dest, options.dst, flags('sync', true), size, {start: 0, end: 0}), warn);
		if (options.dst.kind === 'remote' && !canPunch(dest.caps) && dest.opened.kind === 1) {
			warn(`${options.dst.host}: holes will be written as zeros: native helper unavailable`);
		}
		trace('DST prepared');
		const direction: Direction = options.src.kind === 'local' ? 'push' : options.dst.kind === 'local' ? 'pull' : 'relay';

		const start: SyncStart = {
			src: formatEndpoint(options.src), dst: formatEndpoint(options.dst), direction, size,
			blockSize: options.blockSize, hash: options.hash, workers: ranges.length, dryRun: options.dryRun, phase: 'sync',
		};
		summary = startSummary(start, blockCount(size, options.blockSize), dest.opened.dstExtraBytes);
		reporter.start(start);

		const runPhase = async (phase: 'sync' | 'verify'): Promise<WorkerState[]> => {
			const states: WorkerState[] = ranges.map((range, id) => ({id: id + 1, ...range, ...emptyCounters(), done: false}));
			const workerLinks: Link[][] = ranges.map(() => []);
			const wire = (): void => {
				states.forEach((state, id) => {
					const remote = workerLinks[id]!.filter(link => link.remote);
					state.wireBytesSent = remote.reduce((sum, link) => sum + link.bytesOut, 0);
					state.wireBytesReceived = remote.reduce((sum, link) => sum + link.bytesIn, 0);
				});
			};
			const timer = setInterval(() => {
				wire();
				reporter.progress(states, elapsed());
			}, 100);
			const stop = new AbortController();
			const onAbort = (): void => stop.abort();
			signal.addEventListener('abort', onAbort);
			try {
				await Promise.all(ranges.map(async (range, id) => {
					const [srcLink, dstLink] = phase === 'sync' && early[id] ? await early[id]! : await Promise.all([makeLink(options.src), makeLink(options.dst)]);
					workerLinks[id] = [srcLink, dstLink];
					try {
						const [opSrc, opDst] = await Promise.all([
							openLink(srcLink, openMessage(Role.source, options.src, flags(phase, false), size, range), warn),
							openLink(dstLink, openMessage(Role.dest, options.dst, flags(phase, false), size, range), warn),
						]);
						trace(`worker ${id} opened`);
						const counters = await relaySession(srcLink, dstLink, {source: opSrc.held, dest: opDst.held}, {
							stats: counters => Object.assign(states[id]!, counters, {wireBytesSent: states[id]!.wireBytesSent, wireBytesReceived: states[id]!.wireBytesReceived}),
							warn,
							signal: stop.signal,
						}, () => new InterruptedError(phase === 'sync' && !options.dryRun ? 'interrupted; DST may be partially updated' : 'interrupted'));
						Object.assign(states[id]!, counters);
						states[id]!.done = true;
						trace(`worker ${id} done`);
					} catch (error) {
						srcLink.close();
						dstLink.close();
						// The first failure stops the other workers; theirs are consequences, not causes.
						stop.abort();
						throw error;
					}
				}));
			} finally {
				clearInterval(timer);
				signal.removeEventListener('abort', onAbort);
				wire();
				reporter.progress(states, elapsed());
				if (phase === 'sync' && summary) {
					// Also when the phase failed or was interrupted: the summary then tells how far it got.
					Object.assign(summary, totalOf(states));
					summary.wireBytesSent += uploadedBytes;
				}
			}
			checkAbort();
			return states;
		};

		await runPhase('sync');
		if (options.verify) {
			reporter.start({...start, phase: 'verify'});
			const check = await runPhase('verify');
			const verified = totalOf(check);
			summary.wireBytesSent += verified.wireBytesSent;
			summary.wireBytesReceived += verified.wireBytesReceived;
			recordVerify(summary, verified.blocksChanged, formatEndpoint(options.dst));
		}
		await finishSummary(reporter, summary, elapsed());
		return summary;
	} catch (error) {
		await finishFailedSummary(reporter, summary, elapsed(), error);
		throw error;
	} finally {
		await Promise.allSettled(early);
		for (const link of links) {
			link.close();
		}
		for (const host of hosts.values()) {
			host.then(h => h.pool.closeAll(), () => {});
		}
	}
}
