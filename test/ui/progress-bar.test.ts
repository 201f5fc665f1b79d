import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {asciiGlyphs, unicodeGlyphs} from '../../source/ui/glyphs.js';
import {renderBar} from '../../source/ui/progress-bar.js';

const bar = suite('renderBar');
bar('should always be exactly width cells', () => {
	for (let width = 0; width <= 50; width++) {
		for (const fraction of [0, 0.01, 0.33, 0.5, 0.999, 1, 1.5, -1, Number.NaN]) {
			assert.is([...renderBar(fraction, width, unicodeGlyphs)].length, width, `unicode ${fraction} ${width}`);
			assert.is(renderBar(fraction, width, asciiGlyphs).length, width, `ascii ${fraction} ${width}`);
		}
	}
});
bar('should fill whole cells and one partial eighth', () => {
	assert.is(renderBar(0, 4, unicodeGlyphs), '░░░░');
	assert.is(renderBar(1, 4, unicodeGlyphs), '████');
	assert.is(renderBar(0.5, 4, unicodeGlyphs), '██░░');
	assert.is(renderBar(0.5 + 1 / 8, 4, unicodeGlyphs), '██▌░');
	assert.is(renderBar(0.5 + 1 / 32, 4, unicodeGlyphs), '██▏░');
});
bar('should use # and - in ASCII', () => {
	assert.is(renderBar(0.5, 10, asciiGlyphs), '#####-----');
	assert.is(renderBar(0.55, 10, asciiGlyphs), '#####-----');
});
bar.run();
