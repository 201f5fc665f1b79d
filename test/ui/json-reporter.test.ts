import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {emptyCounters, type WorkerState} from '../../source/engine/progress.js';
import {createJsonProgressReporter, createJsonSummaryReporter} from '../../source/ui/json-reporter.js';
import {FakeStream} from './helpers/fake-stream.js';
import {start, summary} from './helpers/views.js';

function workers(bytes: number, done = false): WorkerState[] {
	return [1, 2].map(id => ({...emptyCounters(), id, start: 0, end: 100, bytesScanned: bytes, blocksChanged: id, done}));
}

const events = suite('createJsonProgressReporter');
events('should write one parseable JSON object per line: start, worker and total batches, warning, finish', () => {
	const stream = new FakeStream();
	let now = 0;
	const reporter = createJsonProgressReporter(stream, 1, () => now);
	reporter.start(start);
	for (let t = 0; t < 2.5; t += 0.1) {
		now = t;
		reporter.progress(workers(10), t);
	}
	reporter.warn('native helper not built');
	reporter.finish(summary());
	const lines = stream.text.trimEnd().split('\n').map(line => JSON.parse(line) as Record<string, unknown>);
	assert.is(lines[0]!['event'], 'start');
	assert.is(lines[0]!['size'], start.size);
	const kinds = lines.map(l => l['event']);
	assert.is(kinds.filter(k => k === 'total').length, 3, 'batches at 0, 1 and 2 s');
	assert.is(kinds.filter(k => k === 'worker').length, 6);
	const total = lines.find(l => l['event'] === 'total')!;
	assert.is(total['blocksChanged'], 3);
	assert.is(total['bytesScanned'], 20);
	assert.is(total['size'], start.size);
	const worker = lines.find(l => l['event'] === 'worker')!;
	assert.equal([worker['id'], worker['start'], worker['end'], worker['done']], [1, 0, 100, false]);
	assert.equal(lines.at(-2), {event: 'warning', message: 'native helper not built'});
	assert.is(lines.at(-1)!['event'], 'finish');
	assert.is(lines.at(-1)!['ok'], true);
});
events('should always send the batch in which the last worker finishes, once', () => {
	const stream = new FakeStream();
	const reporter = createJsonProgressReporter(stream, 1, () => 0);
	reporter.progress(workers(10), 0);
	reporter.progress(workers(100, true), 0.1);
	reporter.progress(workers(100, true), 0.2);
	const totals = stream.text.trimEnd().split('\n').map(l => JSON.parse(l) as {event: string; done?: boolean}).filter(e => e.event === 'total');
	assert.equal(totals.map(t => t.done), [false, true]);
});
events.run();

const summaryJson = suite('createJsonSummaryReporter');
summaryJson('should print the summary as one JSON object and nothing else', () => {
	const stream = new FakeStream();
	const reporter = createJsonSummaryReporter(stream);
	reporter.start(start);
	reporter.progress(workers(1), 1);
	reporter.warn('x');
	reporter.finish(summary());
	assert.is(stream.chunks.length, 1);
	assert.equal(JSON.parse(stream.text), summary());
});
summaryJson.run();
