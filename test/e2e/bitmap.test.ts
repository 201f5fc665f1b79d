// --bitmap NAME on this host, with real qemu-img, qemu-io and qemu-nbd: the first pass is full, a pass after writes
// through qemu-io reads only the chunks the bitmap marks, a DST changed behind our back or another DST forces a full
// pass, the refusals, a pass killed at its steps keeps every dirty bit, and so does a crash between any two steps
// of the rotation (the step functions called directly). No qemu process is left behind by any test.
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, startCli, stderrLines} from '../helpers/cli.js';
import {compareImages, makeQcow2, serversLeft} from '../helpers/formats.js';
import {qemuNbdProblem} from '../helpers/qemu-nbd.js';
import {skip} from '../helpers/skip.js';
import {beginPass, FINISH_STEPS, finishStep, nextBitmap, qemuImgBitmaps} from '../../source/image/bitmap.js';
import {startServer} from '../../source/image/qemu-server.js';
import {NbdImage} from '../../source/image/nbd-image.js';
import type {Range} from '../../source/blocks/blocks.js';

const test = suite('--bitmap NAME, locally');
const problem = qemuNbdProblem();
const MiB = 1024 * 1024;
let dir = '';
let serial = 0;

test.before.each(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), `rbs-bitmap-${serial++}-`));
});

test.after.each(async () => {
	const left = await serversLeft(dir);
	fs.rmSync(dir, {recursive: true, force: true});
	assert.equal(left, [], 'qemu-nbd servers left behind');
});

const at = (name: string): string => path.join(dir, name);
const qemuIo = (file: string, ...commands: string[]): void => {
	execFileSync('qemu-io', ['-f', 'qcow2', ...commands.flatMap(command => ['-c', command]), file], {stdio: 'ignore'});
};
const bitmaps = (file: string): string[] => qemuImgBitmaps(file, 'qcow2').list().map(bitmap => bitmap.name).sort();

/** The dirty ranges of `bitmap` in `file`, read through a qemu-nbd -B of ours (stopped before returning). */
function dirtyRanges(file: string, bitmap: string): Range[] {
	const server = startServer('SRC', file, {format: 'qcow2', readOnly: true, bitmap});
	try {
		const image = NbdImage.open({socket: server.socket, bitmap});
		try {
			return image.changedRanges(0, image.size);
		} finally {
			image.close();
		}
	} finally {
		server.stop();
	}
}

const covers = (ranges: readonly Range[], start: number, end: number): boolean => ranges.some(range => range.start <= start && range.end >= end);

/** A 64 MiB qcow2 with 16 MiB of data and the bitmap b0. */
function source(file = at('vm.qcow2')): string {
	makeQcow2(file, 64 * MiB, ['write -P 0x11 0 8M', 'write -P 0x12 30M 8M']);
	execFileSync('qemu-img', ['bitmap', '--add', file, 'b0']);
	return file;
}

const pass = (src: string, dst: string, ...extra: string[]) => runCli(['--src-format', 'qcow2', '--bitmap', 'b0', '--json', '--truncate', ...extra, src, dst]);

/** Bytes read from SRC as the summary says it (srcBytesRead). */
const srcBytesRead = (json: unknown): number => {
	const read = (json as {srcBytesRead?: number} | undefined)?.srcBytesRead;
	assert.type(read, 'number', 'the summary has srcBytesRead');
	return read!;
};

test('should copy everything the first time, then read only the chunks the guest wrote, and DST equal SRC each time', context => {
	if (problem) {
		return skip(context, problem);
	}
	const src = source();
	const first = pass(src, at('vm.raw'));
	assert.is(first.code, 0, first.stderr);
	assert.is(first.json?.bitmap, 'full: no completed pass with this bitmap yet');
	assert.is(compareImages(src, 'qcow2', at('vm.raw'), 'raw'), undefined);
	assert.equal(bitmaps(src), ['b0'], 'b0.next merged and removed');
	assert.equal(dirtyRanges(src, 'b0'), [], 'b0 starts afresh');

	// The guest writes: 4 KiB inside a data chunk, 64 KiB in a hole, 1 MiB across two chunks, zeros over data.
	qemuIo(src, 'write -P 0x21 2M 4k', 'write -P 0x22 20M 64k', 'write -P 0x23 47710208 1M', 'write -z 31M 64k');
	const dirty = dirtyRanges(src, 'b0');
	assert.ok(covers(dirty, 2 * MiB, 2 * MiB + 4096) && covers(dirty, 20 * MiB, 20 * MiB + 65536) && covers(dirty, 45.5 * MiB, 46.5 * MiB) && covers(dirty, 31 * MiB, 31 * MiB + 65536), JSON.stringify(dirty));
	const second = pass(src, at('vm.raw'));
	assert.is(second.code, 0, second.stderr);
	assert.is(second.json?.bitmap, 'incremental');
	assert.is(compareImages(src, 'qcow2', at('vm.raw'), 'raw'), undefined);
	assert.is(second.json?.bytesScanned, 64 * MiB, 'skipped chunks count as scanned');
	// Chunks 2, 20, 31, 45 and 46 (1 MiB each) hold the dirty extents: nothing else of SRC is read.
	const read = srcBytesRead(second.json);
	assert.ok(read > 0 && read <= 5 * MiB, `SRC read ${read} bytes; the dirty chunks are 5 MiB`);
	assert.ok(srcBytesRead(first.json) >= 16 * MiB, `the first pass read ${srcBytesRead(first.json)} bytes of SRC's 16 MiB of data`);
	assert.equal(bitmaps(src), ['b0']);

	const third = pass(src, at('vm.raw'));
	assert.is(third.code, 0, third.stderr);
	assert.is(third.json?.bitmap, 'incremental');
	assert.is(third.json?.blocksChanged, 0);
	assert.is(srcBytesRead(third.json), 0, 'nothing written since: nothing read');

	// Two whole chunks rewritten: each read once from SRC, though SOURCE reads them again to send them (read-ahead kept).
	qemuIo(src, 'write -P 0x24 50M 2M');
	const fourth = pass(src, at('vm.raw'));
	assert.is(fourth.code, 0, fourth.stderr);
	assert.is(compareImages(src, 'qcow2', at('vm.raw'), 'raw'), undefined);
	assert.is(fourth.json?.blocksChanged, 512);
	assert.is(srcBytesRead(fourth.json), 2 * MiB, 'the 2 MiB the guest wrote, read once');
});

test('should make a full pass when DST changed behind our back, or when the last pass went to another DST', context => {
	if (problem) {
		return skip(context, problem);
	}
	const src = source();
	assert.is(pass(src, at('a.raw')).code, 0);
	// Someone writes DST in a range the bitmap knows nothing of: only a full pass repairs it.
	const fd = fs.openSync(at('a.raw'), 'r+');
	fs.writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, 50 * MiB);
	fs.closeSync(fd);
	const repaired = pass(src, at('a.raw'));
	assert.is(repaired.code, 0, repaired.stderr);
	assert.is(repaired.json?.bitmap, 'full: DST changed since the last pass');
	assert.is(compareImages(src, 'qcow2', at('a.raw'), 'raw'), undefined);

	// A pass to another DST starts the bitmap afresh: the writes before it are no longer in b0, so a.raw needs a full pass.
	qemuIo(src, 'write -P 0x31 5M 64k');
	const other = pass(src, at('b.raw'));
	assert.is(other.code, 0, other.stderr);
	assert.match(String(other.json?.bitmap), /^full: /);
	qemuIo(src, 'write -P 0x32 6M 64k');
	const back = pass(src, at('a.raw'));
	assert.is(back.code, 0, back.stderr);
	assert.is(back.json?.bitmap, 'full: the last pass with this bitmap went to another DST');
	assert.is(compareImages(src, 'qcow2', at('a.raw'), 'raw'), undefined);
});

test('should refuse a missing bitmap, a disabled one and a raw SRC with one line and exit 1, changing nothing', context => {
	if (problem) {
		return skip(context, problem);
	}
	const src = at('vm.qcow2');
	makeQcow2(src, 8 * MiB, ['write -P 0x11 0 1M']);
	const missing = runCli(['--src-format', 'qcow2', '--bitmap', 'nope', '--truncate', src, at('d.raw')]);
	assert.is(missing.code, 1);
	assert.equal(stderrLines(missing), [`rblocksync: SRC ${src} has no dirty bitmap nope: add one with qemu-img bitmap --add ${src} nope (the first pass then copies everything)`]);
	assert.not.ok(fs.existsSync(at('d.raw')), 'DST not created');
	execFileSync('qemu-img', ['bitmap', '--add', '--disable', src, 'off']);
	const disabled = runCli(['--src-format', 'qcow2', '--bitmap', 'off', '--truncate', src, at('d.raw')]);
	assert.is(disabled.code, 1);
	assert.equal(stderrLines(disabled), [`rblocksync: SRC ${src}: its dirty bitmap off is disabled and records no writes: qemu-img bitmap --enable ${src} off`]);
	const raw = at('disk.raw');
	fs.writeFileSync(raw, Buffer.alloc(MiB, 1));
	for (const format of [['--src-format', 'raw'], []]) {
		const refused = runCli([...format, '--bitmap', 'b0', '--truncate', raw, at('d.raw')]);
		assert.is(refused.code, 1, refused.stderr);
		assert.equal(stderrLines(refused), [`rblocksync: --bitmap b0: SRC ${raw} is ${format.length ? 'raw' : 'read as raw bytes'}, which keeps no dirty bitmap; give --src-format qcow2 for a qcow2 SRC`]);
	}
	assert.equal(bitmaps(src), ['off'], 'no bitmap added');
});

test('should keep every dirty bit when a pass is killed (SIGKILL) at its steps, and the next pass copy those writes', async context => {
	if (problem) {
		return skip(context, problem);
	}
	const src = source();
	assert.is(pass(src, at('vm.raw')).code, 0);
	const saved = process.env['RBLOCKSYNC_TRACE'];
	process.env['RBLOCKSYNC_TRACE'] = '1';
	try {
		let offset = 10 * MiB;
		for (const step of [/trace [\d.]+ SRC opened/, /trace [\d.]+ DST prepared/, /trace [\d.]+ worker 0 opened/]) {
			qemuIo(src, `write -P 0x4${offset / MiB % 10} ${offset} 64k`);
			const written = offset;
			offset += 2 * MiB;
			const running = startCli(['--src-format', 'qcow2', '--bitmap', 'b0', '--json', '-w', '1', src, at('vm.raw')]);
			await running.waitForStderr(step);
			running.child.kill('SIGKILL');
			assert.is((await running.done).signal, 'SIGKILL', `${String(step)}: the run ended before it was killed`);
			assert.ok(await serversLeft(dir).then(left => left.length === 0), 'the killed run left a qemu-nbd');
			// b0, with what a next run merges into it, still marks the write.
			const names = bitmaps(src);
			const dirty = [...dirtyRanges(src, 'b0'), ...(names.includes(nextBitmap('b0')) ? dirtyRanges(src, nextBitmap('b0')) : [])];
			assert.ok(covers(dirty, written, written + 65536), `${String(step)}: ${JSON.stringify(dirty)}`);
		}
	} finally {
		if (saved === undefined) {
			delete process.env['RBLOCKSYNC_TRACE'];
		} else {
			process.env['RBLOCKSYNC_TRACE'] = saved;
		}
	}
	const next = pass(src, at('vm.raw'));
	assert.is(next.code, 0, next.stderr);
	assert.is(compareImages(src, 'qcow2', at('vm.raw'), 'raw'), undefined);
	assert.equal(bitmaps(src), ['b0']);
});

test('should lose no dirty bit when a run ends between any two steps of the rotation, with a write at each step', context => {
	if (problem) {
		return skip(context, problem);
	}
	for (let done = 0; done <= FINISH_STEPS.length; done++) {
		const src = source(at(`crash-${done}.qcow2`));
		const store = qemuImgBitmaps(src, 'qcow2');
		qemuIo(src, 'write -P 0x51 1M 64k'); // Before the pass: copied by it.
		beginPass(store, 'b0');
		qemuIo(src, 'write -P 0x52 3M 64k'); // During the pass: maybe read by it, maybe not.
		const writes: Array<[number, number]> = [[3 * MiB, 3 * MiB + 65536]];
		for (let step = 0; step < done; step++) {
			finishStep(store, 'b0', FINISH_STEPS[step]!);
			const offset = (5 + 2 * step) * MiB;
			qemuIo(src, `write -P 0x6${step} ${offset} 64k`); // After each step of the rotation.
			writes.push([offset, offset + 65536]);
		}
		// The next run begins its pass: what was left over is merged into b0.
		beginPass(store, 'b0');
		const dirty = dirtyRanges(src, 'b0');
		for (const [start, end] of writes) {
			assert.ok(covers(dirty, start, end), `after ${done} steps: [${start}, ${end}) not in b0 ${JSON.stringify(dirty)}`);
		}
		if (done === 0) {
			assert.ok(covers(dirty, MiB, MiB + 65536), 'a rotation that never began keeps the bits from before the pass');
		}
		assert.equal(bitmaps(src), ['b0', 'b0.next']);
	}
});

test.run();
