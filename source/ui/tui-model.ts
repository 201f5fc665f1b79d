// What the TUI shows, computed from reporter calls: pure data, so components render fixed states in tests.
import {type Counters, type Summary, type SyncStart, type WorkerState, totalOf} from '../engine/progress.js';
import {createRateMeter, type RateMeter} from './rate-meter.js';

/** Whether a worker that stopped covered its whole range (the engine also sets done when a worker is stopped). */
export function isComplete(worker: Pick<WorkerView, 'done' | 'bytesScanned' | 'start' | 'end'>): boolean {
	return worker.done && worker.bytesScanned >= worker.end - worker.start;
}

/** One worker as drawn: its range, how far it is, how fast it goes now. */
export type WorkerView = {
	readonly id: number;
	readonly start: number;
	readonly end: number;
	readonly bytesScanned: number;
	readonly blocksChanged: number;
	readonly done: boolean;
	/** Bytes per second: recent while running, the worker's average once done. */
	readonly rate: number;
};

/** Everything one frame needs. */
export type TuiView = {
	readonly start: SyncStart;
	readonly workers: readonly WorkerView[];
	readonly total: Counters;
	readonly elapsed: number;
	/** Average bytes scanned per second since the phase began. */
	readonly rate: number;
	/** Seconds left at the average rate; NaN while unknown. */
	readonly eta: number;
	readonly warnings: readonly string[];
	/** SIGINT arrived: workers are stopping and DST is being flushed. */
	readonly stopping: boolean;
	/** Set once the run ended; the frame becomes the final report. */
	readonly summary?: Summary;
	/** Set when the run ended without a summary (an error before finish). */
	readonly error?: string;
	readonly columns: number;
	readonly rows: number;
};

/** The part of a view that progress() changes. */
export type ProgressSnapshot = Pick<TuiView, 'workers' | 'total' | 'elapsed' | 'rate' | 'eta'>;

/**
 * Turns successive progress() calls into views; keeps per-worker rate meters and finish times.
 * `phaseStart` is the elapsed time when this phase began (the verify phase starts from zero bytes mid-run).
 */
export function createProgressTracker(windowSeconds = 3, phaseStart = 0): {
	update(size: number, workers: readonly WorkerState[], elapsed: number): ProgressSnapshot;
} {
	const meters = new Map<number, RateMeter>();
	const doneAt = new Map<number, number>();
	return {
		update(size, workers, elapsed) {
			const views = workers.map((worker): WorkerView => {
				let meter = meters.get(worker.id);
				if (!meter) {
					meter = createRateMeter(windowSeconds);
					meters.set(worker.id, meter);
				}
				const recent = meter.sample(elapsed, worker.bytesScanned);
				if (worker.done && !doneAt.has(worker.id)) {
					doneAt.set(worker.id, elapsed);
				}
				const finished = doneAt.get(worker.id);
				const ran = (finished ?? elapsed) - phaseStart;
				return {
					id: worker.id,
					start: worker.start,
					end: worker.end,
					bytesScanned: worker.bytesScanned,
					blocksChanged: worker.blocksChanged,
					done: worker.done,
					rate: finished === undefined ? recent : ran > 0 ? worker.bytesScanned / ran : 0,
				};
			});
			const total = totalOf(workers);
			const rate = elapsed - phaseStart > 0 ? total.bytesScanned / (elapsed - phaseStart) : 0;
			const eta = rate > 0 ? Math.max(0, size - total.bytesScanned) / rate : Number.NaN;
			return {workers: views, total, elapsed, rate, eta};
		},
	};
}

/** The workers that fit in `maxRows` lines: all of them, or the running ones first and a count of the rest. */
export function visibleWorkers(workers: readonly WorkerView[], maxRows: number): {shown: WorkerView[]; hidden: {done: number; running: number}} {
	if (workers.length <= Math.max(1, maxRows)) {
		return {shown: [...workers], hidden: {done: 0, running: 0}};
	}
	const room = Math.max(1, maxRows - 1);
	const ranked = [...workers].sort((a, b) => Number(a.done) - Number(b.done) || a.id - b.id);
	const shown = ranked.slice(0, room).sort((a, b) => a.id - b.id);
	const rest = ranked.slice(room);
	const done = rest.filter(w => w.done).length;
	return {shown, hidden: {done, running: rest.length - done}};
}
