import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {MemoryImage} from '../../source/image/memory-image.js';
import type {WantedHeader as CacheHeader} from '../../source/delta/digest-cache.js';
import {abandon, cachePaths, commit, defaultCacheDir, FileRangeCache, fileIdentity, restore, takeOver, type TakeOver} from '../../source/delta/digest-cache-file.js';
import {CACHE_UNCHANGED} from '../../source/protocol/messages.js';
import {syncPair} from '../helpers/roles-pair.js';

const test = suite('digest cache files');
const MiB = 1024 * 1024;

function setUp(): {dir: string; dstFile: string; header: () => CacheHeader} {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-cache-'));
	const dstFile = path.join(dir, 'dst.img');
	fs.writeFileSync(dstFile, Buffer.alloc(16));
	const header = (): CacheHeader => ({hash: 'blake3', blockSize: 4096, size: 5 * MiB + 999, dstIdentity: fileIdentity(fs.statSync(dstFile, {bigint: true})), srcStamp: 'src-stamp'});
	return {dir, dstFile, header};
}

function taken(result: TakeOver | string): TakeOver {
	assert.type(result, 'object', String(result));
	return result as TakeOver;
}

test('should keep the cache directory per user: ~/.cache/rblocksync/digests, /var/lib/rblocksync/digests for root', () => {
	assert.is(defaultCacheDir(1000, '/home/ana'), '/home/ana/.cache/rblocksync/digests');
	assert.is(defaultCacheDir(0, '/root'), '/var/lib/rblocksync/digests');
});

test('should build a cache, put it in place only at commit, then use it and read nothing of DST', async () => {
	const {dir, dstFile, header} = setUp();
	const paths = cachePaths(path.join(dir, 'cache'), fs.statSync(dstFile, {bigint: true}));
	const size = header().size;
	const content = randomBytes(size);
	const first = taken(takeOver(paths, header()));
	assert.is(first.status, 'built');
	assert.not.ok(fs.existsSync(paths.final));
	const dst = MemoryImage.from('dst', randomBytes(size));
	const building = new FileRangeCache(first.layout, paths, first.usable);
	await syncPair(MemoryImage.from('src', content), dst, dst, {cache: building});
	building.close();
	assert.not.ok(fs.existsSync(paths.final), 'no cache before the commit');
	commit(paths, header());
	assert.is(fs.statSync(paths.final).size, first.layout.fileSize);
	assert.ok(fs.statSync(paths.final).size <= Math.ceil(size / MiB) * MiB * 0.0025 + 4096);

	// SRC changed (another stamp): the cache is used, not answered by the quick check.
	const second = taken(takeOver(paths, {...header(), srcStamp: 'src-stamp-2'}));
	assert.is(second.status, 'used');
	assert.is(second.srcStamp, 'src-stamp');
	assert.not.ok(fs.existsSync(paths.final), 'taken out of use before the first write');
	let read = 0;
	const counted = Object.assign(Object.create(dst) as MemoryImage, {read: (...args: Parameters<MemoryImage['read']>) => {
		read += args[2];
		dst.read(...args);
	}});
	const next = Buffer.from(content);
	randomBytes(3 * 4096).copy(next, MiB + 8192);
	const using = new FileRangeCache(second.layout, paths, second.usable);
	await syncPair(MemoryImage.from('src', next), counted, dst, {cache: using});
	using.close();
	commit(paths, header());
	assert.ok(dst.content.equals(next));
	// Nothing of DST is read: SOURCE compared keyed digests, and the chunk written is not read back.
	assert.is(read, 0, `read ${read} bytes of DST`);
	assert.is(taken(takeOver(paths, {...header(), srcStamp: 'src-stamp-3'})).status, 'used');
});

test("should answer SRC's quick check only for the stamp recorded, and put the cache back only for an unchanged DST", () => {
	const {dir, dstFile, header} = setUp();
	const paths = cachePaths(path.join(dir, 'cache'), fs.statSync(dstFile, {bigint: true}));
	taken(takeOver(paths, header()));
	commit(paths, header());
	const hit = taken(takeOver(paths, header()));
	assert.is(hit.status, CACHE_UNCHANGED);
	assert.ok(hit.unchanged);
	assert.not.ok(fs.existsSync(paths.final), 'out of use while the run lasts');
	assert.not.ok(fs.existsSync(paths.building), 'nothing to build');
	assert.ok(restore(paths, fileIdentity(fs.statSync(dstFile, {bigint: true}))));
	assert.ok(fs.existsSync(paths.final));
	// Recorded-only (--copy, --verify), an empty stamp, another stamp: no quick check.
	assert.is(taken(takeOver(paths, header(), false, true)).status, 'used');
	commit(paths, header());
	assert.is(taken(takeOver(paths, {...header(), srcStamp: 'other'})).status, 'used');
	commit(paths, {...header(), srcStamp: ''});
	assert.is(taken(takeOver(paths, {...header(), srcStamp: ''})).status, 'used');
	commit(paths, header());
	// DST written while the quick-checked run held the cache: it is dropped, not put back.
	taken(takeOver(paths, header()));
	fs.writeFileSync(dstFile, Buffer.alloc(16, 1));
	assert.not.ok(restore(paths, fileIdentity(fs.statSync(dstFile, {bigint: true}))));
	assert.equal(fs.readdirSync(path.dirname(paths.final)), []);
});

test('should say why a cache is stale: DST written behind its back, another hash or block size, a damaged file, an unfinished run', () => {
	const {dir, dstFile, header} = setUp();
	const paths = cachePaths(path.join(dir, 'cache'), fs.statSync(dstFile, {bigint: true}));
	const build = (): void => {
		taken(takeOver(paths, header()));
		commit(paths, header());
	};
	build();
	assert.is(taken(takeOver(paths, {...header(), hash: 'sha256'})).status, 'stale: made with blake3, this run uses sha256');
	build();
	assert.is(taken(takeOver(paths, {...header(), blockSize: 8192})).status, 'stale: made with block size 4096, this run uses 8192');
	build();
	const fd = fs.openSync(dstFile, 'r+');
	fs.writeSync(fd, Buffer.from('x'), 0, 1, 3);
	fs.closeSync(fd);
	assert.is(taken(takeOver(paths, header())).status, 'stale: DST changed since the cache was made (another file, or written by someone else)');
	build();
	fs.truncateSync(paths.final, 5000);
	assert.is(taken(takeOver(paths, header())).status, 'stale: the cache file is truncated or damaged');
	// A run killed after taking the cache over: the next one finds no cache, and says why.
	build();
	taken(takeOver(paths, header()));
	assert.is(taken(takeOver(paths, header())).status, 'stale: the run that was writing it did not finish');
	abandon(paths);
	assert.equal(fs.readdirSync(path.dirname(paths.final)), []);
	assert.is(takeOver(paths, {...header(), blockSize: 512}), 'block size 512 needs 1.58% of the image, more than 0.25%');
});

test('should name the cache after DST: another file of the same size does not find it', () => {
	const {dir, dstFile} = setUp();
	const other = path.join(dir, 'other.img');
	fs.writeFileSync(other, Buffer.alloc(16));
	const a = cachePaths(dir, fs.statSync(dstFile, {bigint: true}));
	const b = cachePaths(dir, fs.statSync(other, {bigint: true}));
	assert.is.not(a.final, b.final);
});

test.run();
