import React from 'react';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {render} from 'ink-testing-library';
import {App} from '../../source/ui/App.js';
import {asciiGlyphs, unicodeGlyphs} from '../../source/ui/glyphs.js';
import {plain, summary, view, worker} from './helpers/views.js';

const app = suite('App');

app('should draw the header, one live row per worker with a bar, and the total row', () => {
	const {lastFrame, unmount} = render(<App view={view()} glyphs={unicodeGlyphs}/>);
	const lines = plain(lastFrame()).split('\n');
	unmount();
	assert.is(lines[0], 'syncing /var/lib/vz/images/100/vm-100-disk-0.raw → root@pve2:/dev/pve/vm-100-disk-0');
	assert.is(lines[1], '8.0 GiB  block 4.0 KiB  blake3  2 workers  push');
	assert.match(lines[2]!, /^- worker 1 0-4G  █{20}░{20}  50\.0%  300 MiB\/s 17 changed$/);
	assert.match(lines[3]!, /^- worker 2 4G-8G █{10}░{30}  25\.0%  300 MiB\/s 34 changed$/);
	assert.match(lines[4]!, /^ {2}total {10}█{15}░{25}  37\.5%  307 MiB\/s 51 changed$/);
	assert.match(lines[5]!, /3\.0 GiB \/ 8\.0 GiB {2}1000 zero {2}3 punched {2}sent 5\.0 MiB {2}received 2\.0 MiB {2}elapsed 0:10/);
	assert.match(lines.join('\n'), /ETA 0:20/);
});

app('should mark a finished worker instead of spinning', () => {
	const {lastFrame, unmount} = render(<App view={view({workers: [worker(1, 1), worker(2, 0.25)]})} glyphs={unicodeGlyphs}/>);
	const frame = plain(lastFrame());
	unmount();
	assert.match(frame, /^✓ worker 1 .* 100\.0% /m);
	assert.match(frame, /^- worker 2 /m);
});

app('should fit every line in 40 columns', () => {
	const {lastFrame, unmount} = render(<App view={view({columns: 40, warnings: ['native helper not built; punching holes by writing zeros']})} glyphs={unicodeGlyphs}/>);
	const lines = plain(lastFrame()).split('\n');
	unmount();
	for (const line of lines) {
		assert.ok([...line].length <= 39, `${[...line].length}: ${line}`);
	}
	assert.ok(lines.some(line => /^- worker 1 █+░+ +50\.0% +300 MiB\/s$/.test(line)), lines.join('\n'));
	assert.ok(lines.some(line => line.startsWith('warning: native helper')));
});

app('should collapse workers that do not fit the terminal height', () => {
	const workers = Array.from({length: 32}, (_, i) => worker(i + 1, i < 20 ? 1 : 0.5));
	const {lastFrame, unmount} = render(<App view={view({workers, rows: 20})} glyphs={asciiGlyphs}/>);
	const lines = plain(lastFrame()).split('\n');
	unmount();
	assert.ok(lines.length < 20, `${lines.length} lines`);
	assert.ok(lines.some(line => /… \d+ more workers: 0 running, \d+ done/.test(line)), lines.join('\n'));
	assert.ok(lines.some(line => line.includes('worker 21 ')), 'running workers are shown first');
});

app('should say it is stopping after Ctrl-C', () => {
	const {lastFrame, unmount} = render(<App view={view({stopping: true})} glyphs={unicodeGlyphs}/>);
	const frame = plain(lastFrame());
	unmount();
	assert.match(frame, /interrupted: stopping the workers and flushing DST…$/);
});

app('should end with the summary figures below the final rows', () => {
	const final = view({workers: [worker(1, 1), worker(2, 1)], summary: summary()});
	const {lastFrame, unmount} = render(<App view={final} glyphs={unicodeGlyphs}/>);
	const frame = plain(lastFrame());
	unmount();
	assert.match(frame, /^✓ worker 2 /m);
	assert.not.match(frame, /ETA/);
	assert.match(frame, /^✓ in sync$/m);
	assert.match(frame, /^size {7}8\.0 GiB \(8589934592 bytes\), block 4096, 2 workers$/m);
	assert.match(frame, /^blocks {5}2097152 total, 2097152 scanned, 51 changed, 1000 zero, 3 punched$/m);
	assert.match(frame, /^written {4}192 KiB \(196608 bytes\), punched 12\.0 KiB$/m);
	assert.match(frame, /^wire sent {2}5\.0 MiB \(5242880 bytes\), 0\.061% of size$/m);
	assert.match(frame, /^wire recv {2}2\.0 MiB \(2097152 bytes\), 0\.024% of size$/m);
	assert.match(frame, /^time {7}0:32 \(32\.00 s\)$/m);
	assert.match(frame, /^bandwidth {2}wire 224 KiB\/s, effective 256 MiB\/s$/m);
});

app('should say interrupted and that DST may be partially updated, marking unfinished workers', () => {
	const final = view({summary: summary({ok: false, error: 'interrupted; DST may be partially updated', bytesScanned: 3 * 1024 ** 3})});
	const {lastFrame, unmount} = render(<App view={final} glyphs={unicodeGlyphs}/>);
	const frame = plain(lastFrame());
	unmount();
	assert.match(frame, /^✗ worker 1 /m);
	assert.match(frame, /^✗ interrupted; DST may be partially updated$/m);
});

app('should wrap the summary within 40 columns', () => {
	const final = view({columns: 40, summary: summary()});
	const {lastFrame, unmount} = render(<App view={final} glyphs={unicodeGlyphs}/>);
	const lines = plain(lastFrame()).split('\n');
	unmount();
	for (const line of lines) {
		assert.ok([...line].length <= 39, `${[...line].length}: ${line}`);
	}
	assert.ok(lines.includes('wire sent  5.0 MiB (5242880 bytes),'), lines.join('\n'));
	assert.ok(lines.includes('           0.061% of size'), lines.join('\n'));
});

app('should show an error when the run ended without a summary', () => {
	const {lastFrame, unmount} = render(<App view={view({error: 'open /dev/sdb: EACCES (permission denied)'})} glyphs={unicodeGlyphs}/>);
	const frame = plain(lastFrame());
	unmount();
	assert.match(frame, /^✗ open \/dev\/sdb: EACCES \(permission denied\)$/m);
});

app.run();
