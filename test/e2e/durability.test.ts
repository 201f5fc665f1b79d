// Traced with strace: DST is flushed after its last change and before success is reported; a dry run opens it read-only.
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {MiB, randomLayout, withTempDir, writeImage} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';
import {type Call, callsOn, opensOf, traceCli} from '../helpers/strace.js';

const durability = suite('durability (strace)');
const CHANGES = ['pwrite64', 'pwritev', 'fallocate', 'ftruncate', 'ioctl'];

/** Index of the stderr write that says the sync succeeded. */
function successIndex(calls: readonly Call[]): number {
	return calls.findIndex(call => call.name === 'write' && call.args.startsWith('2, ') && call.args.includes(': in sync'));
}

durability('should fdatasync DST after its last change and before reporting success', async context => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.3, hole: 0.3}, 101));
		writeImage(dst, randomLayout(8 * MiB, 4096, {zero: 0.3, hole: 0.3}, 102));
		const traced = traceCli(['--workers', '2', src, dst], dir);
		if ('skip' in traced) {
			return skip(context, traced.skip);
		}
		assert.is(traced.code, 0);
		const [open] = opensOf(traced.calls, dst).filter(o => o.flags.includes('O_RDWR'));
		assert.ok(open, 'DST was never opened for writing');
		const changes = callsOn(traced.calls, CHANGES, open.fd, open.index);
		const flushes = callsOn(traced.calls, ['fdatasync', 'fsync'], open.fd, open.index);
		const success = successIndex(traced.calls);
		assert.ok(changes.length > 0, 'nothing was written to DST');
		assert.ok(success > 0, 'no success line');
		assert.ok(flushes.some(f => f > Math.max(...changes) && f < success), `no fdatasync of DST between its last change (${Math.max(...changes)}) and success (${success}); flushes at ${flushes.join(', ')}`);
	});
});

durability('should make a created DST durable: fsync its directory before reporting success', async context => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'new.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.3, hole: 0.3}, 103));
		const traced = traceCli(['--truncate', src, dst], dir);
		if ('skip' in traced) {
			return skip(context, traced.skip);
		}
		assert.is(traced.code, 0);
		const success = successIndex(traced.calls);
		const dirFlushes = opensOf(traced.calls, dir).flatMap(open => callsOn(traced.calls, ['fsync', 'fdatasync'], open.fd, open.index));
		assert.ok(dirFlushes.some(f => f < success), 'the new directory entry of DST was never flushed: a crash after "in sync" can lose DST');
	});
});

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
