// The ink reporter of a run over many files. Imported only through main.ts's dynamic import, when the TUI is chosen.
import {PassThrough} from 'node:stream';
import React from 'react';
import {type Instance, render} from 'ink';
import type {Reporter} from '../engine/progress.js';
import {FrameGate, type TerminalStream} from './frame-gate.js';
import {glyphsFor, type Glyphs} from './glyphs.js';
import {type ManyLine, ManyApp, type ManyView} from './ManyApp.js';
import {type FileView} from './many-layout.js';
import {fileLine, type ManyReporter, summaryJson, totalLine} from './many-reporter.js';
import {withoutControls} from './plain-reporter.js';
import {createRateMeter, type RateMeter} from './rate-meter.js';
import {type Clock, createThrottle, systemClock} from './throttle.js';

export type ManyTuiOptions = {
	stream: TerminalStream;
	/** Where the --json summary goes. */
	stdout: NodeJS.WritableStream;
	json: boolean;
	signal?: AbortSignal;
	clock?: Clock;
	glyphs?: Glyphs;
	intervalMs?: number;
	/** --watch: one pass after another; each pass's closing line goes above, then this row until the next (close() ends it). */
	watching?: string;
};

type Live = {path: string; size: number; bytesScanned: number; meter: RateMeter; rate: number};

/** One row per file under way, finished files in <Static>; the closing total line (and --json) as the plain reporter writes them. */
export function createManyTuiReporter(options: ManyTuiOptions): ManyReporter {
	const {stream, signal} = options;
	const clock = options.clock ?? systemClock;
	const glyphs = options.glyphs ?? glyphsFor();
	const interval = options.intervalMs ?? 100;
	const gate = new FrameGate(stream, interval, clock);
	const lines: ManyLine[] = [];
	const live = new Map<string, Live>();
	let totalMeter = createRateMeter();
	let filesTotal = 0;
	let bytesTotal = 0;
	let filesDone = 0;
	let bytesDone = 0;
	let totalRate = 0;
	let dryRun = false;
	let stopping = signal?.aborted ?? false;
	let finished = false;
	let ended = false;
	/** --watch: between passes (none under way). */
	let idle = false;
	const seconds = (): number => clock.now() / 1000;

	const view = (): ManyView => {
		const files: FileView[] = [...live.values()].map(({path, size, bytesScanned, rate}) => ({path, size, bytesScanned, rate}));
		const done = bytesDone + files.reduce((sum, file) => sum + file.bytesScanned, 0);
		return {
			lines: [...lines], files, columns: stream.columns || 80, rows: stream.rows || 24, stopping, finished,
			...(options.watching !== undefined && idle ? {idle: options.watching} : {}),
			total: {filesDone, filesTotal: Math.max(filesTotal, filesDone + live.size), bytesDone: done, bytesTotal: Math.max(bytesTotal, done), rate: totalRate,
				eta: totalRate > 0 ? Math.max(0, bytesTotal - done) / totalRate : Number.NaN},
		};
	};
	let instance: Instance | undefined = render(<ManyApp view={view()} glyphs={glyphs}/>, {
		stdout: gate as unknown as NodeJS.WriteStream,
		stderr: gate as unknown as NodeJS.WriteStream,
		// Not the terminal: ink never puts the TTY in raw mode, so Ctrl-C stays SIGINT.
		stdin: new PassThrough() as unknown as NodeJS.ReadStream,
		exitOnCtrlC: false,
		patchConsole: false,
	});
	const draw = (): void => {
		const done = bytesDone + [...live.values()].reduce((sum, file) => sum + file.bytesScanned, 0);
		totalRate = totalMeter.sample(seconds(), done);
		instance?.rerender(<ManyApp view={view()} glyphs={glyphs}/>);
	};
	const throttle = createThrottle(draw, interval, clock);
	const onResize = (): void => throttle.flush();
	const onAbort = (): void => {
		stopping = true;
		throttle.flush();
	};
	const onExit = (): void => {
		instance?.unmount();
		gate.flushNow();
	};
	gate.on('resize', onResize);
	signal?.addEventListener('abort', onAbort);
	process.once('exit', onExit);
	const push = (text: string, kind: ManyLine['kind']): void => {
		lines.push({key: lines.length, text: withoutControls(text), kind});
		throttle.request();
	};
	const unmount = async (): Promise<void> => {
		if (!instance) {
			return;
		}
		throttle.cancel();
		finished = true;
		instance.rerender(<ManyApp view={view()} glyphs={glyphs}/>);
		instance.unmount();
		instance = undefined;
		gate.removeListener('resize', onResize);
		signal?.removeEventListener('abort', onAbort);
		process.removeListener('exit', onExit);
		gate.close();
		await new Promise<void>(resolve => {
			stream.write('', () => resolve());
		});
	};

	return {
		planned(files, bytes) {
			idle = false;
			filesTotal += files;
			bytesTotal += bytes;
			throttle.request();
		},
		file(path): Reporter {
			const entry: Live = {path, size: 0, bytesScanned: 0, meter: createRateMeter(), rate: 0};
			return {
				start(info) {
					dryRun = info.dryRun;
					if (info.phase === 'sync') {
						entry.size = info.size;
						entry.bytesScanned = 0;
						live.set(path, entry);
						throttle.request();
					}
				},
				progress(workers) {
					entry.bytesScanned = Math.min(entry.size, workers.reduce((sum, worker) => sum + worker.bytesScanned, 0));
					entry.rate = entry.meter.sample(seconds(), entry.bytesScanned);
					throttle.request();
				},
				warn(message) {
					push(`rblocksync: warning: ${message}`, 'warning');
				},
				finish() {},
			};
		},
		fileDone(result) {
			live.delete(result.path);
			filesDone++;
			bytesDone += result.size;
			push(fileLine(result, dryRun), result.ok ? 'ok' : 'failed');
		},
		warn(message) {
			push(`rblocksync: warning: ${message}`, 'warning');
		},
		note(message) {
			push(message, 'note');
		},
		async finish(summary) {
			live.clear();
			if (options.watching !== undefined) {
				// A pass is over: its closing line goes above, the counters start again for the next one.
				push(totalLine(summary), summary.ok ? 'note' : 'failed');
				filesTotal = bytesTotal = filesDone = bytesDone = totalRate = 0;
				totalMeter = createRateMeter();
				idle = true;
				throttle.flush();
				if (options.json) {
					options.stdout.write(summaryJson(summary) + '\n');
				}
				return;
			}
			await unmount();
			stream.write(withoutControls(totalLine(summary)) + '\n');
			if (options.json) {
				options.stdout.write(summaryJson(summary) + '\n');
			}
		},
		async close() {
			if (ended) {
				return;
			}
			ended = true;
			live.clear();
			await unmount();
		},
	};
}
