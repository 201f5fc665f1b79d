// A block device DST's digest cache over SSH (push to a real loop device): built without --trust-cache but not used,
// used with it after a random sample of its chunks is read and checked, discarded when the sample finds the device
// written behind its back; every run ends with DST equal to SRC (cmp).
import {spawnSync} from 'node:child_process';
import {closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {withLoop} from '../helpers/loop.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {changeBlocks, makeImage, runCli} from '../helpers/remote-images.js';

const test = suite("a block device's digest cache over SSH");
const MiB = 1024 * 1024;
/** 64 chunks of 1 MiB: a 1% sample checks 8 of them. */
const SIZE = 64 * MiB;
const NOT_TRUSTED = 'built: DST is a block device, whose cache is used only with --trust-cache';
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-devcache-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

type Run = {json: Record<string, unknown>; stderr: string};

async function push(src: string, device: string, cacheDir: string, ...more: string[]): Promise<Run> {
	const result = await runCli([src, `pve:${device}`, '--cache-dir', cacheDir, '--json', ...more], sshd.env);
	assert.is(result.status, 0, `${more.join(' ')}: ${result.stderr}`);
	const cmp = spawnSync('cmp', ['-n', String(SIZE), src, device], {encoding: 'utf8'});
	assert.is(cmp.status, 0, `cmp after ${more.join(' ') || 'a run'}: ${cmp.stdout}${cmp.stderr}`);
	return {json: result.json!, stderr: result.stderr};
}

/** Flips one byte in each of the first `chunks` 1 MiB chunks of the device, as someone else would write it. */
function writeBehind(device: string, chunks: number): void {
	const fd = openSync(device, 'r+');
	const byte = Buffer.alloc(1);
	try {
		for (let chunk = 0; chunk < chunks; chunk++) {
			const at = chunk * MiB + 4096 * 3 + 17;
			readSync(fd, byte, 0, 1, at);
			byte[0] = byte[0]! ^ 0xff;
			writeSync(fd, byte, 0, 1, at);
		}
	} finally {
		closeSync(fd);
	}
}

function fresh(name: string): {src: string; backing: string; cacheDir: string} {
	const src = join(dir, `${name}-src.img`);
	const backing = join(dir, `${name}-dev.img`);
	makeImage(src, SIZE);
	makeImage(backing, SIZE, {holeEvery: 0});
	return {src, backing, cacheDir: join(dir, `${name}-cache`)};
}

test('should build a device cache without --trust-cache and not use it, then use it with --trust-cache reading only the sample and what changed', async context => {
	const {src, backing, cacheDir} = fresh('trust');
	await withLoop(context, [backing], async ([device]) => {
		const first = await push(src, device!, cacheDir);
		assert.is(first.json['cache'], 'built');
		assert.is(readdirSync(cacheDir).filter(name => name.endsWith('.digests')).length, 1, 'the cache is in --cache-dir');
		const untrusted = await push(src, device!, cacheDir);
		assert.is(untrusted.json['cache'], NOT_TRUSTED);
		assert.ok(Number(untrusted.json['dstBytesRead']) >= SIZE - MiB, `not used: DST read in full (${untrusted.json['dstBytesRead']})`);
		const trusted = await push(src, device!, cacheDir, '--trust-cache');
		assert.is(trusted.json['cache'], 'used');
		// Nothing changed: only the sample is read, 8 of the 64 chunks.
		assert.is(trusted.json['dstBytesRead'], 8 * MiB, 'only the sample is read');
		const changed = changeBlocks(src, 0.0002);
		const again = await push(src, device!, cacheDir, '--trust-cache');
		assert.is(again.json['cache'], 'used');
		assert.is(again.json['blocksChanged'], changed);
		assert.ok(Number(again.json['dstBytesRead']) <= (8 + changed) * MiB, `read ${again.json['dstBytesRead']} of DST for ${changed} changed blocks`);
	});
});

test('should find a device written behind the cache with the default sample (1%, at least 8 chunks), discard the cache, warn and read DST in full', async context => {
	const {src, backing, cacheDir} = fresh('behind');
	await withLoop(context, [backing], async ([device]) => {
		await push(src, device!, cacheDir);
		await push(src, device!, cacheDir, '--trust-cache');
		// 57 of 64 chunks written: any 8 sampled include one of them.
		writeBehind(device!, 57);
		const found = await push(src, device!, cacheDir, '--trust-cache');
		assert.match(String(found.json['cache']), /^stale: the chunk at offset \d+ differs from the cache \(DST was written by someone else\)$/);
		assert.match(found.stderr, /its digest cache was discarded: the chunk at offset \d+ differs from the cache/);
		assert.ok(Number(found.json['dstBytesRead']) >= SIZE - MiB, `full read: ${found.json['dstBytesRead']}`);
		assert.is(found.json['blocksChanged'], 57);
		const after = await push(src, device!, cacheDir, '--trust-cache');
		assert.is(after.json['cache'], 'used', 'the full read built the cache again');
	});
});

test('should find one written chunk with --cache-sample 100, and read DST in full without --trust-cache after a write behind its back', async context => {
	const {src, backing, cacheDir} = fresh('sample');
	await withLoop(context, [backing], async ([device]) => {
		await push(src, device!, cacheDir);
		writeBehind(device!, 1);
		const found = await push(src, device!, cacheDir, '--trust-cache', '--cache-sample', '100');
		assert.is(found.json['cache'], 'stale: the chunk at offset 0 differs from the cache (DST was written by someone else)');
		assert.is(found.json['blocksChanged'], 1);
		writeBehind(device!, 1);
		const untrusted = await push(src, device!, cacheDir);
		assert.is(untrusted.json['cache'], NOT_TRUSTED);
		assert.is(untrusted.json['blocksChanged'], 1);
	});
});

test('should find a device cache stale when the block size or the hash changed', async context => {
	const {src, backing, cacheDir} = fresh('params');
	await withLoop(context, [backing], async ([device]) => {
		await push(src, device!, cacheDir);
		const block = await push(src, device!, cacheDir, '--trust-cache', '-b', '8192');
		assert.is(block.json['cache'], 'stale: made with block size 4096, this run uses 8192');
		const hash = await push(src, device!, cacheDir, '--trust-cache', '-b', '8192', '--hash', 'sha256');
		assert.is(hash.json['cache'], 'stale: made with blake3, this run uses sha256');
		writeBehind(device!, 64);
		const used = await push(src, device!, cacheDir, '--trust-cache', '-b', '8192', '--hash', 'sha256');
		assert.match(String(used.json['cache']), /^stale: the chunk at offset \d+ differs/);
	});
});

test.run();
