// Output of a run over many files: one line per file as it ends (plain), one JSON object with a `files` array (--json).
import {type Counters, emptyCounters, addCounters, type Reporter, type Summary} from '../engine/progress.js';
import {formatBytes} from './format.js';
import {withoutControls} from './plain-reporter.js';
import type {ReporterOptions} from './reporter-types.js';

/** One file's result; `path` is its place under DSTDIR. */
export type FileResult = Counters & {
	path: string;
	src: string;
	dst: string;
	size: number;
	seconds: number;
	ok: boolean;
	/** The exit status this file alone would have had. */
	exitCode: number;
	error?: string;
	/** Why a file was not synced and that is no failure ("vanished": SRC's file went between the listing and its sync). */
	skipped?: string;
	cache?: string;
	verified?: boolean | null;
	/** Skipped by the tree's quick check: SRC and DST as the last run left them (nothing read). */
	unchanged?: boolean;
	/** A dry run's file that DST does not have yet: it would be created (its size written, holes kept). */
	created?: boolean;
	/** SRC's and DST's stamps after this run, for the tree's record (not in the JSON summary). */
	stamps?: {src: string; dst: string};
};

export type ManySummary = Counters & {
	ok: boolean;
	dryRun: boolean;
	files: FileResult[];
	/** Files synced, files failed, bytes of all files. */
	filesTotal: number;
	filesFailed: number;
	size: number;
	/** DST files removed by --delete (a dry run: that would be). */
	deleted: string[];
	seconds: number;
	/** The files that failed, named. */
	error?: string;
};

export interface ManyReporter {
	/** What the run will go through: files planned (refused and unchanged ones included) and their bytes. */
	planned?(files: number, bytes: number): void;
	/** The engine's reporter for one file's run (its warnings, its progress, its summary). */
	file(path: string): Reporter;
	/** A file's run ended (or was refused before it began). */
	fileDone(result: FileResult): void;
	warn(message: string): void;
	/** A line about the tree (a deletion, a directory made), for plain output. */
	note(message: string): void;
	finish(summary: ManySummary): void | Promise<void>;
	close(error?: unknown): Promise<void>;
}

/** The result of one file from its run's summary (or only the error, when the run never started). */
export function fileResult(path: string, names: {src: string; dst: string}, summary: Summary | undefined, error: unknown, exitCode: number): FileResult {
	const counters = summary ? pickCounters(summary) : emptyCounters();
	return {
		path, src: summary?.src ?? names.src, dst: summary?.dst ?? names.dst, size: summary?.size ?? 0, ...counters, seconds: summary?.seconds ?? 0,
		ok: error === undefined, exitCode,
		...(error === undefined ? {} : {error: error instanceof Error ? error.message : String(error)}),
		...(summary?.cache === undefined ? {} : {cache: summary.cache}),
		...(summary && summary.verified !== null ? {verified: summary.verified} : {}),
	};
}

function pickCounters(c: Counters): Counters {
	const {bytesScanned, blocksChanged, blocksZero, blocksPunched, bytesWritten, bytesPunched, wireBytesSent, wireBytesReceived, srcBytesRead, dstBytesRead} = c;
	return {bytesScanned, blocksChanged, blocksZero, blocksPunched, bytesWritten, bytesPunched, wireBytesSent, wireBytesReceived, srcBytesRead, dstBytesRead};
}

/** The run's summary from its files (sorted by path). */
export function manySummary(files: readonly FileResult[], deleted: readonly string[], dryRun: boolean, seconds: number, extraWireSent = 0): ManySummary {
	const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
	const failed = sorted.filter(file => !file.ok);
	const total = sorted.reduce((sum, file) => addCounters(sum, file), emptyCounters());
	total.wireBytesSent += extraWireSent;
	return {
		ok: failed.length === 0, dryRun, files: sorted, ...total,
		filesTotal: sorted.length, filesFailed: failed.length, size: sorted.reduce((sum, file) => sum + file.size, 0),
		deleted: [...deleted], seconds,
		...(failed.length === 0 ? {} : {error: `${failed.length} of ${sorted.length} file${sorted.length === 1 ? '' : 's'} failed: ${failed.map(file => file.path).join(', ')}`}),
	};
}

/** "disk-0.img: in sync, 1.0 GiB, 3 blocks changed, 12 KiB written, 0.41 s", or "disk-1.img: FAILED: <error>". */
export function fileLine(result: FileResult, dryRun: boolean): string {
	if (result.skipped !== undefined) {
		return `${result.path}: skipped: ${result.skipped}`;
	}
	if (!result.ok) {
		return `${result.path}: FAILED: ${result.error ?? 'failed'}`;
	}
	if (result.created) {
		return `${result.path}: would be created, ${formatBytes(result.size)}`;
	}
	if (result.unchanged) {
		return `${result.path}: unchanged since the last run (quick check), ${formatBytes(result.size)}`;
	}
	const status = dryRun ? `would change ${result.blocksChanged} block${result.blocksChanged === 1 ? '' : 's'}, write ${formatBytes(result.bytesWritten)}, punch ${formatBytes(result.bytesPunched)}`
		: `${result.blocksChanged} block${result.blocksChanged === 1 ? '' : 's'} changed, ${formatBytes(result.bytesWritten)} written`;
	return `${result.path}: ${dryRun ? 'dry run' : 'in sync'}, ${formatBytes(result.size)}, ${status}, ${result.seconds.toFixed(2)} s`;
}

/** The closing line: "12 files, 3.0 GiB: 14 blocks changed, 56 KiB written, wire 1.2 MiB, 4.2 s" (and how many failed). */
export function totalLine(summary: ManySummary): string {
	const failed = summary.filesFailed > 0 ? `, ${summary.filesFailed} FAILED` : '';
	const deleted = summary.deleted.length > 0 ? `, ${summary.deleted.length} ${summary.dryRun ? 'to delete' : 'deleted'}` : '';
	return `${summary.dryRun ? 'dry run: ' : ''}${summary.filesTotal} file${summary.filesTotal === 1 ? '' : 's'}, ${formatBytes(summary.size)}: ${summary.blocksChanged} blocks ${summary.dryRun ? 'differ' : 'changed'}, ${formatBytes(summary.bytesWritten)} ${summary.dryRun ? 'to write' : 'written'}, wire ${formatBytes(summary.wireBytesSent + summary.wireBytesReceived)}, ${summary.seconds.toFixed(2)} s${deleted}${failed}`;
}

/** The --json summary: the files without their stamps (those are for the tree's record). */
export function summaryJson(summary: ManySummary): string {
	return JSON.stringify({...summary, files: summary.files.map(({stamps: _stamps, ...file}) => file)});
}

/** Plain lines on `stream` (per file unless quiet), the JSON summary on `stdout` with --json. */
export function createManyReporter(options: ReporterOptions, streams: {stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream}): ManyReporter {
	const lines = !options.quiet && !options.json && !options.jsonProgress || options.stat;
	const warnings = !options.quiet && !options.jsonProgress;
	const write = (line: string): void => {
		streams.stderr.write(withoutControls(line) + '\n');
	};
	let dryRun = false;
	const quietReporter = (): Reporter => ({
		start(info) {
			dryRun = info.dryRun;
		},
		progress() {},
		warn(message) {
			if (warnings) {
				write(`rblocksync: warning: ${message}`);
			}
		},
		finish() {},
	});
	return {
		file: () => quietReporter(),
		fileDone(result) {
			if (lines || (!result.ok && !options.json)) {
				write(fileLine(result, dryRun));
			}
		},
		warn(message) {
			if (warnings) {
				write(`rblocksync: warning: ${message}`);
			}
		},
		note(message) {
			if (lines) {
				write(message);
			}
		},
		finish(summary) {
			if (lines) {
				write(totalLine(summary));
			}
			if (options.json) {
				streams.stdout.write(summaryJson(summary) + '\n');
			}
		},
		async close() {},
	};
}
