// A DST block device with a mounted file system is refused unless --force; a mounted SRC only warns.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, stderrLines} from '../helpers/cli.js';
import {MiB, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';
import {withLoop} from '../helpers/loop.js';
import {skip} from '../helpers/skip.js';

const mounted = suite('mounted DST device');

function run(command: string, args: string[]): {status: number | null; stderr: string} {
	const result = spawnSync(command, args, {encoding: 'utf8'});
	return {status: result.status, stderr: result.error?.message ?? result.stderr};
}

mounted('should refuse a mounted DST device without --force, leave its file system alone, and only warn for a mounted SRC', async context => {
	await withTempDir(async dir => {
		const src = path.join(dir, 'src.img');
		const backing = path.join(dir, 'fs.img');
		const point = path.join(dir, 'mnt');
		fs.mkdirSync(point);
		writeImage(src, randomLayout(16 * MiB, 4096, {zero: 0.25, hole: 0.25}, 81));
		fs.writeFileSync(backing, '');
		fs.truncateSync(backing, 16 * MiB);
		const mkfs = run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', backing]);
		if (mkfs.status === null && /ENOENT/.test(mkfs.stderr)) {
			return skip(context, 'mkfs.ext4 is not installed (apt-get install e2fsprogs)');
		}
		assert.is(mkfs.status, 0, `mkfs.ext4 failed: ${mkfs.stderr}`);
		await withLoop(context, [backing], ([device]) => {
			const mount = run('mount', [device!, point]);
			if (mount.status !== 0) {
				return skip(context, `mount ${device} failed: ${mount.stderr.trim()}`);
			}
			try {
				fs.writeFileSync(path.join(point, 'canary.txt'), 'still here');
				spawnSync('sync');
				const before = sha256(device!);
				const refused = runCli(['--json', src, device!]);
				assert.is(refused.code, 1, refused.stderr);
				assert.equal(stderrLines(refused), [`rblocksync: DST ${device} is mounted on ${point}; use --force to write to it anyway`]);
				assert.is(refused.json?.ok, false, 'a refused run prints its --json summary, not ok');
				assert.is(refused.json?.error, `DST ${device} is mounted on ${point}; use --force to write to it anyway`);
				const truncated = runCli(['--truncate', '--copy', src, device!]);
				assert.is(truncated.code, 1, 'no option but --force gets past the check');
				// --force with --dry-run gets past the check without writing anything to the mounted file system.
				const forced = runCli(['--force', '--dry-run', '--json', src, device!]);
				assert.is(forced.code, 0, forced.stderr);
				assert.ok(forced.json!.blocksChanged > 0);
				// A mounted SRC is allowed, with one warning that it should be a snapshot.
				const copy = path.join(dir, 'copy.img');
				const fromMounted = runCli(['--truncate', '--json', device!, copy]);
				assert.is(fromMounted.code, 0, fromMounted.stderr);
				assert.equal(stderrLines(fromMounted), [`rblocksync: warning: SRC ${device} is mounted on ${point}; if it is written to during the sync, DST will be inconsistent (sync from a snapshot)`]);
				assert.is(sha256(copy), before);
				assert.is(sha256(device!), before, 'the mounted device was written to');
				assert.is(fs.readFileSync(path.join(point, 'canary.txt'), 'utf8'), 'still here');
			} finally {
				const umount = run('umount', [point]);
				assert.is(umount.status, 0, `umount ${point} failed: ${umount.stderr}`);
			}
		});
		const fsck = run('e2fsck', ['-n', '-f', backing]);
		assert.is(fsck.status, 0, `the file system was damaged: ${fsck.stderr}`);
	});
});

mounted.run();
