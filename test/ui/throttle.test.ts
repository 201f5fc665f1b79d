import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {createThrottle} from '../../source/ui/throttle.js';
import {fakeClock} from './helpers/fake-clock.js';

const throttle = suite('createThrottle');
throttle('should run the first request at once and coalesce the rest into one trailing run', () => {
	const clock = fakeClock();
	let runs = 0;
	const t = createThrottle(() => runs++, 100, clock);
	t.request();
	assert.is(runs, 1);
	for (let i = 0; i < 50; i++) {
		clock.advance(1);
		t.request();
	}
	assert.is(runs, 1);
	clock.advance(100);
	assert.is(runs, 2);
	assert.is(clock.pending(), 0);
});
throttle('should run at most 10 times a second under a 1 ms request stream', () => {
	const clock = fakeClock();
	let runs = 0;
	const t = createThrottle(() => runs++, 100, clock);
	for (let i = 0; i < 1000; i++) {
		t.request();
		clock.advance(1);
	}
	assert.ok(runs >= 9 && runs <= 11, `${runs} runs`);
});
throttle('should flush at once and drop the pending run; cancel drops it too', () => {
	const clock = fakeClock();
	let runs = 0;
	const t = createThrottle(() => runs++, 100, clock);
	t.request();
	t.request();
	t.flush();
	assert.is(runs, 2);
	assert.is(clock.pending(), 0);
	t.request();
	t.cancel();
	clock.advance(500);
	assert.is(runs, 2);
});
throttle.run();
