import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {asciiGlyphs, unicodeGlyphs} from '../../source/ui/glyphs.js';
import {fileRow, manyRowText, manyTotalRow, nameWidth, visibleFiles} from '../../source/ui/many-layout.js';

const MiB = 1024 * 1024;
const file = (path: string, fraction: number) => ({path, size: 64 * MiB, bytesScanned: fraction * 64 * MiB, rate: 100 * MiB});
const long = 'sub/dir/a-very-long-name-of-a-disk-image-that-will-not-fit-anywhere-narrow.raw';

const rows = suite('file rows');
rows('should show name, bar, percent, bytes and rate on a wide terminal', () => {
	const width = nameWidth(['disk-0.img', 'disk-10.img'], 120);
	assert.is(width, 'disk-10.img'.length);
	const cells = fileRow(file('disk-0.img', 0.5), width, 120, unicodeGlyphs);
	assert.is(cells.label, 'disk-0.img ');
	assert.is(cells.bar, '█'.repeat(20) + '░'.repeat(20));
	assert.is(cells.percent, ' 50.0%');
	assert.is(cells.bytes, '32.0 MiB / 64.0 MiB');
	assert.is(cells.rate, ' 100 MiB/s');
});
rows('should cut a long name in the middle, keeping both ends, and never exceed columns - 3', () => {
	for (let columns = 10; columns <= 200; columns++) {
		const width = nameWidth([long], columns);
		const text = manyRowText(fileRow(file(long, 0.3), width, columns, unicodeGlyphs));
		assert.ok([...text].length <= columns - 3, `${columns}: ${text}`);
		const total = manyTotalRow({filesDone: 3, filesTotal: 12, bytesDone: 10 * MiB, bytesTotal: 100 * MiB, rate: MiB, eta: 90}, width, columns, unicodeGlyphs);
		assert.ok([...manyRowText(total.cells)].length <= columns - 3, `${columns}: ${manyRowText(total.cells)}`);
		assert.ok([...total.line].length <= columns - 1, `${columns}: ${total.line}`);
	}
	const cells = fileRow(file(long, 0.3), nameWidth([long], 100), 100, unicodeGlyphs);
	assert.ok(cells.label.includes('…'), cells.label);
	assert.ok(cells.label.startsWith('sub/dir/'), cells.label);
	assert.ok(cells.label.trimEnd().endsWith('narrow.raw'), cells.label);
	assert.ok(cells.bar !== undefined && cells.rate !== undefined && cells.bytes !== undefined, manyRowText(cells));
});
rows('should drop the rate, then the bytes, then the bar as the terminal narrows', () => {
	for (let columns = 200; columns >= 12; columns--) {
		const cells = fileRow(file('disk-0.img', 0.5), 10, columns, asciiGlyphs);
		if (cells.rate !== undefined) {
			assert.ok(cells.bytes !== undefined, `${columns}: the rate goes first`);
		}
		if (cells.bar === undefined) {
			assert.is(cells.bytes, undefined, `${columns}: bytes before the bar`);
		}
		assert.is(cells.percent, ' 50.0%');
	}
	assert.is(fileRow(file('disk-0.img', 0.5), 10, 60, asciiGlyphs).rate, undefined);
	assert.ok(fileRow(file('disk-0.img', 0.5), 10, 60, asciiGlyphs).bytes !== undefined);
	assert.is(fileRow(file('disk-0.img', 0.5), 10, 20, asciiGlyphs).bar, undefined);
});
rows.run();

const total = suite('total row');
total('should count files done of all, bytes of all files and the ETA', () => {
	const {cells, line} = manyTotalRow({filesDone: 3, filesTotal: 12, bytesDone: 25 * MiB, bytesTotal: 100 * MiB, rate: MiB, eta: 75}, 10, 100, asciiGlyphs);
	assert.is(cells.label, 'total     ');
	assert.is(cells.percent, ' 25.0%');
	assert.is(cells.bytes, '25.0 MiB / 100 MiB');
	assert.is(line, '  3/12 files  ETA 1:15');
	assert.is(manyTotalRow({filesDone: 0, filesTotal: 1, bytesDone: 0, bytesTotal: 0, rate: 0, eta: Number.NaN}, 10, 100, asciiGlyphs).line, '  0/1 file  ETA --:--');
});
total('should move the bytes to the line under it when the row has no room', () => {
	const {cells, line} = manyTotalRow({filesDone: 1, filesTotal: 2, bytesDone: 0, bytesTotal: MiB, rate: 0, eta: Number.NaN}, 10, 40, asciiGlyphs);
	assert.is(cells.bytes, undefined);
	assert.ok(line.includes('0 B / 1.0 MiB'), line);
});
total.run();

const visible = suite('visibleFiles');
visible('should keep every file that fits and count the rest in one line', () => {
	assert.equal(visibleFiles([1, 2, 3], 3), {shown: [1, 2, 3], more: 0});
	assert.equal(visibleFiles([1, 2, 3, 4, 5], 3), {shown: [1, 2], more: 3});
});
visible.run();
