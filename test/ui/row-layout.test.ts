import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {asciiGlyphs, unicodeGlyphs} from '../../source/ui/glyphs.js';
import {BAR_MAX, fitRow, headerLines, rowText, rowWidths, totalRows, workerRow} from '../../source/ui/row-layout.js';
import {start, view, worker} from './helpers/views.js';

const widths = rowWidths([worker(1, 0.5), worker(2, 0.25)], 51);

const fit = suite('fitRow');
fit('should show every cell and a full-width bar on a wide terminal', () => {
	const cells = workerRow(worker(1, 0.5), widths, 120, unicodeGlyphs);
	assert.is(cells.label, 'worker 1');
	assert.is(cells.range, '0-4G ');
	assert.is(cells.bar, '█'.repeat(20) + '░'.repeat(20));
	assert.is(cells.percent, ' 50.0%');
	assert.is(cells.rate, ' 300 MiB/s');
	assert.is(cells.changed, '17 changed');
});
fit('should never exceed columns - 2 (the mark and its space take two)', () => {
	for (let columns = 10; columns <= 200; columns++) {
		const text = rowText(workerRow(worker(2, 0.3), widths, columns, unicodeGlyphs));
		assert.ok([...text].length <= columns - 3, `${columns}: ${text}`);
	}
});
fit('should drop the range, then the changed count, then the rate as the terminal narrows', () => {
	const at = (columns: number) => workerRow(worker(1, 0.5), widths, columns, asciiGlyphs);
	for (let columns = 200; columns >= 12; columns--) {
		const cells = at(columns);
		if (cells.changed === undefined) {
			assert.is(cells.range, undefined, `${columns}: range before changed`);
		}
		if (cells.rate === undefined) {
			assert.is(cells.changed, undefined, `${columns}: changed before rate`);
		}
	}
	assert.ok(at(80).range !== undefined && at(80).changed !== undefined);
	assert.is(at(40).changed, undefined);
	assert.ok(at(40).rate !== undefined, '40 columns keep the rate');
	assert.ok((at(40).bar ?? '').length >= 10, '40 columns keep a bar of 10 or more');
	assert.is(at(30).rate, undefined);
	assert.ok(at(30).bar !== undefined);
	assert.is(at(16).bar, undefined);
	assert.is(at(16).percent, ' 50.0%');
});
fit('should cap the bar width', () => {
	assert.is(fitRow({label: 'x', range: '', fraction: 1, rate: '', changed: ''}, widths, 500, asciiGlyphs).bar, '#'.repeat(BAR_MAX));
});
fit.run();

const total = suite('totalRows');
total('should put scanned/size, counters, wire bytes, elapsed and ETA under the total bar', () => {
	const v = view();
	const {cells, lines} = totalRows({...v, finished: false}, widths, 120, unicodeGlyphs);
	assert.is(cells.label, 'total   ');
	assert.is(cells.percent, ' 37.5%');
	const text = lines.join('\n');
	for (const part of ['3.0 GiB / 8.0 GiB', '1000 zero', '3 punched', 'sent 5.0 MiB', 'received 2.0 MiB', 'elapsed 0:10', 'ETA 0:20']) {
		assert.ok(text.includes(part), `${part} in ${text}`);
	}
});
total('should wrap into lines no wider than the terminal at 40 columns and drop the ETA when finished', () => {
	const v = view();
	const {lines} = totalRows({...v, finished: true}, widths, 40, unicodeGlyphs);
	assert.ok(lines.length >= 2);
	for (const line of lines) {
		assert.ok(line.length <= 39, line);
	}
	assert.not.ok(lines.join(' ').includes('ETA'));
	assert.ok(lines.join(' ').includes('51 changed'), 'the changed count moves here when the row has no room for it');
});
total.run();

const header = suite('headerLines');
header('should say SRC → DST with hosts, then size, block size, hash, workers and direction', () => {
	const lines = headerLines(start, 120, unicodeGlyphs);
	assert.equal(lines, [
		'syncing /var/lib/vz/images/100/vm-100-disk-0.raw → root@pve2:/dev/pve/vm-100-disk-0',
		'8.0 GiB  block 4.0 KiB  blake3  2 workers  push',
	]);
});
header('should show --bwlimit\'s rate', () => {
	assert.is(headerLines({...start, bwlimit: 20 * 1024 * 1024}, 120, unicodeGlyphs)[1], '8.0 GiB  block 4.0 KiB  blake3  2 workers  push  limit 20.0 MiB/s');
});
header('should shorten both paths in the middle on a narrow terminal', () => {
	const lines = headerLines(start, 40, unicodeGlyphs);
	assert.is(lines[0], 'syncing /var/li…-0.raw → root@pv…disk-0');
	for (const line of lines) {
		assert.ok(line.length <= 39, line);
	}
});
header('should name the phase: comparing for a dry run, verifying for --verify', () => {
	assert.match(headerLines({...start, dryRun: true}, 120, unicodeGlyphs)[0]!, /^comparing /);
	assert.match(headerLines({...start, dryRun: true}, 120, unicodeGlyphs)[1]!, /dry run$/);
	assert.match(headerLines({...start, phase: 'verify'}, 120, unicodeGlyphs)[0]!, /^verifying /);
});
header.run();
