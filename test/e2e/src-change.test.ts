// A SRC that changes while a local sync reads it: shrunk, grown or written, the run ends with exit 2 and says so.
import fs from 'node:fs';
import path from 'node:path';
import {randomBytes} from 'node:crypto';
import {execFileSync} from 'node:child_process';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {dataLayout, MiB, sha256, withTempDir, writeImage} from '../helpers/images.js';
import {withLoop} from '../helpers/loop.js';
import {FIRST_PROGRESS, messageLines, type PausedResult, runPausedAt} from '../helpers/paused.js';

const test = suite('SRC changing during a local sync');

/** Big enough that one worker is still copying when the first progress batch (after ~100 ms) is printed. */
const SIZE = 512 * MiB;

/** Syncs a fresh SRC into a new DST with one worker, running `change(src)` while the CLI is frozen mid-sync. */
async function syncWhile(dir: string, change: (src: string) => void): Promise<PausedResult & {src: string; dst: string}> {
	const src = path.join(dir, 'src.img');
	const dst = path.join(dir, 'dst.img');
	writeImage(src, dataLayout(SIZE, MiB));
	const result = await runPausedAt([src, dst, '--truncate', '-w', '1', '--json-progress'], FIRST_PROGRESS, () => change(src));
	const total = result.stderrAtPause.trim().split('\n').map(line => JSON.parse(line) as {event: string; done?: boolean}).filter(event => event.event === 'total').pop();
	assert.is(total?.done, false, 'the sync was still running when SRC was changed');
	return {...result, src, dst};
}

function changedLine(src: string): string {
	return `rblocksync: ${src}: SRC changed during the sync; DST is not a consistent copy: sync from a snapshot, or run again`;
}

test('should exit 2 and say so when SRC shrinks during the sync (no zeros past its new end)', async () => {
	await withTempDir(async dir => {
		const result = await syncWhile(dir, src => fs.truncateSync(src, 16 * MiB));
		assert.is(result.code, 2, result.stderr);
		assert.equal(messageLines(result.stderr), [changedLine(result.src)]);
	});
});

test('should exit 2 and say so when SRC grows during the sync', async () => {
	await withTempDir(async dir => {
		const result = await syncWhile(dir, src => fs.truncateSync(src, SIZE + 64 * MiB));
		assert.is(result.code, 2, result.stderr);
		assert.equal(messageLines(result.stderr), [changedLine(result.src)]);
		assert.is(fs.statSync(result.dst).size, SIZE, 'DST keeps the size SRC had when the sync began');
	});
});

test('should exit 2 and say so when SRC is written during the sync (same size, mtime and ctime moved)', async () => {
	await withTempDir(async dir => {
		const result = await syncWhile(dir, src => {
			const fd = fs.openSync(src, 'r+');
			fs.writeSync(fd, randomBytes(4096), 0, 4096, 0); // A block the worker has read already.
			fs.closeSync(fd);
		});
		assert.is(result.code, 2, result.stderr);
		assert.equal(messageLines(result.stderr), [changedLine(result.src)]);
		assert.is(fs.statSync(result.src).size, SIZE);
	});
});

test('should exit 0 when SRC stays the same through the same pause', async () => {
	await withTempDir(async dir => {
		const result = await syncWhile(dir, () => {});
		assert.is(result.code, 0, result.stderr);
		assert.equal(messageLines(result.stderr), []);
		assert.is(sha256(result.dst), sha256(result.src));
	});
});

test('should exit 2 when a SRC block device grows during the sync, and not notice a write at the same size (no mtime)', async context => {
	await withTempDir(async dir => {
		const backing = path.join(dir, 'dev.img');
		writeImage(backing, dataLayout(SIZE, MiB));
		await withLoop(context, [backing], async ([device]) => {
			const sync = async (dst: string, change: () => void): Promise<PausedResult> =>
				runPausedAt([device!, dst, '--truncate', '-w', '1', '--json-progress'], FIRST_PROGRESS, change);
			const written = await sync(path.join(dir, 'written.img'), () => {
				const fd = fs.openSync(device!, 'r+');
				fs.writeSync(fd, randomBytes(4096), 0, 4096, 0);
				fs.fsyncSync(fd);
				fs.closeSync(fd);
			});
			assert.is(written.code, 0, `a device's size is all that is checked: ${written.stderr}`);
			const grown = await sync(path.join(dir, 'grown.img'), () => {
				fs.truncateSync(backing, SIZE + 64 * MiB);
				execFileSync('losetup', ['-c', device!]);
			});
			assert.is(grown.code, 2, grown.stderr);
			assert.equal(messageLines(grown.stderr), [changedLine(device!)]);
		});
	});
});

test.run();
