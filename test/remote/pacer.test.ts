// --bwlimit's pure parts: the token bucket over a given clock, the slice and burst sizes, RATE as rsync reads it.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {burstBytes, sliceBytes, TokenBucket} from '../../source/remote/pacer.js';
import {parseRate} from '../../source/options.js';

const bucket = suite('TokenBucket');

bucket('should let through at most the burst, then the rate', () => {
	const b = new TokenBucket(1000, 100, 0);
	assert.ok(b.take(100, 0));
	assert.not.ok(b.take(1, 0));
	assert.is(b.waitMs(50, 0), 50);
	assert.not.ok(b.take(50, 49));
	assert.ok(b.take(50, 50));
	// Idle for a long time: never more than the burst saved up.
	assert.ok(b.take(100, 10_000));
	assert.not.ok(b.take(1, 10_000));
});

bucket('should hand out exactly rate x time over a long run of slices', () => {
	const b = new TokenBucket(2 * 1024 * 1024, burstBytes(2 * 1024 * 1024), 0);
	const slice = sliceBytes(2 * 1024 * 1024);
	let sent = 0;
	for (let now = 0; now <= 10_000; now += 1) {
		while (b.take(slice, now)) {
			sent += slice;
		}
	}
	const expected = 2 * 1024 * 1024 * 10 + burstBytes(2 * 1024 * 1024);
	assert.ok(Math.abs(sent - expected) <= slice, `sent ${sent}, expected ${expected}`);
});

bucket('should slice 20 ms of the rate and keep 50 ms of burst', () => {
	assert.is(sliceBytes(500 * 1024), 10_240);
	assert.is(sliceBytes(1024), 4096);
	assert.is(sliceBytes(1024 ** 3), 256 * 1024);
	assert.is(burstBytes(20 * 1024 * 1024), 1024 * 1024);
	assert.is(burstBytes(1024), 4096);
});

const rate = suite('parseRate');

rate('should read RATE as rsync does', () => {
	assert.is(parseRate('500K'), 500 * 1024);
	assert.is(parseRate('20M'), 20 * 1024 * 1024);
	assert.is(parseRate('1G'), 1024 ** 3);
	assert.is(parseRate('1.5m'), 1.5 * 1024 * 1024);
	assert.is(parseRate('100'), 100 * 1024);
	assert.is(parseRate('2MB'), 2_000_000);
	assert.is(parseRate('4096b'), 4096);
	assert.is(parseRate('0'), 0);
	assert.ok(Number.isNaN(parseRate('fast')));
	assert.ok(Number.isNaN(parseRate('-1M')));
	assert.ok(Number.isNaN(parseRate('1T')));
});

bucket.run();
rate.run();
