// --check: a dry run whose exit status tells scripts whether DST differs (4) or equals SRC (0), DST left as it was.
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {MiB, randomLayout, rewriteUnits, sha256, unitsOf, withTempDir, writeImage} from '../helpers/images.js';

const check = suite('--check');

check('should exit 0 when DST equals SRC, leaving DST as it was', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		writeImage(src, randomLayout(8 * MiB, 4096, {zero: 0.2, hole: 0.2}, 41));
		fs.copyFileSync(src, dst);
		const before = sha256(dst);
		const result = runCli(['--check', '--json', src, dst]);
		assert.is(result.code, 0, result.stderr);
		assert.is(result.json!.blocksChanged, 0);
		assert.ok(result.json!.dryRun, 'a check is a dry run');
		assert.is(sha256(dst), before);
	});
});

check('should exit 4 when DST differs, print the dry run summary and write nothing', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'dst.img');
		const layout = randomLayout(8 * MiB, 4096, {zero: 0.2, hole: 0.2}, 42);
		writeImage(src, layout);
		fs.copyFileSync(src, dst);
		rewriteUnits(src, layout, unitsOf(layout, 'data').slice(0, 5), 'data');
		const before = sha256(dst);
		const json = runCli(['--check', '--json', src, dst]);
		assert.is(json.code, 4, json.stderr);
		assert.is(json.stderr, '');
		assert.is(json.json!.blocksChanged, 5);
		assert.ok(json.json!.dryRun);
		assert.ok(json.json!.ok, 'a difference is not an error');
		const plain = runCli(['--check', src, dst]);
		assert.is(plain.code, 4, plain.stderr);
		assert.match(plain.stderr, /^dry run: .* compared \(dry run, nothing written\)$/m);
		const quiet = runCli(['--check', '-q', src, dst]);
		assert.is(quiet.code, 4, quiet.stderr);
		assert.equal([quiet.stdout, quiet.stderr], ['', '']);
		assert.is(sha256(dst), before, 'a check wrote to DST');
		assert.not.equal(sha256(dst), sha256(src));
	});
});

check('should exit 4 for a missing DST with --truncate, creating nothing', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		const dst = path.join(dir, 'new.img');
		writeImage(src, randomLayout(4 * MiB, 4096, {zero: 0.2, hole: 0.2}, 43));
		const result = runCli(['--check', '--truncate', '-q', src, dst]);
		assert.is(result.code, 4, result.stderr);
		assert.not.ok(fs.existsSync(dst), 'a check created DST');
	});
});

check('should still exit 1 on a usage error or a failed precondition, not 0 or 4', async () => {
	await withTempDir(dir => {
		const src = path.join(dir, 'src.img');
		writeImage(src, randomLayout(1 * MiB, 4096, {zero: 0.2, hole: 0.2}, 44));
		const missing = runCli(['--check', src, path.join(dir, 'missing.img')]);
		assert.is(missing.code, 1, missing.stderr);
		const verify = runCli(['--check', '--verify', src, src]);
		assert.is(verify.code, 1);
		assert.is(verify.stderr, 'rblocksync: --verify and --check cannot be combined: --check writes nothing to verify\n');
	});
});

check.run();
