// A run over many files: several SRCs into DSTDIR/ and -r trees. Lists the trees, plans them (tree/plan.ts), makes
// DST's directories, then runs the one orchestrator per file (run.ts) over one connection per host, several files
// at once within the run's workers, sets each file's attributes, applies --delete, and reports every file.
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {type Endpoint, formatEndpoint} from './endpoint.js';
import {ExitCode, exitCodeOf, InterruptedError, UsageError} from './errors.js';
import type {Options} from './options.js';
import type {Summary, Reporter} from './engine/progress.js';
import {RemoteHosts} from './remote/hosts.js';
import {LocalTreeHost, RemoteTreeHost, type TreeHost} from './remote/tree-host.js';
import {PathFilter} from './tree/glob.js';
import {baseName, compare, type FileAttrs, joinPath, type Listing, planTree, skippedWarning, worstExitCode, workersFor} from './tree/plan.js';
import {EMPTY_RECORD, parseRecord, recordable, type TreeRecord, unchangedSince} from './tree/record.js';
import {type FileResult, fileLine, fileResult, type ManyReporter, manySummary, type ManySummary} from './ui/many-reporter.js';
import {run} from './run.js';

/** One file to sync: SRC's endpoint with its path, DST's, its place under DSTDIR, its size if known, SRC's attributes if listed. */
export type FileJob = {
	readonly path: string;
	readonly src: Endpoint;
	readonly dst: Endpoint;
	readonly size: number | undefined;
	readonly attrs: FileAttrs | undefined;
	/** SRC's stamp in its listing if it may go into the tree's record (not changed just before), and DST's as listed. */
	readonly srcStamp?: string;
	readonly dstStamp?: string;
};

/** `dstDirs`: the directories DST's listing holds (undefined: DSTDIR is not there), which need no mkdir. */
type Plan = {jobs: FileJob[]; refused: FileResult[]; dirs: string[]; deletions: string[]; dstDirs: ReadonlySet<string> | undefined};

/** Runs every file; resolves the exit status (the worst file's) after the summary went to the reporter. */
export async function runMany(options: Options, reporter: ManyReporter, signal: AbortSignal, only?: ReadonlySet<string>): Promise<{summary: ManySummary; exitCode: number}> {
	const started = performance.now();
	// RBLOCKSYNC_TRACE=1: the run's steps, in seconds since this process started (its start-up included).
	const trace = (what: string): void => {
		if (options.trace) {
			process.stderr.write(`rblocksync: trace ${(performance.now() / 1000).toFixed(3)} ${what}\n`);
		}
	};
	trace('many: start');
	const hosts = new RemoteHosts(options);
	hosts.warn = message => reporter.warn(message);
	const trees = new Map<string, Promise<TreeHost>>();
	const treeHost = (endpoint: Endpoint): Promise<TreeHost> => {
		const key = endpoint.kind === 'local' ? 'local' : `${endpoint.user ?? ''}@${endpoint.host}:${endpoint.port ?? ''}`;
		let host = trees.get(key);
		if (!host) {
			host = endpoint.kind === 'local' ? Promise.resolve(new LocalTreeHost()) : (async () => {
				const remote = new RemoteTreeHost(await hosts.link(endpoint, message => reporter.warn(message)), message => reporter.warn(message));
				await remote.greet();
				trace(`many: ${endpoint.host}'s tree agent greeted`);
				return remote;
			})();
			host.catch(() => {});
			trees.set(key, host);
		}
		return host;
	};
	const results: FileResult[] = [];
	const deleted: string[] = [];
	try {
		// The tree's quick check (not with --no-cache, --copy or --verify, which mean to read or write every file).
		const useRecord = options.recursive && options.cache && !options.copy && !options.verify;
		const record = useRecord ? loadRecord(recordPath(options)) : EMPTY_RECORD;
		// The agents (and threads) the files SRC's listing shows changed since the record will take start while DST is
		// still being listed; those DST's listing adds start after it.
		const prestarted = {src: 0, dst: 0};
		const prestart = (files: readonly FileJob[]): void => {
			const first = files[0];
			if (first === undefined || (first.src.kind === 'local' && first.dst.kind === 'local')) {
				// Both local: the byte comparison in the engine's own threads (or threads of the digest path, made as needed).
				return;
			}
			const links = firstWaveLinks(files, options.workers);
			for (const [side, endpoint] of [['src', first.src], ['dst', first.dst]] as const) {
				// A local role in-process takes no thread: a local DST not there yet, or with RBLOCKSYNC_LOCAL_THREADS=0.
				const threads = options.localThreads && (side === 'src' || first.dstStamp !== undefined);
				if (links > prestarted[side] && (endpoint.kind === 'remote' || threads)) {
					hosts.prestart(endpoint.kind === 'local' ? 'local' : endpoint, links - prestarted[side]);
					prestarted[side] = links;
				}
			}
		};
		const listed: Listed = (source, listing, prefix, filter) => {
			if (only !== undefined || options.dryRun) {
				return;
			}
			const changed: FileJob[] = [];
			for (const entry of listing.entries) {
				const path = prefix === '' ? entry.path : `${prefix}/${entry.path}`;
				if (entry.kind === 'file' && filter.includesWithParents(entry.path, false) && (Object.hasOwn(record.files, path) ? record.files[path]!.src : '') !== entry.stamp) {
					changed.push({path, src: source, dst: {...options.dst, path: joinPath(options.dst.path, path)}, size: entry.size, attrs: undefined, dstStamp: 'listed'});
				}
			}
			prestart(changed);
		};
		const plan = await planRun(options, treeHost, only === undefined ? reporter : {...reporter, warn: () => {}}, listed);
		trace(`many: listed and planned (${plan.jobs.length} files, ${plan.dirs.length} directories)`);
		if (only !== undefined) {
			// A --watch pass: only the files that changed (and, with --delete, those gone from SRC).
			plan.jobs = plan.jobs.filter(job => only.has(job.path));
			plan.refused = plan.refused.filter(result => only.has(result.path));
			plan.deletions = plan.deletions.filter(path => only.has(path));
		}
		reporter.planned?.(plan.jobs.length + plan.refused.length, plan.jobs.reduce((sum, job) => sum + (job.size ?? 0), 0));
		for (const refused of plan.refused) {
			results.push(refused);
			reporter.fileDone(refused);
		}
		const dstTree = await treeHost(options.dst);
		const dstRoot = options.dst.path;
		if (!options.dryRun && (options.recursive || options.truncate)) {
			// Only what DST's listing lacks: a tree synced before costs no round trip per directory.
			if (plan.dstDirs === undefined) {
				await dstTree.mkdir(dstRoot, '');
			}
			for (const dir of plan.dirs) {
				if (!plan.dstDirs?.has(dir)) {
					await dstTree.mkdir(dstRoot, dir);
				}
			}
		}
		trace('many: directories made');
		const toSync: FileJob[] = [];
		for (const job of plan.jobs) {
			if (options.dryRun && options.recursive && job.dstStamp === undefined) {
				// A dry run creates nothing: a DST file (or its directory) that is not there yet would be created whole.
				const result = fileResult(job.path, {src: formatEndpoint(job.src), dst: formatEndpoint(job.dst)}, undefined, undefined, ExitCode.ok);
				result.size = job.size ?? 0;
				result.created = true;
				results.push(result);
				reporter.fileDone(result);
			} else if (unchangedSince(record, job.path, job.srcStamp, job.dstStamp)) {
				const result = fileResult(job.path, {src: formatEndpoint(job.src), dst: formatEndpoint(job.dst)}, undefined, undefined, ExitCode.ok);
				result.size = job.size ?? 0;
				result.unchanged = true;
				result.stamps = {src: job.srcStamp!, dst: job.dstStamp!};
				results.push(result);
				reporter.fileDone(result);
			} else {
				toSync.push(job);
			}
		}
		trace(`many: ${toSync.length} files to sync`);
		// Every agent (and thread) the first files take starts now, side by side; the files after them reuse those.
		if (!options.dryRun) {
			prestart(toSync);
		}
		await runFiles(toSync, options, signal, async job => {
			const result = await syncFile(job, options, signal, hosts, dstTree, reporter);
			results.push(result);
			reporter.fileDone(result);
		});
		trace('many: files synced');
		if (useRecord && !options.dryRun) {
			// A --watch pass keeps what the record says of the files it did not look at.
			const kept = only === undefined ? [] : Object.entries(record.files).filter(([path]) => !only.has(path)).map(([path, stamps]) => ({path, stamps}));
			saveRecord(recordPath(options), [...results, ...kept]);
		}
		if (signal.aborted) {
			throw new InterruptedError();
		}
		// --delete only after a complete listing and once every file went well: a failed run removes nothing.
		if (plan.deletions.length > 0 && results.every(result => result.ok)) {
			for (const path of plan.deletions) {
				if (!options.dryRun) {
					await dstTree.remove(dstRoot, path);
				}
				deleted.push(path);
				reporter.note(`${path}: ${options.dryRun ? 'would be deleted' : 'deleted'}`);
			}
		}
		// The local threads end (a pulled file's DEST flushes DST) before the run says how it went.
		await hosts.closeAndWait();
		const summary = manySummary(results, deleted, options.dryRun, (performance.now() - started) / 1000, hosts.uploadedBytes);
		await reporter.finish(summary);
		trace('many: done');
		const codes = results.map(result => result.exitCode);
		if (options.check && summary.blocksChanged > 0) {
			codes.push(ExitCode.differs);
		}
		return {summary, exitCode: worstExitCode(codes)};
	} catch (error) {
		await hosts.closeAndWait();
		const summary = manySummary(results, deleted, options.dryRun, (performance.now() - started) / 1000, hosts.uploadedBytes);
		summary.ok = false;
		summary.error = error instanceof Error ? error.message : String(error);
		await reporter.finish(summary);
		throw error;
	} finally {
		for (const host of trees.values()) {
			host.then(tree => tree.close(), () => {});
		}
		hosts.close();
	}
}

/** A local SRC tree's listing, as soon as it is there: its root's place under DSTDIR (`prefix`) and the run's rules. */
type Listed = (source: Endpoint, listing: Listing, prefix: string, filter: PathFilter) => void;

/** What each SRC gives: a tree's planned files (-r), or the file itself named by its basename. */
async function planRun(options: Options, treeHost: (endpoint: Endpoint) => Promise<TreeHost>, reporter: ManyReporter, listed?: Listed): Promise<Plan> {
	const filter = new PathFilter(options.filters);
	const jobs: FileJob[] = [];
	const refused: FileResult[] = [];
	const dirs: string[] = [];
	let deletions: string[] = [];
	const dstRoot = options.dst.path;
	// Every tree is listed at once: a local SRC's while DST's host connects and starts its agent (`listed` may then
	// start the agents its changed files will take).
	const dstListing = options.recursive ? treeHost(options.dst).then(tree => tree.list(dstRoot)) : treeHost(options.dst).then(() => undefined);
	const srcListings = options.sources.map(source => treeHost(source).then(tree => options.recursive ? listOrFile(tree, source.path) : 'file' as const));
	for (const listing of [dstListing, ...srcListings]) {
		listing.catch(() => {});
	}
	if (listed) {
		await Promise.all(options.sources.map(async (source, index) => {
			if (source.kind === 'local') {
				const listing = await srcListings[index]!.catch(() => undefined);
				if (typeof listing === 'object') {
					listed(source, listing, source.path.endsWith('/') ? '' : baseName(source.path), filter);
				}
			}
		}));
	}
	const dstEntries = (await dstListing)?.entries;
	const dstStamps = new Map((dstEntries ?? []).filter(entry => entry.kind === 'file').map(entry => [entry.path, entry.stamp]));
	const dstDirs = dstEntries === undefined ? undefined : new Set(dstEntries.filter(entry => entry.kind === 'dir').map(entry => entry.path));
	const taken = new Map<string, string>();
	const addJob = (job: FileJob): void => {
		const before = taken.get(job.path);
		if (before !== undefined) {
			refused.push(fileResult(job.path, {src: formatEndpoint(job.src), dst: formatEndpoint(job.dst)}, undefined,
				new UsageError(`SRC ${formatEndpoint(job.src)} and ${before} both go to ${formatEndpoint(job.dst)}; not synced`), ExitCode.usage));
			return;
		}
		taken.set(job.path, formatEndpoint(job.src));
		jobs.push(job);
	};
	for (const [index, source] of options.sources.entries()) {
		const listing = await srcListings[index]!;
		const entries = listing === 'file' || listing === undefined ? listing : listing.entries;
		if (entries === 'file') {
			const name = baseName(source.path);
			addJob({path: name, src: source, dst: {...options.dst, path: joinPath(dstRoot, name)}, size: localSize(source), attrs: undefined});
			continue;
		}
		if (entries === undefined) {
			const path = baseName(source.path);
			refused.push(fileResult(path, {src: formatEndpoint(source), dst: formatEndpoint({...options.dst, path: joinPath(dstRoot, path)})}, undefined,
				new UsageError(`SRC ${formatEndpoint(source)}: no such file or directory`), ExitCode.usage));
			continue;
		}
		// rsync's reading: SRCDIR/ syncs what is in it, SRCDIR the directory itself (DSTDIR/name).
		const prefix = source.path.endsWith('/') ? '' : baseName(source.path);
		const plan = planTree(entries, dstEntries, filter, {delete: options.delete, prefix});
		for (const skipped of plan.skipped) {
			reporter.warn(skippedWarning(skipped.path, skipped.kind));
		}
		for (const conflict of plan.conflicts) {
			refused.push(fileResult(conflict.path, {src: formatEndpoint(source), dst: formatEndpoint({...options.dst, path: joinPath(dstRoot, conflict.path)})}, undefined,
				new UsageError(`DST ${joinPath(dstRoot, conflict.path)}: ${conflict.reason}`), ExitCode.usage));
		}
		dirs.push(...plan.dirs.filter(dir => !dirs.includes(dir)));
		deletions = plan.deletions;
		for (const file of plan.files) {
			const inSrc = prefix === '' ? file.path : file.path.slice(prefix.length + 1);
			addJob({
				path: file.path, src: {...source, path: joinPath(source.path, inSrc)}, dst: {...options.dst, path: joinPath(dstRoot, file.path)},
				size: file.size, attrs: {mode: file.mode, uid: file.uid, gid: file.gid, mtimeSec: file.mtimeSec, mtimeNsec: file.mtimeNsec},
				...(recordable(file.changedMs, (listing as Listing).nowMs) ? {srcStamp: file.stamp} : {}),
				...(dstStamps.has(file.path) ? {dstStamp: dstStamps.get(file.path)!} : {}),
			});
		}
	}
	return {jobs, refused, dirs, deletions, dstDirs};
}

/** SRC's listing; 'file' when SRC is no directory (synced as the one file it is), undefined when it does not exist. */
async function listOrFile(tree: TreeHost, root: string): Promise<Listing | undefined | 'file'> {
	try {
		return await tree.list(root);
	} catch (error) {
		if (error instanceof Error && error.message.endsWith(': not a directory')) {
			return 'file';
		}
		throw error;
	}
}

/** Where the tree's record of the last run of these SRCs into this DST lives: ~/.cache/rblocksync/trees/, on this host. */
export function recordPath(options: Pick<Options, 'sources' | 'dst'>): string {
	const key = createHash('sha256').update(JSON.stringify([options.sources.map(formatEndpoint), formatEndpoint(options.dst)])).digest('hex').slice(0, 32);
	return path.join(os.homedir(), '.cache', 'rblocksync', 'trees', `${key}.json`);
}

function loadRecord(file: string): TreeRecord {
	try {
		return parseRecord(fs.readFileSync(file, 'utf8'));
	} catch {
		return EMPTY_RECORD;
	}
}

/** The files this run left equal (synced, or unchanged), by their stamps; written whole, then renamed over the old one. */
function saveRecord(file: string, results: ReadonlyArray<{path: string; ok?: boolean; stamps?: {src: string; dst: string} | undefined}>): void {
	const files: Record<string, {src: string; dst: string}> = {};
	for (const result of results) {
		if (result.ok !== false && result.stamps !== undefined) {
			files[result.path] = result.stamps;
		}
	}
	try {
		fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700});
		const temporary = `${file}.${process.pid}.tmp`;
		fs.writeFileSync(temporary, JSON.stringify({version: 1, files}));
		fs.renameSync(temporary, file);
	} catch {
		// No record: the next run compares every file's blocks, as without one.
	}
}

function localSize(endpoint: Endpoint): number | undefined {
	if (endpoint.kind !== 'local') {
		return undefined;
	}
	try {
		return fs.statSync(endpoint.path).size;
	} catch {
		return undefined;
	}
}

/**
 * Runs the jobs, biggest first, several at once: each takes workersFor(size) of the run's workers (small files side by
 * side on one each, a big one split into ranges), and starts when that many are free. Stops starting new ones on abort.
 */
export async function runFiles(jobs: readonly FileJob[], options: Pick<Options, 'workers'>, signal: AbortSignal, each: (job: FileJob) => Promise<void>): Promise<void> {
	const queue = [...jobs].sort((a, b) => (b.size ?? Number.MAX_SAFE_INTEGER) - (a.size ?? Number.MAX_SAFE_INTEGER) || compare(a.path, b.path));
	let free = options.workers;
	const running = new Set<Promise<void>>();
	while (queue.length > 0 && !signal.aborted) {
		const need = workersFor(queue[0]!.size ?? Number.MAX_SAFE_INTEGER, options.workers);
		if (need > free) {
			await Promise.race(running);
			continue;
		}
		const job = queue.shift()!;
		free -= need;
		const task = each(job).finally(() => {
			free += need;
			running.delete(task);
		});
		running.add(task);
	}
	await Promise.all(running);
}

/** The links per side the first files runFiles starts at once take: each file's preparing one and one per worker. */
export function firstWaveLinks(jobs: readonly FileJob[], workers: number): number {
	const sizes = jobs.map(job => job.size ?? Number.MAX_SAFE_INTEGER).sort((a, b) => b - a);
	let free = workers;
	let links = 0;
	for (const size of sizes) {
		const need = workersFor(size, workers);
		if (need > free) {
			break;
		}
		free -= need;
		links += need + 1;
	}
	return links;
}

/** One file's run: the orchestrator with this file's options; its failure becomes its result, never the run's. */
async function syncFile(job: FileJob, options: Options, signal: AbortSignal, hosts: RemoteHosts, dstTree: TreeHost, reporter: ManyReporter): Promise<FileResult> {
	const names = {src: formatEndpoint(job.src), dst: formatEndpoint(job.dst)};
	const workers = workersFor(job.size ?? Number.MAX_SAFE_INTEGER, options.workers);
	const fileOptions: Options = {...options, src: job.src, dst: job.dst, sources: [job.src], intoDirectory: false, workers, truncate: options.truncate || options.recursive};
	let summary: Summary | undefined;
	const base = reporter.file(job.path);
	const fileReporter: Reporter = {...base, start: info => base.start(info), progress: (w, e) => base.progress(w, e), warn: m => base.warn(`${job.path}: ${m}`), finish(s) {
		summary = s;
		return base.finish(s);
	}};
	let dstStamp = '';
	const afterSync = job.attrs === undefined ? undefined : async (): Promise<void> => {
		dstStamp = await dstTree.attrs(options.dst.path, job.path, job.attrs!);
	};
	try {
		await run(fileOptions, fileReporter, signal, {hosts, ...(afterSync ? {afterSync} : {})});
		const result = fileResult(job.path, names, summary, undefined, ExitCode.ok);
		if (job.srcStamp !== undefined && dstStamp !== '' && !options.dryRun) {
			result.stamps = {src: job.srcStamp, dst: dstStamp};
		}
		return result;
	} catch (error) {
		const code = exitCodeOf(error);
		if (code === ExitCode.usage && error instanceof Error && /SRC .*: no such file or directory/.test(error.message) && job.attrs !== undefined) {
			// Listed, then gone before its turn: nothing to sync, as rsync's "file has vanished".
			const result = fileResult(job.path, names, summary, undefined, ExitCode.ok);
			result.skipped = 'vanished from SRC after the listing';
			return result;
		}
		return fileResult(job.path, names, summary, error, code);
	}
}

export {fileLine};
