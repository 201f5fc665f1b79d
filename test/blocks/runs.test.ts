import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {RunCoalescer} from '../../source/blocks/runs.js';

const runs = suite('RunCoalescer');

runs('should merge touching runs and emit each finished run once', () => {
	const emitted: Array<[number, number]> = [];
	const coalescer = new RunCoalescer((start, length) => emitted.push([start, length]));
	coalescer.add(0, 10);
	coalescer.add(10, 20);
	coalescer.add(30, 40);
	assert.equal(emitted, [[0, 20]]);
	coalescer.flush();
	coalescer.flush();
	assert.equal(emitted, [[0, 20], [30, 10]]);
});

runs('should emit nothing when nothing was added', () => {
	const emitted: number[] = [];
	new RunCoalescer(start => emitted.push(start)).flush();
	assert.equal(emitted, []);
});

runs.run();
