import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {emptyCounters, type WorkerState} from '../../source/engine/progress.js';
import {createPlainReporter, progressLine, withoutControls} from '../../source/ui/plain-reporter.js';
import {CONTROL, FakeStream} from './helpers/fake-stream.js';
import {start, summary} from './helpers/views.js';

function workers(bytes: number): WorkerState[] {
	return [{...emptyCounters(), id: 1, start: 0, end: start.size, bytesScanned: bytes, blocksChanged: 7, done: false}];
}

const plain = suite('createPlainReporter');

plain('should write a progress line at most every interval, then the summary, with no escape codes', () => {
	const stream = new FakeStream();
	let now = 0;
	const reporter = createPlainReporter({stream, interval: 10, summary: true, now: () => now});
	reporter.start(start);
	for (let t = 0; t <= 35; t += 0.1) {
		now = t;
		reporter.progress(workers(t * 100 * 1024 ** 2), t);
	}
	reporter.warn('native helper not built');
	reporter.finish(summary());
	const lines = stream.text.trimEnd().split('\n');
	assert.is(lines[0], 'syncing /var/lib/vz/images/100/vm-100-disk-0.raw -> root@pve2:/dev/pve/vm-100-disk-0: 8.0 GiB, 2 workers');
	const progress = lines.filter(line => line.startsWith('sync '));
	assert.is(progress.length, 3, 'at 10, 20 and 30 s');
	assert.match(progress[0]!, /^sync 12\.\d% 10[01]\d MiB\/8\.0 GiB 100 MiB\/s changed 7 workers 0\/1 done elapsed 0:10 ETA 1:1\d$/, progress[0]);
	assert.ok(lines.includes('rblocksync: warning: native helper not built'));
	assert.ok(lines.includes('/var/lib/vz/images/100/vm-100-disk-0.raw -> root@pve2:/dev/pve/vm-100-disk-0: in sync'));
	assert.not.match(stream.text, CONTROL);
});

plain('should print only the summary with interval 0, and nothing at all without summary or warnings', () => {
	const stream = new FakeStream();
	const reporter = createPlainReporter({stream, interval: 0, summary: true});
	reporter.start(start);
	reporter.progress(workers(1), 100);
	reporter.finish(summary());
	assert.match(stream.text, /^\/var\/lib\/vz.*: in sync\nsize /);

	const silent = new FakeStream();
	const quiet = createPlainReporter({stream: silent, interval: 0, summary: false, warnings: false});
	quiet.start(start);
	quiet.warn('x');
	quiet.finish(summary());
	assert.is(silent.text, '');
});

plain('should never pass control characters from paths or messages to the terminal', () => {
	const stream = new FakeStream();
	const reporter = createPlainReporter({stream, interval: 0, summary: true});
	reporter.warn('bad \u001B[2J name');
	reporter.finish(summary({src: 'a\u001B]0;title\u0007.img'}));
	assert.not.match(stream.text, CONTROL);
	assert.is(withoutControls('a\u001Bb\u0007c\td'), 'a?b?c\td');
});
plain.run();

const line = suite('progressLine');
line('should give an unknown ETA before anything was scanned', () => {
	assert.match(progressLine(start, workers(0), 0), /ETA --:--$/);
});
line.run();
