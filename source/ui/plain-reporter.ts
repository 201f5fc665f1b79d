// Progress as plain text lines for logs and cron: no escape codes, at most one line per interval, then the summary.
import {type Reporter, type Summary, type SyncStart, type WorkerState, totalOf} from '../engine/progress.js';
import {formatBytes, formatDuration, formatPercent, formatRate} from './format.js';
import {summaryLines} from './summary-text.js';

export type PlainReporterOptions = {
	stream: NodeJS.WritableStream;
	/** Seconds between progress lines; 0 disables progress lines. */
	interval: number;
	/** Print the summary at the end. */
	summary: boolean;
	/** Print warnings (default true). */
	warnings?: boolean;
	/** Seconds, monotonic. */
	now?: () => number;
};

/** A reporter for logs and cron: a start line, progress lines every `interval` seconds, warnings, then the summary. */
export function createPlainReporter(options: PlainReporterOptions): Reporter {
	const now = options.now ?? (() => performance.now() / 1000);
	const write = (line: string): void => {
		options.stream.write(withoutControls(line) + '\n');
	};
	let last = Number.NEGATIVE_INFINITY;
	let info: SyncStart | undefined;
	return {
		start(start) {
			info = start;
			last = now();
			if (options.interval > 0) {
				write(startLine(start));
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
			write(progressLine(info, workers, elapsed));
		},
		warn(message) {
			if (options.warnings ?? true) {
				write(`rblocksync: warning: ${message}`);
			}
		},
		finish(summary: Summary) {
			// A run that never started has no figures to show: the error line says it all.
			if (options.summary && info) {
				summaryLines(summary).forEach(write);
			}
		},
	};
}

/** "syncing a.img -> b.img: 10 GiB, 4 workers" (or comparing/verifying). */
export function startLine(start: SyncStart): string {
	const verb = start.phase === 'verify' ? 'verifying' : start.dryRun ? 'comparing' : 'syncing';
	return `${verb} ${start.src} -> ${start.dst}: ${formatBytes(start.size)}, ${start.workers} worker${start.workers === 1 ? '' : 's'}`;
}

/** "sync 12.5% 1.2 GiB/9.8 GiB 410 MiB/s changed 17 elapsed 0:03 ETA 0:21". */
export function progressLine(info: SyncStart, workers: readonly WorkerState[], elapsed: number): string {
	const total = totalOf(workers);
	const rate = elapsed > 0 ? total.bytesScanned / elapsed : 0;
	const eta = rate > 0 ? (info.size - total.bytesScanned) / rate : Number.NaN;
	const done = workers.filter(w => w.done).length;
	return `${info.phase} ${formatPercent(total.bytesScanned, info.size)} ${formatBytes(total.bytesScanned)}/${formatBytes(info.size)} ${formatRate(total.bytesScanned, elapsed)} changed ${total.blocksChanged} workers ${done}/${workers.length} done elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)}`;
}

/** Replaces control characters (a path can hold ESC) so plain output never drives the terminal. */
export function withoutControls(text: string): string {
	// eslint-disable-next-line no-control-regex
	return text.replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, '?');
}
