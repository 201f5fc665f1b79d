import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {summaryLines, summaryRows, summaryStatus} from '../../source/ui/summary-text.js';
import {summary} from './helpers/views.js';

const status = suite('summaryStatus');
status('should say in sync, compared, or the error', () => {
	assert.is(summaryStatus(summary()), 'in sync');
	assert.is(summaryStatus(summary({dryRun: true})), 'compared (dry run, nothing written)');
	assert.is(summaryStatus(summary({ok: false, error: 'interrupted; DST may be partially updated'})), 'interrupted; DST may be partially updated');
});
status.run();

const rows = suite('summaryRows');
rows('should hold size, blocks, written, bytes read of each image, wire bytes with their ratio, time and both bandwidths', () => {
	const text = summaryRows(summary()).map(r => `${r.label}: ${r.parts.join(', ')}`);
	assert.equal(text, [
		'size: 8.0 GiB (8589934592 bytes), block 4096, 2 workers',
		'blocks: 2097152 total, 2097152 scanned, 51 changed, 1000 zero, 3 punched',
		'written: 192 KiB (196608 bytes), punched 12.0 KiB',
		'read: SRC 6.0 GiB (6442450944 bytes), DST 12.0 MiB (12582912 bytes)',
		'wire sent: 5.0 MiB (5242880 bytes), 0.061% of size',
		'wire recv: 2.0 MiB (2097152 bytes), 0.024% of size',
		'time: 0:32 (32.00 s)',
		'bandwidth: wire 224 KiB/s, effective 256 MiB/s',
	]);
});
rows('should show --bwlimit\'s rate beside the bandwidth', () => {
	const bandwidth = summaryRows(summary({bwlimit: 500 * 1024})).find(r => r.label === 'bandwidth')!;
	assert.is(bandwidth.parts.at(-1), 'limit 500 KiB/s (--bwlimit)');
	assert.not.ok(summaryRows(summary()).find(r => r.label === 'bandwidth')!.parts.some(part => part.startsWith('limit')));
});
rows('should count the reconnects of a run that survived a dropped link (--retries), and say nothing of none', () => {
	assert.equal(summaryRows(summary({reconnects: 2})).find(r => r.label === 'link')?.parts, ['2 reconnects (--retries)']);
	assert.equal(summaryRows(summary({reconnects: 1})).find(r => r.label === 'link')?.parts, ['1 reconnect (--retries)']);
	assert.not.ok(summaryRows(summary({reconnects: 0})).some(r => r.label === 'link'));
	assert.not.ok(summaryRows(summary()).some(r => r.label === 'link'));
});
rows('should show the compression and its ratio', () => {
	const row = summaryRows(summary({compression: 'zstd 1, auto', compressionRatio: 3.256})).find(r => r.label === 'compress')!;
	assert.equal(row.parts, ['zstd 1, auto', 'ratio 3.26x']);
	assert.not.ok(summaryRows(summary()).some(r => r.label === 'compress'));
});
rows('should add the DST-larger note and the verify result when they apply', () => {
	const labels = summaryRows(summary({dstExtraBytes: 1024, verified: true})).map(r => r.label);
	assert.ok(labels.includes('note'));
	assert.ok(labels.includes('verify'));
});
rows.run();

const lines = suite('summaryLines');
lines('should start with SRC -> DST and the status, then aligned rows', () => {
	const out = summaryLines(summary());
	assert.is(out[0], '/var/lib/vz/images/100/vm-100-disk-0.raw -> root@pve2:/dev/pve/vm-100-disk-0: in sync');
	assert.is(out[1], 'size       8.0 GiB (8589934592 bytes), block 4096, 2 workers');
});
lines.run();
