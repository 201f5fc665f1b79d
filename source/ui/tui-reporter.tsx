// The ink reporter: owns one ink instance on the given terminal stream, redraws at most every 100 ms.
// Imported only through createReporter's dynamic import, so runs without the TUI never load ink or react.
import {PassThrough} from 'node:stream';
import React from 'react';
import {type Instance, render} from 'ink';
import {emptyCounters, type Summary, type SyncStart, type WorkerState} from '../engine/progress.js';
import {App} from './App.js';
import {glyphsFor, type Glyphs} from './glyphs.js';
import type {ClosableReporter} from './reporter-types.js';
import {type Clock, createThrottle, systemClock} from './throttle.js';
import {createProgressTracker, type ProgressSnapshot, type TuiView} from './tui-model.js';
import {FrameGate, type TerminalStream} from './frame-gate.js';

export type {TerminalStream} from './frame-gate.js';

export type TuiReporterOptions = {
	stream: TerminalStream;
	/** Aborted on SIGINT/SIGTERM: the frame then says the workers are stopping. */
	signal?: AbortSignal;
	clock?: Clock;
	glyphs?: Glyphs;
	/** Minimum milliseconds between redraws and between writes to the terminal. */
	intervalMs?: number;
};

/** Clear the screen and home the cursor: after a terminal got narrower, old wrapped lines can't be erased line by line. */
const CLEAR_SCREEN = '\u001B[2J\u001B[H';

/** The TUI reporter: mounts ink on `stream` at start(), redraws on progress, leaves the final report in <Static> at finish() or close(). */
export function createTuiReporter(options: TuiReporterOptions): ClosableReporter {
	const {stream, signal} = options;
	const clock = options.clock ?? systemClock;
	const glyphs = options.glyphs ?? glyphsFor();
	let tracker = createProgressTracker();
	let instance: Instance | undefined;
	let start: SyncStart | undefined;
	let snapshot: ProgressSnapshot = {workers: [], total: emptyCounters(), elapsed: 0, rate: 0, eta: Number.NaN};
	const warnings: string[] = [];
	let stopping = signal?.aborted ?? false;
	let ended = false;
	let columns = stream.columns || 80;

	const view = (end?: {summary?: Summary; error?: string}): TuiView => ({
		start: start!,
		...snapshot,
		warnings: [...warnings],
		stopping,
		columns: stream.columns || 80,
		rows: stream.rows || 24,
		...end,
	});
	const draw = (): void => {
		instance?.rerender(<App view={view()} glyphs={glyphs}/>);
	};
	const interval = options.intervalMs ?? 100;
	const throttle = createThrottle(draw, interval, clock);
	// ink writes through the gate: spinner ticks and progress redraws reach the terminal at most once per interval.
	const gate = new FrameGate(stream, interval, clock);

	const onResize = (): void => {
		const now = stream.columns || 80;
		if (now < columns) {
			gate.write(CLEAR_SCREEN);
		}
		columns = now;
		throttle.flush();
	};
	// process.exit() (a second Ctrl-C) skips finish(): draw the last frame and pass what the gate holds.
	const onExit = (): void => {
		instance?.unmount();
		gate.flushNow();
	};
	const onAbort = (): void => {
		stopping = true;
		throttle.flush();
	};

	const end = async (result: {summary?: Summary; error?: string}): Promise<void> => {
		if (ended) {
			return;
		}
		ended = true;
		throttle.cancel();
		gate.removeListener('resize', onResize);
		signal?.removeEventListener('abort', onAbort);
		process.removeListener('exit', onExit);
		if (instance && start) {
			// The final view goes to <Static>: written once, after the live frame is erased.
			instance.rerender(<App view={view(result)} glyphs={glyphs}/>);
			instance.unmount();
			instance = undefined;
		} else {
			// Never drawn (the run failed before it started): the warnings still reach the user.
			for (const warning of warnings) {
				stream.write(`rblocksync: warning: ${warning}\n`);
			}
		}
		gate.close();
		await new Promise<void>(resolve => {
			stream.write('', () => resolve());
		});
	};

	return {
		start(info) {
			if (ended) {
				return;
			}
			if (start) {
				// A second phase (--verify) keeps the same screen: new header, counters from zero.
				start = info;
				tracker = createProgressTracker(undefined, snapshot.elapsed);
				snapshot = {...snapshot, workers: [], total: emptyCounters(), rate: 0, eta: Number.NaN};
				throttle.request();
				return;
			}
			start = info;
			instance = render(<App view={view()} glyphs={glyphs}/>, {
				stdout: gate as unknown as NodeJS.WriteStream,
				stderr: gate as unknown as NodeJS.WriteStream,
				// A stream that is not the terminal: ink never puts the TTY in raw mode, so Ctrl-C stays SIGINT.
				stdin: new PassThrough() as unknown as NodeJS.ReadStream,
				exitOnCtrlC: false,
				patchConsole: false,
			});
			gate.on('resize', onResize);
			signal?.addEventListener('abort', onAbort);
			process.once('exit', onExit);
		},
		progress(workers: readonly WorkerState[], elapsed: number) {
			if (!start || ended) {
				return;
			}
			snapshot = tracker.update(start.size, workers, elapsed);
			throttle.request();
		},
		warn(message) {
			warnings.push(message);
			throttle.request();
		},
		finish(summary) {
			return end({summary});
		},
		close(error) {
			return end({error: error === undefined ? undefined : error instanceof Error ? error.message : String(error)});
		},
	};
}
