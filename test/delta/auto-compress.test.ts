// --compress=auto's decision (pure, over a given clock) and the driver's choice of codec from both HELLOs.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {AutoCompress, compressionPays, SAMPLE_EVERY} from '../../source/delta/auto-compress.js';
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
