import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {setTimeout as sleep} from 'node:timers/promises';
import {emptyCounters, type WorkerState} from '../../source/engine/progress.js';
import {unicodeGlyphs} from '../../source/ui/glyphs.js';
import {advanceUntil, fakeClock} from './helpers/fake-clock.js';
import {FakeStream} from './helpers/fake-stream.js';
import {plain, start, summary} from './helpers/views.js';

// ink decides at import time whether it runs in CI (then it draws only the last frame); test the terminal behaviour.
for (const key of Object.keys(process.env)) {
	if (key === 'CI' || key === 'CONTINUOUS_INTEGRATION' || key.startsWith('CI_')) {
		delete process.env[key];
	}
}
const tuiModule = await import('../../source/ui/tui-reporter.js');

// Every reporter a test creates is closed afterwards, so a failed assertion cannot leave spinners running.
const created: Array<{close(): Promise<void>}> = [];
const createTuiReporter: typeof tuiModule.createTuiReporter = options => {
	const tui = tuiModule.createTuiReporter(options);
	created.push(tui);
	return tui;
};

const HIDE = '\u001B[?25l';
const SHOW = '\u001B[?25h';

function workers(fraction: number, done = false): WorkerState[] {
	const span = start.size / 2;
	return [1, 2].map(id => ({...emptyCounters(), id, start: (id - 1) * span, end: id * span, bytesScanned: Math.round(span * fraction), done}));
}

const reporter = suite('createTuiReporter');
reporter.after.each(async () => {
	await Promise.all(created.splice(0).map(tui => tui.close()));
});

reporter('should draw live worker rows, then leave the summary on screen and the cursor visible', async () => {
	const stream = new FakeStream({isTTY: true});
	const clock = fakeClock();
	const tui = createTuiReporter({stream, glyphs: unicodeGlyphs, clock});
	tui.start(start);
	tui.progress(workers(0.5), 1);
	const rows = (): boolean => /- worker 1 0-4G .* 50\.0%/.test(plain(stream.text)) && /- worker 2 4G-8G .* 50\.0%/.test(plain(stream.text));
	await advanceUntil(clock, rows, 'both worker rows at 50%');
	tui.progress(workers(1, true), 2);
	await tui.finish(summary());
	const text = plain(stream.text);
	assert.match(text, /✓ worker 2 /);
	assert.match(text, /✓ in sync\n/);
	assert.match(text, /bandwidth  wire 224 KiB\/s, effective 256 MiB\/s\n/);
	assert.ok(stream.text.lastIndexOf(SHOW) > stream.text.lastIndexOf(HIDE), 'cursor shown after the last hide');
	await tui.close();
});

reporter('should write to the terminal at most ~10 times a second with four spinners and progress every 5 ms', async () => {
	const stream = new FakeStream({isTTY: true});
	const clock = fakeClock();
	const tui = createTuiReporter({stream, glyphs: unicodeGlyphs, clock});
	const span = start.size / 4;
	const four = (fraction: number): WorkerState[] => [1, 2, 3, 4].map(id => ({...emptyCounters(), id, start: (id - 1) * span, end: id * span, bytesScanned: Math.round(span * fraction), done: false}));
	tui.start({...start, workers: 4});
	// 1.5 s on the reporter's clock, in 5 ms steps. Each step also waits 5 ms of real time, so that the spinners
	// (ink-spinner's own timers) and ink's render throttle, which run on real time only, keep producing frames.
	for (let t = 0; t < 1500; t += 5) {
		tui.progress(four(t / 3000), t / 1000);
		clock.advance(5);
		await sleep(5);
	}
	const writes = stream.chunks.length;
	await tui.close();
	assert.ok(writes <= 16, `${writes} writes in 1.5 s: at most one at once and one per 100 ms after`);
	assert.ok(writes >= 8, `${writes} writes in 1.5 s: the screen must stay live`);
	assert.match(plain(stream.text), /- worker 4 /);
});

reporter('should say it is stopping as soon as the run is aborted', async () => {
	const stream = new FakeStream({isTTY: true});
	const controller = new AbortController();
	const clock = fakeClock();
	const tui = createTuiReporter({stream, glyphs: unicodeGlyphs, signal: controller.signal, clock});
	tui.start(start);
	tui.progress(workers(0.3), 1);
	controller.abort();
	await advanceUntil(clock, () => /interrupted: stopping the workers and flushing DST…/.test(plain(stream.text)), 'the stopping line');
	await tui.finish(summary({ok: false, error: 'interrupted; DST may be partially updated'}));
	assert.match(plain(stream.text), /✗ worker 1 .*\n[^]*✗ interrupted; DST may be partially updated\n/);
	assert.ok(stream.text.lastIndexOf(SHOW) > stream.text.lastIndexOf(HIDE));
});

reporter('should clear the screen when the terminal gets narrower, not when it gets wider', async () => {
	const stream = new FakeStream({isTTY: true, columns: 100});
	const clock = fakeClock();
	const tui = createTuiReporter({stream, glyphs: unicodeGlyphs, clock});
	tui.start(start);
	tui.progress(workers(0.3), 1);
	await advanceUntil(clock, () => /worker 2/.test(plain(stream.text)), 'the first frame with its rows');
	const wide = stream.chunks.length;
	stream.resize(120);
	await advanceUntil(clock, () => stream.chunks.length > wide, 'a frame after the terminal got wider');
	assert.not.ok(stream.text.includes('\u001B[2J'));
	stream.resize(50);
	await advanceUntil(clock, () => stream.text.includes('\u001B[2J'), 'the clear after the terminal got narrower');
	// The last frame drawn: what follows the last eraser (ESC[G) after the clear.
	const last = (): string => plain(stream.text.slice(stream.text.lastIndexOf('\u001B[2J')).split('\u001B[G').at(-1));
	await advanceUntil(clock, () => /worker 1/.test(last()), 'a frame after the clear');
	const frame = last();
	await tui.close();
	for (const line of frame.split('\n')) {
		assert.ok([...line].length <= 49, line);
	}
});

reporter('should show the error of a run that failed after start, and print warnings as text when it never started', async () => {
	const stream = new FakeStream({isTTY: true});
	const tui = createTuiReporter({stream, glyphs: unicodeGlyphs});
	tui.start(start);
	await tui.close(new Error('read /a.img: EIO (input/output error); DST may be partially updated'));
	assert.match(plain(stream.text), /✗ read \/a\.img: EIO \(input\/output error\); DST may be partially updated\n/);

	const early = new FakeStream({isTTY: true});
	const never = createTuiReporter({stream: early, glyphs: unicodeGlyphs});
	never.warn('native helper not built');
	await never.close(new Error('SRC /a.img: ENOENT'));
	assert.is(early.text, 'rblocksync: warning: native helper not built\n');
});

reporter.run();
