// Traced with strace: DST is flushed after its last change and before success is reported; a dry run opens it read-only.
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {MiB, randomLayout, withTempDir, writeImage} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';
import {type Call, callsOn, callsOnFile, opensOf, traceCli} from '../helpers/strace.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const durability = suite('durability (strace)');
const CHANGES = ['pwrite64', 'pwritev', 'fallocate', 'ftruncate', 'ioctl'];

/** Index of the stderr write that says the sync succeeded. */
function successIndex(calls: readonly Call[]): number {
	// fd 2, also as strace -y shows it (2</dev/pts/0>).
	return calls.findIndex(call => call.name === 'write' && /^2(<[^>]*>)?, /.test(call.args) && call.args.includes(': in sync'));
}

let sshd: Sshd;
durability.before(async () => {
	sshd = await startSshd();
});
durability.after(async () => {
	await sshd.stop();
});

// Both backends: the local byte comparison, and the digest path of a pull, whose DEST runs in this process (a
// preparing DEST creating and locking DST, each worker writing through its own fd of it, in a worker thread).
const backends: Record<string, (dir: string, src: string) => string[]> = {
	'byte comparison': (_dir, src) => [src],
	'digest path, pull': (dir, src) => ['--cache-dir', path.join(dir, 'cache'), `pve:${src}`],
};

for (const [backend, flags] of Object.entries(backends)) {
	durability(`should fdatasync DST after its last change and before reporting success (${backend})`, async context => {
		await withTempDir(dir => {
			const src = path.join(dir, 'src.img');
			const dst = path.join(dir, 'dst.img');
			writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.3, hole: 0.3}, 101));
			writeImage(dst, randomLayout(8 * MiB, 4096, {zero: 0.3, hole: 0.3}, 102));
			const traced = traceCli(['--workers', '2', ...flags(dir, src), dst], dir, {fdPaths: true, env: sshd.env});
			if ('skip' in traced) {
				return skip(context, traced.skip);
			}
			assert.is(traced.code, 0);
			// Every fd that names DST (a worker's may be the preparing one's, shared by pidfd_getfd, not opened): a flush
			// of each after its last change.
			const changes = callsOnFile(traced.calls, CHANGES, dst);
			const flushes = callsOnFile(traced.calls, ['fdatasync', 'fsync'], dst);
			const success = successIndex(traced.calls);
			assert.ok(success > 0, 'no success line');
			const written = changes.length;
			for (const fd of new Set(changes.map(change => change.fd))) {
				const last = Math.max(...changes.filter(change => change.fd === fd).map(change => change.index));
				const flushed = flushes.filter(flush => flush.fd === fd).map(flush => flush.index);
				assert.ok(flushed.some(f => f > last && f < success), `no fdatasync of DST (fd ${fd}) between its last change (${last}) and success (${success}); flushes at ${flushed.join(', ')}`);
			}
			assert.ok(written > 0, 'nothing was written to DST');
		});
	});

	durability(`should make a created DST durable: fsync its directory before reporting success (${backend})`, async context => {
		await withTempDir(dir => {
			const src = path.join(dir, 'src.img');
			const dst = path.join(dir, 'new.img');
			writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.3, hole: 0.3}, 103));
			const traced = traceCli(['--truncate', ...flags(dir, src), dst], dir, {env: sshd.env});
			if ('skip' in traced) {
				return skip(context, traced.skip);
			}
			assert.is(traced.code, 0);
			const success = successIndex(traced.calls);
			const dirFlushes = opensOf(traced.calls, dir).flatMap(open => callsOn(traced.calls, ['fsync', 'fdatasync'], open.fd, open.index));
			assert.ok(dirFlushes.some(f => f < success), 'the new directory entry of DST was never flushed: a crash after "in sync" can lose DST');
		});
	});
}

durability('should never open DST for writing in a dry run', async context => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.3, hole: 0.3}, 104));
		writeImage(dst, randomLayout(4 * MiB, 4096, {zero: 0.3, hole: 0.3}, 105));
		const traced = traceCli(['--dry-run', '--truncate', src, dst], dir);
		if ('skip' in traced) {
			return skip(context, traced.skip);
		}
		assert.is(traced.code, 0);
		const opens = opensOf(traced.calls, dst);
		assert.ok(opens.length > 0, 'DST was not even read');
		for (const open of opens) {
			assert.ok(open.flags.startsWith('O_RDONLY'), `DST opened with ${open.flags}`);
		}
	});
});

durability.run();
