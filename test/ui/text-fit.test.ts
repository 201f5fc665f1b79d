import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {flowTokens, truncateEnd, truncateMiddle} from '../../source/ui/text-fit.js';

const middle = suite('truncateMiddle');
middle('should keep both ends of a long path within the width', () => {
	assert.is(truncateMiddle('/dev/pve/vm-100-disk-0', 12), '/dev/p…isk-0');
	assert.is(truncateMiddle('short', 12), 'short');
	assert.is(truncateMiddle('abc', 1), '…');
	assert.is(truncateMiddle('abc', 0), '');
});
middle('should never exceed the width', () => {
	for (let width = 0; width < 30; width++) {
		assert.ok(truncateMiddle('x'.repeat(25), width).length <= width);
	}
});
middle.run();

const end = suite('truncateEnd');
end('should cut with an ellipsis only when needed', () => {
	assert.is(truncateEnd('warning: something long', 10), 'warning: …');
	assert.is(truncateEnd('fits', 4), 'fits');
	assert.is(truncateEnd('x', 0), '');
});
end.run();

const flow = suite('flowTokens');
flow('should put tokens on as few lines as fit', () => {
	assert.equal(flowTokens(['aaa', 'bbb', 'ccc'], 8), ['aaa  bbb', 'ccc']);
	assert.equal(flowTokens(['aaa', 'bbb', 'ccc'], 80), ['aaa  bbb  ccc']);
	assert.equal(flowTokens(['a,', 'b'], 4, 1), ['a, b']);
	assert.equal(flowTokens([], 10), []);
});
flow('should cut a token wider than the line', () => {
	assert.equal(flowTokens(['abcdefghij', 'k'], 5), ['abcd…', 'k']);
});
flow.run();
