// I/O failures during the sync: exit 2, one line naming the image and the cause, "DST may be partially updated".
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, stderrLines} from '../helpers/cli.js';
import {dataLayout, MiB, withTempDir, writeImage} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';

const ioErrors = suite('I/O errors');

ioErrors('should exit 2 naming DST and the cause when DST runs out of space', async context => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const small = path.join(dir, 'small');
		fs.mkdirSync(small);
		writeImage(src, dataLayout(8 * MiB));
		const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', small], {encoding: 'utf8'});
		if (mount.status !== 0) {
			return skip(context, `cannot mount a small tmpfs: ${mount.stderr.trim()}`);
		}
		try {
			const dst = path.join(small, 'dst.img');
			const result = runCli(['--truncate', '--json', '--workers', '1', src, dst]);
			assert.is(result.code, 2, result.stderr);
			const lines = stderrLines(result);
			assert.is(lines.length, 1, result.stderr);
			assert.match(lines[0]!, /^rblocksync: .*; DST may be partially updated$/);
			assert.match(lines[0]!, `${dst}: `, 'the message must name DST');
			assert.match(lines[0]!, 'no space left on device');
			assert.not.match(result.stderr, /\n\s+at /);
			assert.is(result.json?.ok, false);
			assert.not.match(result.stderr, /in sync/);
		} finally {
			spawnSync('umount', [small]);
		}
	});
});

ioErrors.run();
