// DEST's CHECKPOINT (doc/protocol.md, "Reconnecting"): what it names is true. At each one every byte of the range
// before its offset is SRC's, DST was synced after those writes, and the offsets climb by whole chunks; in a session
// without digests (a new DST), with digests (scattered changes, answered out of order), with --copy, from mid-image.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {MemoryImage} from '../../source/image/memory-image.js';
import {checkpointProblem} from '../../source/delta/session-rules.js';
import {syncPair} from '../helpers/roles-pair.js';

const test = suite('CHECKPOINT');
const MiB = 1024 * 1024;

/** A memory image that counts its fdatasyncs. */
class SyncedImage extends MemoryImage {
	syncs = 0;
	override sync(): void {
		this.syncs += 1;
	}
}

function sample(size: number): Buffer {
	const data = randomBytes(size);
	data.fill(0, 4096 * 3, 4096 * 40);
	data.fill(0, 2 * MiB, 4 * MiB);
	return data;
}

for (const [name, makeDst, copy, start] of [
	['a new DST (no digests)', (content: Buffer) => new SyncedImage('dst', content.length), false, 0],
	['scattered changes (digests)', (content: Buffer) => {
		const dst = new SyncedImage('dst', content.length);
		const old = Buffer.from(content);
		for (let at = 4096 * 7; at < old.length; at += 300 * 1024) {
			randomBytes(4096).copy(old, at);
		}
		dst.write(old, 0, old.length, 0);
		return dst;
	}, false, 0],
	['--copy over other data', (content: Buffer) => {
		const dst = new SyncedImage('dst', content.length);
		dst.write(randomBytes(content.length), 0, content.length, 0);
		return dst;
	}, true, 0],
	['a range from mid-image', (content: Buffer) => new SyncedImage('dst', content.length), false, 3 * MiB],
] as const) {
	test(`should name only synced bytes equal to SRC's: ${name}`, async () => {
		const content = sample(12 * MiB + 4096 * 5);
		const src = MemoryImage.from('src', content);
		const dst = makeDst(content);
		const offsets: number[] = [];
		let syncsBefore = dst.syncs;
		const problems: string[] = [];
		await syncPair(src, dst, dst, {copy, start, checkpoint: offset => {
			if (dst.syncs <= syncsBefore) {
				problems.push(`no sync before the checkpoint at ${offset}`);
			}
			syncsBefore = dst.syncs;
			if (!dst.content.subarray(start, offset).equals(content.subarray(start, offset))) {
				problems.push(`DST differs from SRC before the checkpoint at ${offset}`);
			}
			const problem = checkpointProblem(start, content.length, MiB, offsets.at(-1) ?? start, offset);
			if (problem) {
				problems.push(problem);
			}
			offsets.push(offset);
		}});
		assert.equal(problems, []);
		assert.ok(dst.content.subarray(start).equals(content.subarray(start)));
		// Every chunk but the last (DONE says the rest) is checkpointed at some point.
		assert.ok(offsets.length >= 8, offsets.join(', '));
	});
}

test('should refuse a CHECKPOINT that goes back, leaves the range or is not at a chunk boundary', () => {
	assert.is(checkpointProblem(0, 10 * MiB, MiB, 0, MiB), undefined);
	assert.is(checkpointProblem(0, 10 * MiB + 5, MiB, 10 * MiB, 10 * MiB + 5), undefined);
	assert.is(checkpointProblem(2 * MiB, 10 * MiB, MiB, 2 * MiB, 3 * MiB), undefined);
	assert.match(checkpointProblem(0, 10 * MiB, MiB, 2 * MiB, 2 * MiB) ?? '', /not past the last one/);
	assert.match(checkpointProblem(0, 10 * MiB, MiB, 2 * MiB, MiB) ?? '', /not past the last one/);
	assert.match(checkpointProblem(0, 10 * MiB, MiB, 0, 11 * MiB) ?? '', /inside this worker's range/);
	assert.match(checkpointProblem(0, 10 * MiB, MiB, 0, MiB + 4096) ?? '', /not at a chunk boundary/);
});

test.run();
