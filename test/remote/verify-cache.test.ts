// --verify over SSH reads the disks, not the page cache: each role drops its range of its image (OPEN's drop-cache
// flag) before the verify pass reads it. Seen with fincore while the driver is frozen just after the verify OPENs.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {execFileSync} from 'node:child_process';
import {closeSync, fsyncSync, mkdtempSync, openSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, sameContent} from '../helpers/remote-images.js';
import {runPausedAt} from '../helpers/paused.js';

const test = suite('--verify over SSH drops the page cache');
const MiB = 1024 * 1024;
const SIZE = 128 * MiB;
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-verify-cache-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

function flush(file: string): void {
	const fd = openSync(file, 'r');
	try {
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
}

/** Bytes of `file` in the page cache (fincore, util-linux). */
function resident(file: string): number {
	return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], {encoding: 'utf8'}).trim());
}

for (const [direction, from, to] of [['relay', 'pve:', 'pve2:'], ['push', '', 'pve:']] as const) {
	test(`should leave at most a credit window of either image cached once the verify pass opened (${direction})`, async () => {
		const src = join(dir, `${direction}-src.img`);
		const dst = join(dir, `${direction}-dst.img`);
		makeImage(src, SIZE, {zeroEvery: 0, holeEvery: 0});
		flush(src); // Dirty pages cannot be dropped: SRC must be on the disk first, as DEST's fdatasync puts DST.
		let during: {src: number; dst: number} | undefined;
		// The second "worker 0 opened": the verify pass's OPENs were answered (pages dropped); SOURCE may then read
		// one credit window (32 chunks of 1 MiB) before the frozen driver relays anything more.
		const result = await runPausedAt([`${from}${src}`, `${to}${dst}`, '--truncate', '--verify', '-w', '1', '--json'], /trace \S+ worker 0 opened/, () => {
			during = {src: resident(src), dst: resident(dst)};
		}, {env: {...sshd.env, RBLOCKSYNC_TRACE: '1'}, occurrence: 2});
		assert.is(result.code, 0, result.stderr);
		assert.ok(sameContent(src, dst));
		const after = {src: resident(src), dst: resident(dst)};
		// The sync and verify passes leave both images cached (so the measure can see them); in between, the drop.
		assert.ok(after.src > SIZE / 2 && after.dst > SIZE / 2, `cached after the run: ${JSON.stringify(after)}`);
		assert.ok(during!.src <= 40 * MiB && during!.dst <= 40 * MiB, `cached at the start of the verify pass: ${JSON.stringify(during)}`);
	});
}

test.run();
