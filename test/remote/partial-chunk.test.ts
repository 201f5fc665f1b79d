// The last chunk of an image whose size is no multiple of the chunk: its digest is H(block digests) over fewer
// than 256 blocks (2080..16352 bytes at 4 KiB blocks), which the native BLAKE3's SIMD path once hashed only in
// part, so a change in that chunk's tail was called equal and DST kept its old bytes, with exit 0 and --verify
// agreeing. Push, pull and relay of a SRC grown with new data after its old end, and of one changed in its tail.
import {execFileSync} from 'node:child_process';
import {mkdtempSync, openSync, closeSync, rmSync, truncateSync, writeSync} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, sameContent} from '../helpers/remote-images.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const test = suite('the last, partial chunk over SSH');
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-partial-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

function writeAt(path: string, offset: number, bytes: Buffer): void {
	const fd = openSync(path, 'r+');
	try {
		writeSync(fd, bytes, 0, bytes.length, offset);
	} finally {
		closeSync(fd);
	}
}

for (const [direction, from, to] of [['push', '', 'pve:'], ['pull', 'pve:', ''], ['relay', 'pve:', 'pve2:']] as const) {
	test(`should send a change in the tail of the last chunk (${direction}), with and without --verify`, async () => {
		const src = join(dir, `${direction}-src.img`);
		const dst = join(dir, `${direction}-dst.img`);
		execFileSync('sh', ['-c', `head -c 4749610 /dev/urandom > '${src}'`]);
		const sync = async (...more: string[]): Promise<void> => {
			const result = await runCli([`${from}${src}`, `${to}${dst}`, '--truncate', '--json', ...more], sshd.env);
			assert.is(result.status, 0, result.stderr);
			assert.ok(sameContent(src, dst), `${direction} ${more.join(' ')}: DST differs from SRC`);
		};
		await sync();
		// Grown, with new data after the old end (block 147 of the last chunk, of 203).
		truncateSync(src, 5_025_051);
		writeAt(src, 4_800_000, randomBytes(3000));
		await sync('--no-cache');
		// A tail block of the last chunk changed in place, through the digest cache, then checked by --verify.
		writeAt(src, 5_020_000, randomBytes(100));
		await sync();
		writeAt(src, 4_900_000, randomBytes(100));
		await sync('--verify', '--no-cache');
	});
}

test.run();
