// Every refusal: exit 1, one line on stderr naming the path, no stack trace, DST untouched.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type CliResult, runCli, stderrLines} from '../helpers/cli.js';
import {MiB, randomLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';
import {skip} from '../helpers/skip.js';

const refusals = suite('refusals');

/** Exit 1, exactly `message` on stderr (beside the native-helper warning), nothing on stdout. */
function assertRefused(result: CliResult, message: string): void {
	assert.is(result.code, 1, `exit ${result.code}; stderr: ${result.stderr}`);
	assert.equal(stderrLines(result), [`rblocksync: ${message}`]);
	assert.not.match(result.stderr, /\n\s+at /, 'a stack trace was printed');
	assert.is(result.stdout, '');
}

/** A 4 MiB SRC in `dir` and the hash it has (SRC is also a DST in some refusals). */
function source(dir: string): {src: string; hash: string} {
	const src = path.join(dir, 'src.img');
	writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 51));
	return {src, hash: sha256(src)};
}

refusals('should refuse SRC and DST being the same file', async () => {
	await withTempDir(dir => {
		const {src, hash} = source(dir);
		const mtime = fs.statSync(src).mtimeMs;
		assertRefused(runCli(['--truncate', src, src]), `SRC and DST are the same file: ${src}`);
		assert.is(sha256(src), hash);
		assert.is(fs.statSync(src).mtimeMs, mtime);
	});
});

refusals('should refuse a DST that is a hard link to SRC', async () => {
	await withTempDir(dir => {
		const {src, hash} = source(dir);
		const link = path.join(dir, 'hard.img');
		fs.linkSync(src, link);
		assertRefused(runCli(['--truncate', '--copy', src, link]), `SRC and DST are the same file: ${link}`);
		assert.is(sha256(src), hash);
	});
});

refusals('should refuse a DST that is a symlink to SRC, and a SRC that is a symlink to DST', async () => {
	await withTempDir(dir => {
		const {src, hash} = source(dir);
		const link = path.join(dir, 'sym.img');
		fs.symlinkSync(src, link);
		assertRefused(runCli([src, link]), `SRC and DST are the same file: ${link}`);
		assertRefused(runCli([link, src]), `SRC and DST are the same file: ${src}`);
		assert.is(sha256(src), hash);
	});
});

refusals('should read an existing directory DST as the directory to sync into (cp and rsync), creating the file there only with --truncate', async () => {
	await withTempDir(dir => {
		const {src, hash} = source(dir);
		const target = path.join(dir, 'adir');
		fs.mkdirSync(target);
		const refused = runCli([src, target]);
		assert.is(refused.code, 1, refused.stderr);
		assert.match(refused.stderr, `DST ${path.join(target, 'src.img')} does not exist; use --truncate to create it`);
		assert.equal(fs.readdirSync(target), [], 'nothing may be created inside the directory without --truncate');
		const created = runCli(['--truncate', src, target]);
		assert.is(created.code, 0, created.stderr);
		assert.equal(fs.readdirSync(target), ['src.img']);
		assert.is(sha256(path.join(target, 'src.img')), hash);
	});
});

refusals('should refuse a missing SRC without creating DST', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'nope.img');
		const dst = path.join(dir, 'dst.img');
		assertRefused(runCli(['--truncate', src, dst]), `SRC ${src}: no such file or directory`);
		assert.not.ok(fs.existsSync(dst));
	});
});

refusals('should refuse a SRC that is a directory without creating DST', async () => {
	await withTempDir(dir => {
		const dst = path.join(dir, 'dst.img');
		assertRefused(runCli(['--truncate', dir, dst]), `SRC ${dir} is a directory`);
		assert.not.ok(fs.existsSync(dst));
	});
});

refusals('should refuse a SRC or DST that is neither a file nor a block device', async () => {
	await withTempDir(dir => {
		const dst = path.join(dir, 'dst.img');
		assertRefused(runCli(['--truncate', '/dev/null', dst]), 'SRC /dev/null is not a regular file or block device');
		assert.not.ok(fs.existsSync(dst));
		const {src} = source(dir);
		assertRefused(runCli(['--truncate', src, '/dev/null']), 'DST /dev/null is not a regular file or block device');
	});
});

refusals('should refuse a read-only DST (read-only bind mount)', async context => {
	await withTempDir(dir => {
		const {src} = source(dir);
		const inner = path.join(dir, 'inner');
		const ro = path.join(dir, 'ro');
		fs.mkdirSync(inner);
		fs.mkdirSync(ro);
		writeImage(path.join(inner, 'dst.img'), randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 52));
		const hash = sha256(path.join(inner, 'dst.img'));
		const mount = (args: string[]): number | null => spawnStatus('mount', args);
		if (mount(['--bind', inner, ro]) !== 0) {
			return skip(context, 'mount --bind failed (no privilege for mounts here)');
		}
		try {
			assert.is(mount(['-o', 'remount,bind,ro', ro]), 0);
			const dst = path.join(ro, 'dst.img');
			assertRefused(runCli([src, dst]), `DST ${dst}: read-only file system`);
			const created = path.join(ro, 'new.img');
			const refused = runCli(['--truncate', src, created]);
			assert.is(refused.code, 1, refused.stderr);
			assert.equal(stderrLines(refused).length, 1);
			assert.match(refused.stderr, created);
			assert.not.ok(fs.existsSync(created));
			assert.is(sha256(dst), hash);
		} finally {
			spawnStatus('umount', [ro]);
		}
	});
});

refusals('should refuse bad option values in one line before touching anything', async () => {
	await withTempDir(dir => {
		const {src} = source(dir);
		const dst = path.join(dir, 'dst.img');
		assertRefused(runCli(['--truncate', '--block-size', '1000', src, dst]), '--block-size must be a power of two from 512 to 16777216 bytes (16 MiB); got 1000');
		assertRefused(runCli(['--truncate', '-b', '256', src, dst]), '--block-size must be a power of two from 512 to 16777216 bytes (16 MiB); got 256');
		assertRefused(runCli(['--truncate', '--workers', '0', src, dst]), '--workers must be a whole number from 1 to 64; got 0');
		assertRefused(runCli(['--truncate', '-w', 'x', src, dst]), '--workers must be a whole number from 1 to 64; got x');
		assertRefused(runCli(['--truncate', src]), 'expected SRC and DST; see rblocksync --help');
		assert.not.ok(fs.existsSync(dst));
	});
});

function spawnStatus(command: string, args: string[]): number | null {
	return spawnSync(command, args, {stdio: 'ignore'}).status;
}

refusals.run();
