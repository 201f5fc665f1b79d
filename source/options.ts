// The one place where flags become a validated Options object; every message here is tested word for word.
import os from 'node:os';
import {type Endpoint, parseEndpoint} from './endpoint.js';
import {UsageError} from './errors.js';
import {environmentKnobs, type EnvironmentKnobs} from './environment.js';
import {type Bounds, DEFAULT_BOUNDS} from './remote/bounds.js';
import type {RemoteAgent} from './remote/deploy.js';
import type {CompressOption} from './remote/remote-backend.js';

import type {HashName} from './delta/hash.js';
import type {FilterRule} from './tree/glob.js';

export type {HashName};
export type ProgressMode = 'tui' | 'plain' | 'none';

/** The typed flags (argv.ts typeFlags; all optional: tests pass only what they exercise). */
export type RawFlags = {
	truncate?: boolean;
	recursive?: boolean;
	/** --include GLOB and --exclude GLOB in the order given, as +GLOB and -GLOB (splitArgv). */
	filter?: string[];
	delete?: boolean;
	watch?: boolean;
	debounce?: string;
	blockSize?: string;
	workers?: string;
	dryRun?: boolean;
	check?: boolean;
	verify?: boolean;
	copy?: boolean;
	cache?: boolean;
	cacheDir?: string;
	trustCache?: boolean;
	cacheSample?: string;
	hash?: string;
	quiet?: boolean;
	json?: boolean;
	jsonProgress?: boolean;
	progress?: string;
	stat?: boolean;
	force?: boolean;
	debug?: boolean;
	port?: string;
	identity?: string;
	remoteSudo?: boolean;
	remoteCommand?: string;
	acceptNewHostKey?: boolean;
	compress?: string;
	bwlimit?: string;
	timeout?: string;
	retries?: string;
	format?: string;
	srcFormat?: string;
	bitmap?: string;
	dstFormat?: string;
	qmp?: string;
	forceShare?: boolean;
};

export type Options = {
	/** The first SRC (a run of one file has only this one). */
	readonly src: Endpoint;
	readonly dst: Endpoint;
	/** Every SRC given, in order. */
	readonly sources: readonly Endpoint[];
	/** DST is a directory the files go into: several SRCs, -r, or DST written with a trailing slash (run.ts adds an existing local directory). */
	readonly intoDirectory: boolean;
	/** -r: each SRC directory's tree, file by file. */
	readonly recursive: boolean;
	/** --include/--exclude rules, first match wins. */
	readonly filters: readonly FilterRule[];
	/** --delete: remove DST files under DSTDIR that SRC's tree no longer has. */
	readonly delete: boolean;
	/** --watch: after the first pass, sync each file of SRC's tree that changes, once writes have been quiet for debounceMs. */
	readonly watch: boolean;
	readonly debounceMs: number;
	readonly truncate: boolean;
	readonly blockSize: number;
	readonly workers: number;
	/** True with --check too, which is a dry run whose exit status says whether DST differs. */
	readonly dryRun: boolean;
	/** --check: exit 4 when DST differs from SRC (blocks a real run would change), 0 when it does not. */
	readonly check: boolean;
	readonly verify: boolean;
	readonly copy: boolean;
	/** DEST keeps a digest cache of DST on DST's host and uses it instead of reading DST (off: --no-cache). */
	readonly cache: boolean;
	/** --cache-dir: where DST's host keeps the digest cache (a path on that host); undefined: its default. */
	readonly cacheDir: string | undefined;
	/** --trust-cache: a block device DST's cache is used, checked every run by reading this percentage of its chunks (at least 8); undefined: not used. */
	readonly trustCache: number | undefined;
	readonly hash: HashName;
	readonly quiet: boolean;
	readonly json: boolean;
	readonly jsonProgress: boolean;
	/** Resolved: --progress, else none with -q/--json/--json-progress, else tui on a terminal and plain otherwise. */
	readonly progress: ProgressMode;
	readonly stat: boolean;
	readonly force: boolean;
	readonly debug: boolean;
	readonly port: number | undefined;
	readonly identity: string | undefined;
	/** How the agent runs on remote hosts: through `sudo -n` (--remote-sudo), by the user's command (--remote-command). */
	readonly remoteAgent: RemoteAgent;
	readonly acceptNewHostKey: boolean;
	/** --compress: auto (the default: only while it pays), off, or on at a level 1-19 (zstd; zlib 1-9 where a host has no zstd). */
	readonly compress: CompressOption;
	/** --bwlimit: bytes per second across the whole run; 0: no limit. */
	readonly bwlimit: number;
	/** How long each step may wait on a host: --timeout sets every bound, else DEFAULT_BOUNDS. */
	readonly bounds: Bounds;
	/** --retries: reconnects after an SSH link dropped mid-run (DEFAULT_RETRIES; 0: a drop fails the run). */
	readonly retries: number;
	/** --src-format/--dst-format (--format sets both): undefined when not given, when an image holding a format header is refused. */
	readonly srcFormat: string | undefined;
	/** --bitmap NAME: SRC's persistent dirty bitmap (a qcow2 SRC); after a recorded pass to this DST only what it marks is read. */
	readonly bitmap: string | undefined;
	readonly dstFormat: string | undefined;
	/** --qmp: the monitor socket (on SRC's host) of the running VM whose disk SRC names; its QEMU exports the disk. */
	readonly qmp: string | undefined;
	/** --force-share: a formatted SRC is read past the lock of the QEMU that holds it (qemu-nbd --force-share). */
	readonly forceShare: boolean;
} & EnvironmentKnobs;

/** The progress mode in effect: an explicit --progress wins, then --quiet/--json/--json-progress, then the terminal. */
export function progressMode(flags: {progress: ProgressMode | undefined; quiet: boolean; json: boolean; jsonProgress: boolean}, isTTY: boolean): ProgressMode {
	if (flags.progress) {
		return flags.progress;
	}
	if (flags.quiet || flags.json || flags.jsonProgress) {
		return 'none';
	}
	return isTTY ? 'tui' : 'plain';
}

export const DEFAULT_BLOCK_SIZE = 4096;
export const MIN_BLOCK_SIZE = 512;
export const MAX_BLOCK_SIZE = 16 * 1024 * 1024;
export const MAX_WORKERS = 64;
/** --timeout's largest value: a day. */
export const MAX_TIMEOUT = 86_400;
/** --retries without the option, and its largest value. */
export const DEFAULT_RETRIES = 3;
export const MAX_RETRIES = 100;
/** --watch's quiet time before a changed file is synced. */
export const DEFAULT_DEBOUNCE_MS = 2000;
/** -z without a level, and --compress=auto's level (zstd 1: several hundred MB/s). */
export const DEFAULT_COMPRESS_LEVEL = 1;
/** zstd's levels without its --ultra window sizes. */
export const MAX_COMPRESS_LEVEL = 19;

/** Default worker count: one per CPU, at most 8. */
export function defaultWorkers(cpus = os.availableParallelism?.() ?? os.cpus().length): number {
	return Math.max(1, Math.min(8, cpus));
}

const SIZE_SUFFIX: Record<string, number> = {'': 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2};

/** "4096", "64k", "1M", "1MiB" -> bytes; NaN when unreadable. */
export function parseSize(text: string): number {
	const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
	const factor = match ? SIZE_SUFFIX[match[2]!.toLowerCase()] : undefined;
	return match && factor !== undefined ? Number(match[1]) * factor : Number.NaN;
}

const RATE_SUFFIX: Record<string, number> = {
	b: 1, k: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2, g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
};
/** --cache-sample's default: 1% of a trusted device cache's chunks (at least 8) are read and checked every run. */
export const DEFAULT_CACHE_SAMPLE = 1;

/** --bwlimit's smallest rate other than 0 (no limit): 1 KiB/s. */
export const MIN_BWLIMIT = 1024;

/**
 * --bwlimit's RATE as rsync reads it, in bytes per second: "500K", "20M", "1.5G" (K, M, G and KiB... are
 * powers of 1024, KB, MB, GB powers of 1000, B bytes), a bare number is KiB; 0 means no limit. NaN when unreadable.
 */
export function parseRate(text: string): number {
	const match = /^(\d+(?:\.\d+)?)([a-z]*)$/i.exec(text.trim());
	const factor = match ? (match[2] === '' ? 1024 : RATE_SUFFIX[match[2]!.toLowerCase()]) : undefined;
	return match && factor !== undefined ? Math.round(Number(match[1]) * factor) : Number.NaN;
}

/** Turns positional arguments and flags into Options, or throws UsageError with a one-line message. */
export function resolveOptions(input: readonly string[], flags: RawFlags, cpus?: number, env: NodeJS.ProcessEnv = process.env, stderrIsTTY = process.stderr.isTTY === true): Options {
	if (input.length < 2) {
		throw new UsageError('expected SRC and DST; see rblocksync --help');
	}
	const dstSpec = input[input.length - 1]!;
	const sources = input.slice(0, -1).map(spec => endpoint('SRC', spec));
	const src = sources[0]!;
	const dst = endpoint('DST', dstSpec);
	const recursive = flags.recursive ?? false;
	const intoDirectory = sources.length > 1 || recursive || dst.path.endsWith('/');
	const filters = (flags.filter ?? []).map(rule => ({include: rule.startsWith('+'), pattern: rule.slice(1)}));
	if (filters.some(rule => rule.pattern === '')) {
		throw new UsageError('--include and --exclude need a pattern; got an empty one');
	}
	if (filters.length > 0 && !recursive) {
		throw new UsageError('--include and --exclude apply to trees: add -r');
	}
	if (flags.delete && !recursive) {
		throw new UsageError('--delete applies to trees: add -r');
	}
	if (flags.delete && sources.length > 1) {
		throw new UsageError('--delete takes one SRC directory; got ' + sources.length);
	}
	if (flags.watch && (!recursive || sources.some(source => source.kind !== 'local'))) {
		throw new UsageError('--watch watches a local SRC tree: add -r, with a local SRC');
	}
	let debounceMs = DEFAULT_DEBOUNCE_MS;
	if (flags.debounce !== undefined) {
		const value = /^\d+(\.\d+)?$/.test(flags.debounce) ? Number(flags.debounce) : Number.NaN;
		if (!(value > 0 && value <= MAX_TIMEOUT) || !flags.watch) {
			throw new UsageError(flags.watch ? `--debounce must be a number of seconds above 0; got ${flags.debounce}` : '--debounce applies to --watch');
		}
		debounceMs = Math.round(value * 1000);
	}
	if (intoDirectory && (flags.srcFormat !== undefined || flags.dstFormat !== undefined || flags.format !== undefined)) {
		throw new UsageError('--format, --src-format and --dst-format take one SRC and one DST');
	}

	const blockSize = flags.blockSize === undefined ? DEFAULT_BLOCK_SIZE : parseSize(flags.blockSize);
	if (!(blockSize >= MIN_BLOCK_SIZE && blockSize <= MAX_BLOCK_SIZE && (blockSize & (blockSize - 1)) === 0)) {
		throw new UsageError(`--block-size must be a power of two from 512 to 16777216 bytes (16 MiB); got ${flags.blockSize}`);
	}

	const workers = flags.workers === undefined ? defaultWorkers(cpus) : Number(flags.workers);
	if (!(Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS) || (flags.workers !== undefined && !/^\d+$/.test(flags.workers))) {
		throw new UsageError(`--workers must be a whole number from 1 to ${MAX_WORKERS}; got ${flags.workers}`);
	}

	const hash = flags.hash ?? 'blake3';
	if (hash !== 'blake3' && hash !== 'sha256') {
		throw new UsageError(`--hash must be blake3 or sha256; got ${hash}`);
	}

	const progress = flags.progress;
	if (progress !== undefined && progress !== 'tui' && progress !== 'plain' && progress !== 'none') {
		throw new UsageError(`--progress must be tui, plain or none; got ${progress}`);
	}

	if (flags.copy && flags.dryRun) {
		throw new UsageError('--copy and --dry-run cannot be combined: --copy does not read DST, so there is nothing to compare');
	}

	if (flags.verify && flags.dryRun) {
		throw new UsageError('--verify and --dry-run cannot be combined: a dry run writes nothing to verify');
	}

	if (flags.copy && flags.check) {
		throw new UsageError('--copy and --check cannot be combined: --copy does not read DST, so there is nothing to compare');
	}

	if (flags.verify && flags.check) {
		throw new UsageError('--verify and --check cannot be combined: --check writes nothing to verify');
	}

	let port: number | undefined;
	if (flags.port !== undefined) {
		port = /^\d+$/.test(flags.port) ? Number(flags.port) : Number.NaN;
		if (!(port >= 1 && port <= 65_535)) {
			throw new UsageError(`--port must be a number from 1 to 65535; got ${flags.port}`);
		}
	}

	let compress: CompressOption = {mode: 'auto', level: DEFAULT_COMPRESS_LEVEL};
	if (flags.compress === 'off') {
		compress = {mode: 'off', level: 0};
	} else if (flags.compress !== undefined && flags.compress !== 'auto') {
		const level = flags.compress === '' ? DEFAULT_COMPRESS_LEVEL : /^\d{1,2}$/.test(flags.compress) ? Number(flags.compress) : Number.NaN;
		if (!(level >= 1 && level <= MAX_COMPRESS_LEVEL)) {
			throw new UsageError(`--compress must be auto, off or a level from 1 to ${MAX_COMPRESS_LEVEL}; got ${flags.compress}`);
		}
		compress = {mode: 'on', level};
	}

	const bwlimit = flags.bwlimit === undefined ? 0 : parseRate(flags.bwlimit);
	if (!(bwlimit === 0 || bwlimit >= MIN_BWLIMIT)) {
		throw new UsageError(`--bwlimit must be a rate such as 500K, 20M or 1G bytes per second (at least 1K; 0: no limit); got ${flags.bwlimit}`);
	}
	if (bwlimit > 0 && src.kind === 'local' && dst.kind === 'local') {
		throw new UsageError('--bwlimit applies to remote endpoints; SRC and DST are both local');
	}

	let bounds = DEFAULT_BOUNDS;
	if (flags.timeout !== undefined) {
		const timeout = /^\d+$/.test(flags.timeout) ? Number(flags.timeout) : Number.NaN;
		if (!(timeout >= 1 && timeout <= MAX_TIMEOUT)) {
			throw new UsageError(`--timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT}; got ${flags.timeout}`);
		}
		bounds = {connectMs: timeout * 1000, replyMs: timeout * 1000, stallMs: timeout * 1000};
	}
	const retries = flags.retries === undefined ? DEFAULT_RETRIES : /^\d+$/.test(flags.retries) ? Number(flags.retries) : Number.NaN;
	if (!(retries >= 0 && retries <= MAX_RETRIES)) {
		throw new UsageError(`--retries must be a whole number from 0 to ${MAX_RETRIES}; got ${flags.retries}`);
	}

	const srcFormat = format('--src-format', flags.srcFormat) ?? format('--format', flags.format);
	const dstFormat = format('--dst-format', flags.dstFormat) ?? format('--format', flags.format);

	const bitmap = flags.bitmap;
	if (bitmap !== undefined && (bitmap === '' || bitmap.length > 1000 || /[\0\n]/.test(bitmap))) {
		throw new UsageError(`--bitmap must name a dirty bitmap of SRC (qemu-img info lists them); got ${JSON.stringify(bitmap)}`);
	}
	if (bitmap !== undefined && intoDirectory) {
		// A qcow2 SRC's bitmap needs --src-format, which runs over many files do not take.
		throw new UsageError('--bitmap takes one SRC (a qcow2 image, --src-format qcow2) and one DST, not several files or a tree');
	}

	const cacheDir = flags.cacheDir;
	if (cacheDir !== undefined && (cacheDir === '' || /[\0\n]/.test(cacheDir))) {
		throw new UsageError(`--cache-dir must name a directory on DST's host; got ${JSON.stringify(cacheDir)}`);
	}
	if (flags.cache === false && (cacheDir !== undefined || flags.trustCache || flags.cacheSample !== undefined)) {
		throw new UsageError('--no-cache cannot be combined with --cache-dir, --trust-cache or --cache-sample');
	}
	if (flags.cacheSample !== undefined && !flags.trustCache) {
		throw new UsageError('--cache-sample applies with --trust-cache (the chunks of a block device\'s cache read and checked every run)');
	}
	const cacheSample = flags.cacheSample === undefined ? DEFAULT_CACHE_SAMPLE : /^\d+(\.\d+)?$/.test(flags.cacheSample) ? Number(flags.cacheSample) : Number.NaN;
	if (!(cacheSample > 0 && cacheSample <= 100)) {
		throw new UsageError(`--cache-sample must be a percentage of the chunks, above 0 and at most 100; got ${flags.cacheSample}`);
	}

	const qmp = flags.qmp;
	if (qmp !== undefined) {
		if (qmp === '') {
			throw new UsageError('--qmp needs the running VM\'s QMP socket (Proxmox VE: /var/run/qemu-server/VMID.qmp)');
		}
		if (flags.srcFormat !== undefined || flags.format !== undefined) {
			throw new UsageError('--qmp and --src-format/--format cannot be combined: the VM exports its disk as the guest sees it, whatever its format');
		}
		if (sources.length > 1 || recursive) {
			throw new UsageError('--qmp takes one SRC, a disk of that VM');
		}
		if (flags.forceShare) {
			throw new UsageError('--qmp and --force-share cannot be combined: with --qmp the VM exports its disk itself, no lock is passed');
		}
	}
	if (flags.forceShare && !(srcFormat !== undefined && srcFormat !== 'raw')) {
		throw new UsageError('--force-share applies to a SRC read through qemu-nbd (--src-format qcow2, ...); a raw SRC is read without QEMU\'s locks');
	}

	if (sources.every(source => source.kind === 'local') && dst.kind === 'local' && (port !== undefined || flags.identity !== undefined)) {
		throw new UsageError('--port and --identity apply to remote endpoints; SRC and DST are both local');
	}

	const remoteCommand = flags.remoteCommand;
	if (remoteCommand !== undefined && (remoteCommand.trim() === '' || /[\n\r\0]/.test(remoteCommand))) {
		throw new UsageError('--remote-command must be a command on one line, such as /opt/rblocksync/bin/rblocksync; got an empty or multi-line value');
	}
	if (src.kind === 'local' && dst.kind === 'local' && (flags.remoteSudo || remoteCommand !== undefined)) {
		throw new UsageError('--remote-sudo and --remote-command apply to remote endpoints; SRC and DST are both local');
	}

	return {
		src,
		dst,
		sources,
		intoDirectory,
		recursive,
		filters,
		delete: flags.delete ?? false,
		watch: flags.watch ?? false,
		debounceMs,
		truncate: flags.truncate ?? false,
		blockSize,
		workers,
		dryRun: (flags.dryRun ?? false) || (flags.check ?? false),
		check: flags.check ?? false,
		verify: flags.verify ?? false,
		copy: flags.copy ?? false,
		cache: flags.cache ?? true,
		cacheDir,
		trustCache: flags.trustCache ? cacheSample : undefined,
		hash,
		quiet: flags.quiet ?? false,
		json: flags.json ?? false,
		jsonProgress: flags.jsonProgress ?? false,
		progress: progressMode({progress, quiet: flags.quiet ?? false, json: flags.json ?? false, jsonProgress: flags.jsonProgress ?? false}, stderrIsTTY),
		stat: flags.stat ?? false,
		force: flags.force ?? false,
		debug: flags.debug ?? false,
		port,
		identity: flags.identity,
		remoteAgent: {sudo: flags.remoteSudo ?? false, ...(remoteCommand === undefined ? {} : {command: remoteCommand.trim()})},
		acceptNewHostKey: flags.acceptNewHostKey ?? false,
		compress,
		bwlimit,
		bounds,
		retries,
		srcFormat,
		dstFormat,
		bitmap,
		qmp,
		forceShare: flags.forceShare ?? false,
		...environmentKnobs(env),
	};
}

/** A format name as qemu-img spells them (raw, qcow2, vmdk, ...); whether the host knows it is the host's to say. */
function format(option: string, value: string | undefined): string | undefined {
	if (value !== undefined && !/^[a-z][a-z0-9_-]*$/.test(value)) {
		throw new UsageError(`${option} must be a format name such as raw or qcow2 (see qemu-img --help); got ${value}`);
	}
	return value;
}

function endpoint(name: 'SRC' | 'DST', spec: string): Endpoint {
	try {
		return parseEndpoint(spec);
	} catch (error) {
		throw new UsageError(`${name} ${error instanceof Error ? error.message : String(error)}`);
	}
}
