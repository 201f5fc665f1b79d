// Chooses the reporters for a run from the options and the terminal. Ink is loaded only for the TUI.
import type {Reporter} from '../engine/progress.js';
import {createPlainReporter} from './plain-reporter.js';
import {createJsonProgressReporter, createJsonSummaryReporter} from './json-reporter.js';
import type {ClosableReporter, ReporterOptions} from './reporter-types.js';

export type {ClosableReporter} from './reporter-types.js';

/** Fans every call out to several reporters, in order. */
export function combineReporters(reporters: ReadonlyArray<Reporter | ClosableReporter>): ClosableReporter {
	return {
		start: info => reporters.forEach(r => r.start(info)),
		progress: (workers, elapsed) => reporters.forEach(r => r.progress(workers, elapsed)),
		warn: message => reporters.forEach(r => r.warn(message)),
		async finish(summary) {
			for (const r of reporters) {
				await r.finish(summary);
			}
		},
		async close(error) {
			for (const r of reporters) {
				if ('close' in r) {
					await r.close(error);
				}
			}
		},
	};
}

/** Where reporters write; injected so tests can pass fakes. */
export type ReporterStreams = {
	stdout: NodeJS.WritableStream;
	stderr: NodeJS.WritableStream & {isTTY?: boolean; columns?: number; rows?: number};
};

/**
 * The reporters for these options. The TUI (and with it ink and react) is imported here and only here,
 * when it is chosen; `signal` is the run's abort signal, so the TUI can say it is stopping.
 */
export async function createReporter(options: ReporterOptions, signal?: AbortSignal, streams: ReporterStreams = {stdout: process.stdout, stderr: process.stderr}): Promise<ClosableReporter> {
	const reporters: Array<Reporter | ClosableReporter> = [];
	const {stderr, stdout} = streams;
	const isTTY = stderr.isTTY === true;
	const mode = options.progress;
	// The plain summary goes to stderr unless the output there is meant for machines; --stat always wins.
	const summary = options.stat || (!options.quiet && !options.json && !options.jsonProgress);
	if (mode === 'tui') {
		if (process.env['NO_COLOR'] && !('FORCE_COLOR' in process.env)) {
			process.env['FORCE_COLOR'] = '0'; // https://no-color.org: chalk (under ink) reads FORCE_COLOR when loaded.
		}
		const {createTuiReporter} = await import('./tui-reporter.js');
		// The TUI shows warnings and draws the summary itself.
		reporters.push(createTuiReporter({stream: stderr, signal}));
	} else if (mode === 'plain') {
		reporters.push(createPlainReporter({stream: stderr, interval: isTTY ? 1 : 10, summary, warnings: !options.jsonProgress}));
	} else if (summary || !options.quiet) {
		// No progress lines; warnings (not with -q or NDJSON on stderr) and the --stat summary still come out.
		reporters.push(createPlainReporter({stream: stderr, interval: 0, summary, warnings: !options.quiet && !options.jsonProgress}));
	}
	if (options.jsonProgress) {
		reporters.push(createJsonProgressReporter(stderr));
	}
	if (options.json) {
		reporters.push(createJsonSummaryReporter(stdout));
	}
	return combineReporters(reporters);
}
