// Machine-readable output: the --json summary object and --json-progress NDJSON events.
import type {Writable} from 'node:stream';
import {type Reporter, type Summary, totalOf} from '../engine/progress.js';

/** Prints the summary as one JSON object (--json). */
export function createJsonSummaryReporter(stream: Writable): Reporter {
	return {
		start() {},
		progress() {},
		warn() {},
		finish(summary: Summary) {
			stream.write(JSON.stringify(summary) + '\n');
		},
	};
}

/** Prints NDJSON progress events (--json-progress), at most one batch per `interval` seconds. */
export function createJsonProgressReporter(stream: Writable, interval = 1, now = () => performance.now() / 1000): Reporter {
	let last = Number.NEGATIVE_INFINITY;
	return {
		start(info) {
			stream.write(JSON.stringify({event: 'start', ...info}) + '\n');
		},
		progress(workers, elapsed) {
			const t = now();
			if (t - last < interval) {
				return;
			}
			last = t;
			for (const worker of workers) {
				stream.write(JSON.stringify({event: 'worker', elapsed, ...worker}) + '\n');
			}
			stream.write(JSON.stringify({event: 'total', elapsed, ...totalOf(workers)}) + '\n');
		},
		warn(message) {
			stream.write(JSON.stringify({event: 'warning', message}) + '\n');
		},
		finish(summary) {
			stream.write(JSON.stringify({event: 'finish', ...summary}) + '\n');
		},
	};
}
