import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {DEFAULT_RETRIES, MAX_RETRIES, resolveOptions} from '../../source/options.js';

const retries = suite('--retries');

function message(flags: Parameters<typeof resolveOptions>[1]): string {
	try {
		resolveOptions(['a.img', 'pve:b.img'], flags, 4);
	} catch (error) {
		return error instanceof Error ? error.message : String(error);
	}
	return '';
}

retries('should reconnect 3 times by default, N times with --retries N, never with 0', () => {
	assert.is(DEFAULT_RETRIES, 3);
	assert.is(resolveOptions(['a.img', 'pve:b.img'], {}, 4).retries, 3);
	assert.is(resolveOptions(['a.img', 'pve:b.img'], {retries: '0'}, 4).retries, 0);
	assert.is(resolveOptions(['a.img', 'pve:b.img'], {retries: String(MAX_RETRIES)}, 4).retries, 100);
});

retries('should refuse a value that is not a whole number from 0 to 100', () => {
	for (const value of ['-1', '101', '1.5', 'x', '']) {
		assert.is(message({retries: value}), `--retries must be a whole number from 0 to 100; got ${value}`);
	}
});

retries.run();
