// A SRC that changes during an SSH sync: SOURCE's preparing agent checks it once every range is done (exit 2).
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {closeSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, sameContent} from '../helpers/remote-images.js';
import {FIRST_PROGRESS, messageLines, runPausedAt} from '../helpers/paused.js';

const test = suite('SRC changing during an SSH sync');
const MiB = 1024 * 1024;
/** Big enough that one worker is still at it when the first progress batch is printed. */
const SIZE = 256 * MiB;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-src-change-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

/** Syncs a fresh SRC (pulled from pve, or pushed to it) into a new DST with one worker, running `change(src)` while the driver is frozen. */
async function syncWhile(name: string, direction: 'pull' | 'push', change: (src: string) => void) {
	const src = join(dir, `${name}-src.img`);
	const dst = join(dir, `${name}-dst.img`);
	makeImage(src, SIZE, {zeroEvery: 0, holeEvery: 0});
	const [from, to] = direction === 'pull' ? [`pve:${src}`, dst] : [src, `pve:${dst}`];
	const result = await runPausedAt([from, to, '--truncate', '-w', '1', '--json-progress'], FIRST_PROGRESS, () => change(src), {env: sshd.env});
	const total = result.stderrAtPause.trim().split('\n').map(line => JSON.parse(line) as {event: string; done?: boolean}).filter(event => event.event === 'total').pop();
	assert.is(total?.done, false, 'the sync was still running when SRC was changed');
	return {...result, src, dst};
}

function writeBlock(file: string, offset: number): void {
	const fd = openSync(file, 'r+');
	writeSync(fd, randomBytes(4096), 0, 4096, offset);
	closeSync(fd);
}

const changed = (prefix: string, src: string): string =>
	`rblocksync: ${prefix}${src}: SRC changed during the sync; DST is not a consistent copy: sync from a snapshot, or run again`;

test('should exit 2 and say so when a pulled SRC shrinks during the sync', async () => {
	const result = await syncWhile('shrink', 'pull', src => truncateSync(src, 16 * MiB));
	assert.is(result.code, 2, result.stderr);
	assert.equal(messageLines(result.stderr), [changed('ssh pve: ', result.src)]);
});

test('should exit 2 and say so when a pulled SRC grows during the sync', async () => {
	const result = await syncWhile('grow', 'pull', src => truncateSync(src, SIZE + 64 * MiB));
	assert.is(result.code, 2, result.stderr);
	assert.equal(messageLines(result.stderr), [changed('ssh pve: ', result.src)]);
	assert.is(statSync(result.dst).size, SIZE);
});

test('should exit 2 and say so when a pulled SRC is written during the sync (same size)', async () => {
	const result = await syncWhile('write', 'pull', src => writeBlock(src, 0));
	assert.is(result.code, 2, result.stderr);
	assert.equal(messageLines(result.stderr), [changed('ssh pve: ', result.src)]);
});

test('should exit 2 and say so when a pushed (local) SRC is written during the sync', async () => {
	const result = await syncWhile('push-write', 'push', src => writeBlock(src, 4096));
	assert.is(result.code, 2, result.stderr);
	assert.equal(messageLines(result.stderr), [changed('', result.src)]);
});

test('should exit 0 when a pulled SRC stays the same through the same pause', async () => {
	const result = await syncWhile('same', 'pull', () => {});
	assert.is(result.code, 0, result.stderr);
	assert.equal(messageLines(result.stderr), []);
	assert.ok(sameContent(result.src, result.dst));
});

test.run();
