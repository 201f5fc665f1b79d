import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {formatBytes, formatBytesShort, formatDuration, formatPercent, formatRatio} from '../../source/ui/format.js';

const bytes = suite('formatBytes');
bytes('should print whole bytes below 1 KiB and one decimal below 100 units', () => {
	assert.is(formatBytes(0), '0 B');
	assert.is(formatBytes(1023), '1023 B');
	assert.is(formatBytes(1536), '1.5 KiB');
	assert.is(formatBytes(150 * 1024 ** 2), '150 MiB');
	assert.is(formatBytes(2 * 1024 ** 4), '2.0 TiB');
});
bytes.run();

const short = suite('formatBytesShort');
short('should print compact sizes for worker ranges', () => {
	assert.is(formatBytesShort(0), '0');
	assert.is(formatBytesShort(512), '512');
	assert.is(formatBytesShort(4 * 1024 ** 3), '4G');
	assert.is(formatBytesShort(2.5 * 1024 ** 3), '2.5G');
	assert.is(formatBytesShort(1.5 * 1024 ** 4), '1.5T');
	assert.is(formatBytesShort(150 * 1024 ** 2), '150M');
});
short.run();

const duration = suite('formatDuration');
duration('should print m:ss and h:mm:ss, and --:-- when unknown', () => {
	assert.is(formatDuration(0), '0:00');
	assert.is(formatDuration(65), '1:05');
	assert.is(formatDuration(3725), '1:02:05');
	assert.is(formatDuration(Number.NaN), '--:--');
	assert.is(formatDuration(Number.POSITIVE_INFINITY), '--:--');
});
duration.run();

const percent = suite('formatPercent');
percent('should clamp to 0..100 and treat an empty total as done', () => {
	assert.is(formatPercent(1, 2), '50.0%');
	assert.is(formatPercent(3, 2), '100.0%');
	assert.is(formatPercent(-1, 2), '0.0%');
	assert.is(formatPercent(0, 0), '100.0%');
});
percent.run();

const ratio = suite('formatRatio');
ratio('should keep small wire ratios visible', () => {
	assert.is(formatRatio(1, 10_000), '0.010%');
	assert.is(formatRatio(50, 100), '50.0%');
	assert.is(formatRatio(1, 0), '-');
});
ratio.run();
