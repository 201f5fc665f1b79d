import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {emptyCounters, type WorkerState} from '../../source/engine/progress.js';
import {createRateMeter} from '../../source/ui/rate-meter.js';
import {createProgressTracker, visibleWorkers} from '../../source/ui/tui-model.js';
import {worker} from './helpers/views.js';

const meter = suite('createRateMeter');
meter('should measure the recent rate over the window, not the average', () => {
	const m = createRateMeter(2);
	assert.is(m.sample(0, 0), 0);
	m.sample(1, 100);
	assert.is(m.sample(2, 200), 100);
	// The worker slows down: 10 bytes a second from t=2.
	m.sample(3, 210);
	m.sample(4, 220);
	assert.is(m.sample(5, 230), 10);
});
meter.run();

const tracker = suite('createProgressTracker');
tracker('should sum workers, give the average rate and an ETA, and freeze a done worker at its average', () => {
	const t = createProgressTracker();
	const w = (bytes: number, done = false): WorkerState => ({...emptyCounters(), id: 1, start: 0, end: 1000, bytesScanned: bytes, done});
	t.update(1000, [w(0)], 0);
	let snap = t.update(1000, [w(250)], 1);
	assert.is(snap.total.bytesScanned, 250);
	assert.is(snap.rate, 250);
	assert.is(snap.eta, 3);
	assert.is(snap.workers[0]!.rate, 250);
	snap = t.update(1000, [w(1000, true)], 2);
	assert.is(snap.workers[0]!.rate, 500);
	snap = t.update(1000, [w(1000, true)], 10);
	assert.is(snap.workers[0]!.rate, 500, 'a done worker keeps its average');
});
tracker('should measure a later phase (verify) from its own start', () => {
	const t = createProgressTracker(3, 10);
	const w = (bytes: number, done = false): WorkerState => ({...emptyCounters(), id: 1, start: 0, end: 1000, bytesScanned: bytes, done});
	t.update(1000, [w(0)], 10);
	let snap = t.update(1000, [w(500)], 12);
	assert.is(snap.rate, 250);
	assert.is(snap.eta, 2);
	assert.is(snap.elapsed, 12, 'elapsed stays the time since the run began');
	snap = t.update(1000, [w(1000, true)], 14);
	assert.is(snap.workers[0]!.rate, 250);
});
tracker('should leave the ETA unknown before anything is scanned', () => {
	const snap = createProgressTracker().update(1000, [], 0);
	assert.ok(Number.isNaN(snap.eta));
});
tracker.run();

const visible = suite('visibleWorkers');
visible('should show every worker when they fit', () => {
	const workers = [worker(1, 0.5), worker(2, 1)];
	assert.equal(visibleWorkers(workers, 2).shown.map(w => w.id), [1, 2]);
});
visible('should keep running workers first and count the hidden ones', () => {
	const workers = [1, 2, 3, 4, 5, 6].map(id => worker(id, id % 2 === 0 ? 1 : 0.5));
	const result = visibleWorkers(workers, 4);
	assert.equal(result.shown.map(w => w.id), [1, 3, 5]);
	assert.equal(result.hidden, {done: 3, running: 0});
});
visible.run();
