// Runs range jobs in worker threads (or in-process when no compiled worker exists), aggregating progress.
import fs from 'node:fs';
import {fileURLToPath} from 'node:url';
import {Worker} from 'node:worker_threads';
import {emptyCounters, type WorkerState} from './progress.js';
import {runRange} from './run-range.js';
import {STOP, type WorkerInput, type WorkerMessage} from './worker-protocol.js';

export type PoolJob = Omit<WorkerInput, 'shared'>;

export type PoolResult = {
	states: WorkerState[];
	/** Every job ran to its end (false when stopped or failed). */
	completed: boolean;
	error: {message: string; code: string | undefined; worker: number} | undefined;
};

export type PoolHooks = {
	/** Called at most every `intervalMs` with every worker's state. */
	progress(states: readonly WorkerState[]): void;
	warn(message: string): void;
	signal: AbortSignal;
	intervalMs?: number;
};

/** The compiled worker entry beside this module (dist/engine/worker.js, or the bundle's worker file). */
function workerUrl(): URL | undefined {
	for (const name of ['./worker.js', './rblocksync-worker.mjs']) {
		const url = new URL(name, import.meta.url);
		if (url.protocol === 'file:' && fs.existsSync(fileURLToPath(url))) {
			return url;
		}
	}
	return undefined;
}

/** Runs every job; resolves when all have ended. Never rejects for a job's failure: see `error`. */
export async function runPool(jobs: readonly PoolJob[], hooks: PoolHooks): Promise<PoolResult> {
	const shared = new SharedArrayBuffer(8);
	const flags = new Int32Array(shared);
	const states: WorkerState[] = jobs.map((job, id) => ({id: id + 1, start: job.job.start, end: job.job.end, done: false, ...emptyCounters()}));
	const intervalMs = hooks.intervalMs ?? 100;
	let lastEmit = 0;
	let completed = true;
	let error: PoolResult['error'];
	const stop = (): void => {
		Atomics.store(flags, STOP, 1);
		Atomics.notify(flags, STOP);
	};
	const onAbort = (): void => stop();
	hooks.signal.addEventListener('abort', onAbort);
	if (hooks.signal.aborted) {
		stop();
	}

	const handle = (index: number, message: WorkerMessage): void => {
		const state = states[index]!;
		switch (message.type) {
			case 'progress':
				Object.assign(state, message.counters);
				break;
			case 'warn':
				hooks.warn(message.message);
				return;
			case 'done':
				Object.assign(state, message.counters);
				state.done = true;
				completed &&= message.completed;
				break;
			case 'error':
				Object.assign(state, message.counters);
				completed = false;
				error ??= {message: message.message, code: message.code, worker: index + 1};
				stop();
				break;
		}
		const now = Date.now();
		if (now - lastEmit >= intervalMs || message.type !== 'progress') {
			lastEmit = now;
			hooks.progress(states);
		}
	};

	const url = workerUrl();
	try {
		if (url) {
			await Promise.all(jobs.map((job, index) => new Promise<void>(resolve => {
				let finished = false;
				const worker = new Worker(url, {workerData: {...job, shared} satisfies WorkerInput});
				worker.on('message', (message: WorkerMessage) => {
					finished ||= message.type === 'done' || message.type === 'error';
					handle(index, message);
				});
				worker.on('error', failure => {
					finished = true;
					handle(index, {type: 'error', message: failure.message, code: undefined, counters: states[index]!});
				});
				worker.on('exit', code => {
					if (!finished) {
						handle(index, {type: 'error', message: `worker ${index + 1} exited unexpectedly (code ${code})`, code: undefined, counters: states[index]!});
					}
					resolve();
				});
			})));
		} else {
			for (const [index, job] of jobs.entries()) {
				runRange({...job, shared}, message => handle(index, message));
				await new Promise(resolve => setImmediate(resolve));
			}
		}
	} finally {
		hooks.signal.removeEventListener('abort', onAbort);
	}
	hooks.progress(states);
	return {states, completed: completed && !hooks.signal.aborted, error};
}
