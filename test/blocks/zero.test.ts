import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {isZero, zeroPrefixUnits} from '../../source/blocks/zero.js';

const zero = suite('isZero');

zero('should find a single non-zero byte at every position of every length up to 600', () => {
	const buffer = Buffer.alloc(700);
	for (let length = 0; length <= 600; length++) {
		assert.ok(isZero(buffer, 50, 50 + length));
		for (const at of [0, Math.floor(length / 2), length - 1]) {
			if (length === 0) {
				continue;
			}
			buffer[50 + at] = 1;
			assert.not.ok(isZero(buffer, 50, 50 + length), `length ${length} at ${at}`);
			buffer[50 + at] = 0;
		}
	}
});

zero('should look only inside [start, end)', () => {
	const buffer = Buffer.alloc(100);
	buffer[9] = 1;
	buffer[20] = 1;
	assert.ok(isZero(buffer, 10, 20));
});

zero('should handle buffers larger than the shared zero buffer', () => {
	const buffer = Buffer.alloc(3 * 1024 * 1024 + 5);
	assert.ok(isZero(buffer, 0, buffer.length));
	buffer[buffer.length - 1] = 7;
	assert.not.ok(isZero(buffer, 0, buffer.length));
});

zero.run();

const prefix = suite('zeroPrefixUnits');

prefix('should count whole zero units before the first non-zero byte', () => {
	const buffer = Buffer.alloc(4096 * 4);
	assert.is(zeroPrefixUnits(buffer, 0, buffer.length, 4096), 4);
	buffer[4096 * 2 + 17] = 1;
	assert.is(zeroPrefixUnits(buffer, 0, buffer.length, 4096), 2);
	buffer[0] = 1;
	assert.is(zeroPrefixUnits(buffer, 0, buffer.length, 4096), 0);
});

prefix.run();
