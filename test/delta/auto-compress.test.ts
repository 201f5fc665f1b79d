// --compress=auto's decision (pure, over a given clock) and the driver's choice of codec from both HELLOs.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {AutoCompress, compressionPays, MAX_AUTO_LEVEL, MIN_BACKLOG, SAMPLE_EVERY} from '../../source/delta/auto-compress.js';
import {Capability, compressByte, compressSpec} from '../../source/protocol/messages.js';
import {compressFor} from '../../source/remote/remote-backend.js';

const auto = suite('AutoCompress');
const MiB = 1024 * 1024;

/** Feeds windows of `linkRate` bytes/s acknowledged, samples compressing at `compressRate` to `ratio`, SOURCE waiting half the time. */
function run(linkRate: number, compressRate: number, ratio: number, windows = 8): AutoCompress {
	const a = new AutoCompress(0);
	let acked = 0;
	for (let now = 0, w = 0; w < windows; w++) {
		for (let step = 0; step < 10; step++) {
			if (a.wants()) {
				a.compressed(MiB, MiB * ratio, MiB * 1000 / compressRate);
			}
			a.waiting(now);
			now += 30;
			acked += linkRate * 0.03;
			a.sent(linkRate * 0.03);
			a.acked(acked, now + 15);
		}
	}
	return a;
}

auto('should turn on where the link is slow and the data compressible, stay off otherwise', () => {
	assert.ok(run(12.5e6, 400e6, 0.3).on, '100 Mbit/s, text');
	assert.not.ok(run(12.5e6, 400e6, 0.99).on, '100 Mbit/s, random');
	assert.not.ok(run(500e6, 400e6, 0.3).on, 'a fast loopback');
	assert.ok(run(12.5e6, 80e6, 0.4).on, '100 Mbit/s with zlib');
});

auto('should compress from the first run when it shrank, holding MIN_BACKLOG unacknowledged until the first decision', () => {
	const text = new AutoCompress(0);
	assert.ok(text.wants(), 'the first run is a sample');
	text.compressed(256 * 1024, 80 * 1024, 1);
	assert.ok(text.on, 'on before any decision: the first sample shrank');
	assert.ok(text.wants());
	text.acked(0, 5); // DEST's first CREDIT: its window, nothing completed
	text.sent(MIN_BACKLOG - 1);
	assert.not.ok(text.holding());
	text.sent(1);
	assert.ok(text.holding(), 'no credit window of data before the link is measured');
	const random = new AutoCompress(0);
	random.wants();
	random.compressed(256 * 1024, 256 * 1024, 1);
	assert.not.ok(random.on);
	assert.not.ok(random.wants(), 'off: the next sample is SAMPLE_EVERY runs on');
});

auto('should stay on while compressing holds SOURCE back if the link was measured slower than the raw bytes it moves', () => {
	const a = new AutoCompress(0);
	a.wants();
	a.compressed(MiB, 0.3 * MiB, 1);
	a.acked(0, 0);
	let acked = 0;
	let now = 0;
	// Link-bound windows at 3 MB/s (SOURCE waits): on, the link's capacity measured.
	const window = (rate: number, wait: boolean, compressMs: number): void => {
		for (let step = 0; step < 10; step++) {
			a.compressed(MiB, 0.3 * MiB, compressMs);
			if (wait) {
				a.waiting(now);
			}
			now += 30;
			acked += rate * 0.03;
			a.acked(acked, now);
		}
	};
	window(3e6, true, 1);
	assert.ok(a.on);
	// Then SOURCE is CPU-bound, compressing most of the time, at 2.5 MB/s of wire (~8 MB/s raw): raw data would only wait for the 3 MB/s link.
	window(2.5e6, false, 20);
	window(2.5e6, false, 20);
	assert.ok(a.on, JSON.stringify(a.last));
	// With no link-bound window measured (a fast link), the same windows turn it off to measure the link.
	const b = new AutoCompress(0);
	b.wants();
	b.compressed(MiB, 0.3 * MiB, 1);
	b.acked(0, 0);
	let bAcked = 0;
	for (let step = 0, t = 0; step < 20; step++) {
		b.compressed(MiB, 0.3 * MiB, 20);
		t += 30;
		bAcked += 2.5e6 * 0.03;
		b.acked(bAcked, t);
	}
	assert.not.ok(b.on, JSON.stringify(b.last));
});

auto('should raise the level to MAX_AUTO_LEVEL while the link holds SOURCE back and compressing is cheap, and lower it before turning off', () => {
	const a = new AutoCompress(0);
	assert.is(a.level, 1);
	a.wants();
	a.compressed(MiB, 0.3 * MiB, 1);
	a.acked(0, 0);
	let acked = 0;
	let now = 0;
	const window = (wait: boolean, compressMs: number): void => {
		for (let step = 0; step < 10; step++) {
			a.compressed(MiB / 8, 0.3 * MiB / 8, compressMs);
			if (wait) {
				a.waiting(now);
			}
			now += 30;
			acked += 4e6 * 0.03;
			a.acked(acked, now);
		}
	};
	const levels: number[] = [];
	for (let w = 0; w < 6; w++) {
		window(true, 0.5);
		levels.push(a.level);
	}
	assert.ok(a.on);
	assert.is(a.level, MAX_AUTO_LEVEL, levels.join(' '));
	assert.ok(levels.every((level, i) => i === 0 || level >= levels[i - 1]!), levels.join(' '));
	// SOURCE then CPU-bound, compressing most of the window, the link measured at 4 MB/s: back down a level, still on.
	window(false, 25);
	window(false, 25);
	assert.ok(a.on);
	assert.ok(a.level < MAX_AUTO_LEVEL, String(a.level));
	// Incompressible data: off, and the level back at OPEN's.
	for (let w = 0; w < 8; w++) {
		for (let step = 0; step < 10; step++) {
			a.compressed(MiB, MiB, 1);
			a.waiting(now);
			now += 30;
			acked += 4e6 * 0.03;
			a.acked(acked, now);
		}
	}
	assert.not.ok(a.on);
	assert.is(a.level, 1);
	// OPEN's level above MAX_AUTO_LEVEL is never lowered below it.
	assert.is(new AutoCompress(0, 6).level, 6);
});

auto('should sample one run in SAMPLE_EVERY while off', () => {
	const a = new AutoCompress(0);
	const picks = Array.from({length: SAMPLE_EVERY * 3}, () => a.wants()).filter(Boolean).length;
	assert.is(picks, 3);
});

auto('should pay by the formula: link < compress rate x (1/1.1 - ratio) / 2', () => {
	assert.ok(compressionPays({ratio: 0.3, compressRate: 400e6, linkRate: 100e6, waiting: 1}));
	assert.not.ok(compressionPays({ratio: 0.3, compressRate: 400e6, linkRate: 130e6, waiting: 1}));
	assert.not.ok(compressionPays({ratio: 0.95, compressRate: 400e6, linkRate: 1e6, waiting: 1}));
});

const codec = suite('compressFor');
const both = Capability.compressAuto | Capability.zstd;

codec('should pick zstd where both agents have it, zlib and who lacks it otherwise, nothing for auto on an old SOURCE', () => {
	assert.equal(compressFor({mode: 'auto', level: 1}, both, both), {spec: {codec: 'zstd', level: 1, auto: true}});
	assert.equal(compressFor({mode: 'on', level: 12}, both, Capability.compressAuto), {spec: {codec: 'zlib', level: 9, auto: false}, fallback: 'DEST'});
	assert.equal(compressFor({mode: 'on', level: 3}, Capability.compressAuto, both), {spec: {codec: 'zlib', level: 3, auto: false}, fallback: 'SOURCE'});
	assert.equal(compressFor({mode: 'auto', level: 1}, Capability.holes, both), {spec: undefined});
	assert.equal(compressFor({mode: 'on', level: 6}, Capability.holes, both), {spec: {codec: 'zlib', level: 6, auto: false}, fallback: 'SOURCE'});
	assert.equal(compressFor({mode: 'off', level: 0}, both, both), {spec: undefined});
});

codec('should not compress under auto when both roles run on this host (a memory link), but still when asked for a level', () => {
	assert.equal(compressFor({mode: 'auto', level: 1}, both, both, false), {spec: undefined});
	assert.equal(compressFor({mode: 'on', level: 3}, both, both, false), {spec: {codec: 'zstd', level: 3, auto: false}});
});

codec('should keep a plain zlib level byte as protocol-1 agents read it', () => {
	assert.is(compressByte({codec: 'zlib', level: 6, auto: false}), 6);
	assert.is(compressByte(undefined), 0);
	for (const spec of [{codec: 'zstd', level: 19, auto: true}, {codec: 'zlib', level: 1, auto: true}, {codec: 'zstd', level: 3, auto: false}] as const) {
		assert.equal(compressSpec(compressByte(spec)), spec);
	}
	assert.is(compressSpec(0), undefined);
});

auto.run();
codec.run();
