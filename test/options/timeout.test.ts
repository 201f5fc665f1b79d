import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {resolveOptions} from '../../source/options.js';
import {UsageError} from '../../source/errors.js';
import {DEFAULT_BOUNDS} from '../../source/remote/bounds.js';

const timeout = suite('--timeout');

function message(flags: Parameters<typeof resolveOptions>[1]): string {
	try {
		resolveOptions(['a.img', 'pve:b.img'], flags, 4);
	} catch (error) {
		assert.instance(error, UsageError);
		return (error as Error).message;
	}
	throw new Error('expected a UsageError');
}

timeout('should bound connecting by 30 s and the agent, its replies and a stalled session by 120 s without it', () => {
	assert.equal(resolveOptions(['a.img', 'pve:b.img'], {}, 4).bounds, {connectMs: 30_000, replyMs: 120_000, stallMs: 120_000});
	assert.equal(DEFAULT_BOUNDS, {connectMs: 30_000, replyMs: 120_000, stallMs: 120_000});
});

timeout('should set every bound to its seconds', () => {
	assert.equal(resolveOptions(['a.img', 'pve:b.img'], {timeout: '2'}, 4).bounds, {connectMs: 2000, replyMs: 2000, stallMs: 2000});
	assert.is(resolveOptions(['a.img', 'pve:b.img'], {timeout: '86400'}, 4).bounds.stallMs, 86_400_000);
});

timeout('should refuse a value that is not a whole number of seconds from 1 to 86400', () => {
	for (const value of ['0', '-1', '1.5', '2s', '', '86401', 'soon']) {
		assert.is(message({timeout: value}), `--timeout must be a whole number of seconds from 1 to 86400; got ${value}`);
	}
});

timeout.run();
