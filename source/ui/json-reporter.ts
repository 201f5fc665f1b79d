// Machine-readable output: the --json summary object and --json-progress NDJSON events.
import {type Reporter, type Summary, totalOf} from '../engine/progress.js';

/** Prints the summary as one JSON object (--json). */
export function createJsonSummaryReporter(stream: NodeJS.WritableStream): Reporter {
	return {
		start() {},
		progress() {},
		warn() {},
		finish(summary: Summary) {
			stream.write(JSON.stringify(summary) + '\n');
		},
	};
}

/**
 * Prints NDJSON events (--json-progress): {"event":"start",...}, then per batch one "worker" line per worker
 * and one "total" line, at most one batch per `interval` seconds; "warning" lines; a final "finish" with the summary.
 */
export function createJsonProgressReporter(stream: NodeJS.WritableStream, interval = 1, now = () => performance.now() / 1000): Reporter {
	let last = Number.NEGATIVE_INFINITY;
	let size = 0;
	let sentDone = false;
	const emit = (event: Record<string, unknown>): void => {
		stream.write(JSON.stringify(event) + '\n');
	};
	return {
		start(info) {
			size = info.size;
			emit({event: 'start', ...info});
		},
		progress(workers, elapsed) {
			const t = now();
			const allDone = workers.length > 0 && workers.every(w => w.done);
			// The batch where the last worker finishes always goes out, once.
			if (t - last < interval && !(allDone && !sentDone)) {
				return;
			}
			last = t;
			sentDone ||= allDone;
			for (const worker of workers) {
				emit({event: 'worker', elapsed, ...worker});
			}
			const total = totalOf(workers);
			emit({event: 'total', elapsed, size, done: allDone, ...total});
		},
		warn(message) {
			emit({event: 'warning', message});
		},
		finish(summary) {
			emit({event: 'finish', ...summary});
		},
	};
}
