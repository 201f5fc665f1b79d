// Refusals that depend on access rights, run as uid/gid 65534 (nobody) through setpriv: exit 1, DST untouched.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli, stderrLines} from '../helpers/cli.js';
import {MiB, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';

const permissions = suite('permissions');
const NOBODY = 65_534;

/** SRC and DST images in `dir`, both owned by root with the given modes. */
function images(dir: string, srcMode: number, dstMode: number): {src: string; dst: string; hash: string} {
	const src = path.join(dir, 'src.img');
	const dst = path.join(dir, 'dst.img');
	writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 61));
	writeImage(dst, randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 62));
	fs.chmodSync(src, srcMode);
	fs.chmodSync(dst, dstMode);
	return {src, dst, hash: sha256(dst)};
}

permissions('should be able to sync as nobody when access is granted (the control case)', async () => {
	await withTempDir(dir => {
		const {src, dst} = images(dir, 0o644, 0o644);
		fs.chownSync(dst, NOBODY, NOBODY);
		const result = runCli(['--json', src, dst], {asNobody: true});
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(dst), sha256(src));
	});
});

permissions('should refuse an unreadable SRC', async () => {
	await withTempDir(dir => {
		const {src, dst, hash} = images(dir, 0o600, 0o666);
		const result = runCli([src, dst], {asNobody: true});
		assert.is(result.code, 1, result.stderr);
		assert.equal(stderrLines(result), [`rblocksync: SRC ${src}: permission denied`]);
		assert.is(sha256(dst), hash);
	});
});

permissions('should refuse an unwritable DST', async () => {
	await withTempDir(dir => {
		const {src, dst, hash} = images(dir, 0o644, 0o644);
		const mtime = fs.statSync(dst).mtimeMs;
		const result = runCli(['--truncate', src, dst], {asNobody: true});
		assert.is(result.code, 1, result.stderr);
		assert.equal(stderrLines(result), [`rblocksync: DST ${dst}: permission denied`]);
		assert.is(sha256(dst), hash);
		assert.is(fs.statSync(dst).mtimeMs, mtime);
	});
});

permissions('should refuse to create DST in a directory it cannot write to', async () => {
	await withTempDir(dir => {
		const {src} = images(dir, 0o644, 0o644);
		const dst = path.join(dir, 'new.img');
		const result = runCli(['--truncate', src, dst], {asNobody: true});
		assert.is(result.code, 1, result.stderr);
		assert.equal(stderrLines(result), [`rblocksync: DST ${dst}: cannot create it in ${dir}: permission denied`]);
		assert.not.ok(fs.existsSync(dst));
	});
});

permissions('should allow a dry run against a DST it may only read', async () => {
	await withTempDir(dir => {
		const {src, dst, hash} = images(dir, 0o644, 0o644);
		const result = runCli(['--dry-run', '--json', src, dst], {asNobody: true});
		assert.is(result.code, 0, result.stderr);
		assert.ok(result.json!.blocksChanged > 0);
		assert.is(sha256(dst), hash);
	});
});

permissions.run();
