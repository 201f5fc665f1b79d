// Progress as plain text lines: no escape codes, at most one line per interval.
import type {Writable} from 'node:stream';
import {type Reporter, type Summary, type SyncStart, type WorkerState, totalOf} from '../engine/progress.js';
import {formatBytes, formatDuration, formatPercent, formatRate} from './format.js';
import {summaryLines} from './summary-text.js';

export type PlainReporterOptions = {
	stream: Writable;
	/** Seconds between progress lines; 0 disables progress lines. */
	interval: number;
	/** Print the summary at the end. */
	summary: boolean;
	now?: () => number;
};

/** A reporter for logs and cron: progress lines every `interval` seconds, then the summary. */
export function createPlainReporter(options: PlainReporterOptions): Reporter {
	const now = options.now ?? (() => performance.now() / 1000);
	let last = Number.NEGATIVE_INFINITY;
	let info: SyncStart | undefined;
	return {
		start(start) {
			info = start;
			last = now();
			if (options.interval > 0 && start.phase === 'sync') {
				options.stream.write(`${start.dryRun ? 'comparing' : 'syncing'} ${start.src} -> ${start.dst}: ${formatBytes(start.size)}, ${start.workers} worker${start.workers === 1 ? '' : 's'}\n`);
			}
		},
		progress(workers: readonly WorkerState[], elapsed: number) {
			if (options.interval <= 0 || !info) {
				return;
			}
			const t = now();
			if (t - last < options.interval) {
				return;
			}
			last = t;
			options.stream.write(progressLine(info, workers, elapsed) + '\n');
		},
		warn(message) {
			options.stream.write(`rblocksync: warning: ${message}\n`);
		},
		finish(summary: Summary) {
			if (options.summary) {
				options.stream.write(summaryLines(summary).join('\n') + '\n');
			}
		},
	};
}

/** "verify 12.5% 1.2 GiB/9.8 GiB 410 MiB/s changed 17 ETA 0:21". */
export function progressLine(info: SyncStart, workers: readonly WorkerState[], elapsed: number): string {
	const total = totalOf(workers);
	const rate = elapsed > 0 ? total.bytesScanned / elapsed : 0;
	const eta = rate > 0 ? (info.size - total.bytesScanned) / rate : Number.NaN;
	return `${info.phase} ${formatPercent(total.bytesScanned, info.size)} ${formatBytes(total.bytesScanned)}/${formatBytes(info.size)} ${formatRate(total.bytesScanned, elapsed)} changed ${total.blocksChanged} ETA ${formatDuration(eta)}`;
}
