// Chooses the reporters for a run from the options and the terminal. Ink is loaded only for the TUI.
import type {Options} from '../options.js';
import type {Reporter} from '../engine/progress.js';
import {createPlainReporter} from './plain-reporter.js';
import {createJsonProgressReporter, createJsonSummaryReporter} from './json-reporter.js';

/** Fans every call out to several reporters, in order. */
export function combineReporters(reporters: readonly Reporter[]): Reporter {
	return {
		start: info => reporters.forEach(r => r.start(info)),
		progress: (workers, elapsed) => reporters.forEach(r => r.progress(workers, elapsed)),
		warn: message => reporters.forEach(r => r.warn(message)),
		async finish(summary) {
			for (const r of reporters) {
				await r.finish(summary);
			}
		},
	};
}

/** The progress mode in effect: an explicit --progress wins, then --quiet/--json, then the terminal. */
export function progressMode(options: Pick<Options, 'progress' | 'quiet' | 'json'>, isTTY: boolean): 'tui' | 'plain' | 'none' {
	if (options.progress) {
		return options.progress;
	}
	if (options.quiet || options.json) {
		return 'none';
	}
	return isTTY ? 'tui' : 'plain';
}

export async function createReporter(options: Options): Promise<Reporter> {
	const reporters: Reporter[] = [];
	const stderr = process.stderr;
	const mode = progressMode(options, stderr.isTTY === true);
	const summary = options.stat || (!options.quiet && !options.json);
	if (mode === 'tui' || mode === 'plain') {
		reporters.push(createPlainReporter({stream: stderr, interval: stderr.isTTY ? 1 : 10, summary}));
	} else if (options.stat) {
		reporters.push(createPlainReporter({stream: stderr, interval: 0, summary: true}));
	} else if (!options.quiet) {
		// Warnings still reach the user with --json or --progress=none.
		reporters.push({...createPlainReporter({stream: stderr, interval: 0, summary: false})});
	}
	if (options.jsonProgress) {
		reporters.push(createJsonProgressReporter(stderr));
	}
	if (options.json) {
		reporters.push(createJsonSummaryReporter(process.stdout));
	}
	return combineReporters(reporters);
}
