// The backend contract: one table of cases run through the one orchestrator against every backend —
// local byte comparison, the digest protocol in-process over memory images, over worker threads, and over SSH.
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import type {SyncBackend} from '../../source/engine/backend.js';
import type {Reporter, Summary} from '../../source/engine/progress.js';
import type {MemoryImage as MemoryImageType} from '../../source/image/memory-image.js';
import type {Link} from '../../source/remote/link.js';
import {makeTempDir, MiB, prng, removeTempDir} from '../helpers/images.js';
import {memoryOpener} from '../helpers/memory-role.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
// The built modules: worker threads, the agent bundle to upload and the native helper are found beside them.
const dist = async <T>(module: string): Promise<T> => import(pathToFileURL(path.join(root, 'dist', module)).href) as Promise<T>;
const {runSync} = await dist<typeof import('../../source/engine/run-sync.js')>('engine/run-sync.js');
const {LocalBackend} = await dist<typeof import('../../source/engine/local-backend.js')>('engine/local-backend.js');
const {RemoteBackend} = await dist<typeof import('../../source/remote/remote-backend.js')>('remote/remote-backend.js');
const {InProcessLink} = await dist<typeof import('../../source/remote/link.js')>('remote/link.js');
const {exitCodeOf, UsageError} = await dist<typeof import('../../source/errors.js')>('errors.js');
const {MemoryImage} = await dist<typeof import('../../source/image/memory-image.js')>('image/memory-image.js');

type Flags = {truncate?: boolean; dryRun?: boolean; copy?: boolean; blockSize?: number; workers?: number; cache?: boolean};

/** Where the two images live and how the backend under test reaches them. */
type Variant = {
	readonly name: string;
	reset(): void;
	put(which: 'src' | 'dst', content: Buffer | undefined): void;
	get(which: 'src' | 'dst'): Buffer | undefined;
	allocated(which: 'src' | 'dst'): number;
	/** Makes the next run's DST fail with ENOSPC after about 1 MiB written. */
	failDst(size: number): void;
	backend(flags: Required<Flags>): SyncBackend;
	/** The backend keeps DEST's digest cache of a DST file (the digest protocol over files). */
	readonly caches: boolean;
};

/** The digest caches of these runs, apart from the host's (a cache left for a deleted DST would find the next file on its inode stale). */
const cacheDir = makeTempDir('rbs-contract-cache-');
const remoteDefaults = {cacheDir, compress: {mode: 'off', level: 0} as const, force: false, port: undefined, identity: undefined, acceptNewHostKey: false, trace: false, localThreads: true, uploadAgent: true, keepaliveMs: 15_000, hash: 'blake3'};

/** Both images as sparse files in a temp dir; `endpoint` says how the backend reaches a path. */
function fileVariant(name: string, make: (src: string, dst: string, flags: Required<Flags>) => SyncBackend, caches: boolean): Variant {
	let dir = '';
	let dst = '';
	const file = (which: 'src' | 'dst'): string => (which === 'src' ? path.join(dir, 'src.img') : dst);
	return {
		name,
		reset() {
			if (dir) {
				unmount(path.join(dir, 'small'));
				removeTempDir(dir);
			}
			dir = makeTempDir(`rbs-contract-${name}-`);
			dst = path.join(dir, 'dst.img');
		},
		put(which, content) {
			const target = file(which);
			fs.rmSync(target, {force: true});
			if (content) {
				writeSparse(target, content);
			}
		},
		get: which => (fs.existsSync(file(which)) ? fs.readFileSync(file(which)) : undefined),
		allocated: which => fs.statSync(file(which)).blocks * 512,
		failDst(size) {
			const small = path.join(dir, 'small');
			fs.mkdirSync(small);
			const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.max(1, Math.floor(size / MiB / 2))}m`, 'tmpfs', small], {encoding: 'utf8'});
			assert.is(mount.status, 0, `mount tmpfs: ${mount.stderr}`);
			dst = path.join(small, 'dst.img');
		},
		backend: flags => make(file('src'), file('dst'), flags),
		caches,
	};
}

/** Unmounts the small tmpfs of failDst, if any, waiting up to 10 s for the last run's agents to let go of it. */
function unmount(mountPoint: string): void {
	// /proc/self/mounts writes a space in a path as \040 (the variants' names have spaces).
	const listed = mountPoint.replace(/ /g, '\\040');
	const mounted = (): boolean => fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some(line => line.split(' ')[1] === listed);
	for (let tries = 0; mounted() && tries < 100; tries++) {
		if (spawnSync('umount', [mountPoint]).status !== 0) {
			Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
		}
	}
}

/** Writes content leaving its all-zero 4 KiB pages as holes. */
function writeSparse(file: string, content: Buffer): void {
	const fd = fs.openSync(file, 'w');
	try {
		fs.ftruncateSync(fd, content.length);
		for (let at = 0; at < content.length; at += 4096) {
			const page = content.subarray(at, at + 4096);
			if (page.some(byte => byte !== 0)) {
				fs.writeSync(fd, page, 0, page.length, at);
			}
		}
	} finally {
		fs.closeSync(fd);
	}
}

/** A memory image whose writes fail with ENOSPC once `limit` bytes were written. */
function failingImage(name: string, size: number, limit: number): MemoryImageType {
	const image = new MemoryImage(name, size);
	let written = 0;
	const write = image.write.bind(image);
	image.write = (buffer, offset, length, position) => {
		written += length;
		if (written > limit) {
			throw Object.assign(new Error(`write ${name}: no space left on device`), {code: 'ENOSPC'});
		}
		write(buffer, offset, length, position);
	};
	return image;
}

const memoryVariant = ((): Variant => {
	let images = new Map<string, MemoryImageType>();
	return {
		name: 'digest protocol in-process, memory images',
		reset() {
			images = new Map();
		},
		put(which, content) {
			if (content) {
				images.set(which, MemoryImage.from(which, content));
			} else {
				images.delete(which);
			}
		},
		get: which => (images.has(which) ? Buffer.from(images.get(which)!.content) : undefined),
		allocated: which => images.get(which)!.allocatedBytes,
		failDst(size) {
			images.set('dst', failingImage('dst', size, MiB));
		},
		backend(flags) {
			const opener = memoryOpener(images, UsageError);
			return new RemoteBackend({
				...remoteDefaults, ...flags, src: {kind: 'local', path: 'src'}, dst: {kind: 'local', path: 'dst'}, srcName: 'src', dstName: 'dst',
			}, (): Link => new InProcessLink(opener));
		},
		caches: false,
	};
})();

let sshd: Sshd;
const variants: Variant[] = [
	fileVariant('local byte comparison', (src, dst, flags) => new LocalBackend(src, dst, {...flags, force: false}), false),
	memoryVariant,
	fileVariant('digest protocol over worker threads', (src, dst, flags) => new RemoteBackend({
		...remoteDefaults, ...flags, src: {kind: 'local', path: src}, dst: {kind: 'local', path: dst}, srcName: src, dstName: dst,
	}), true),
	fileVariant('digest protocol over SSH (push)', (src, dst, flags) => new RemoteBackend({
		...remoteDefaults, ...flags, src: {kind: 'local', path: src}, dst: {kind: 'remote', host: 'pve', path: dst}, srcName: src, dstName: `pve:${dst}`,
	}), true),
	fileVariant('digest protocol over SSH (pull)', (src, dst, flags) => new RemoteBackend({
		...remoteDefaults, ...flags, src: {kind: 'remote', host: 'pve', path: src}, dst: {kind: 'local', path: dst}, srcName: `pve:${src}`, dstName: dst,
	}), true),
];

/** Random data with zero runs (holes when written sparse), deterministic per seed. */
function content(size: number, seed: number): Buffer {
	const random = prng(seed);
	const buffer = Buffer.alloc(size);
	for (let at = 0; at < size; at += 4096) {
		if (random() < 0.6) {
			for (let i = at; i < Math.min(size, at + 4096); i++) {
				buffer[i] = Math.floor(random() * 256);
			}
		}
	}
	return buffer;
}

/** Changes `count` blocks of a copy of `base`. */
function changed(base: Buffer, count: number, seed: number, blockSize = 4096): Buffer {
	const random = prng(seed);
	const out = Buffer.from(base);
	for (let i = 0; i < count; i++) {
		const at = Math.floor(random() * Math.floor(out.length / blockSize)) * blockSize;
		out[at] = (out[at]! + 1) % 256;
	}
	return out;
}

type Outcome = {summary: Summary | undefined; error: unknown};

async function sync(variant: Variant, flags: Flags = {}, onStart?: (controller: AbortController) => void): Promise<Outcome> {
	const full: Required<Flags> = {truncate: false, dryRun: false, copy: false, blockSize: 4096, workers: 2, cache: false, ...flags};
	const controller = new AbortController();
	let summary: Summary | undefined;
	const reporter: Reporter = {start: () => onStart?.(controller), progress() {}, warn() {}, finish: s => void (summary = s)};
	try {
		await runSync(variant.backend(full), {...full, verify: false, hash: 'blake3'}, reporter, controller.signal);
		return {summary, error: undefined};
	} catch (error) {
		return {summary, error};
	}
}

function ok(variant: Variant, outcome: Outcome): Summary {
	assert.is(outcome.error, undefined, `${variant.name}: ${String(outcome.error)}`);
	return outcome.summary!;
}

function sameDst(variant: Variant, expected: Buffer): void {
	const got = variant.get('dst');
	assert.ok(got && got.equals(expected), `${variant.name}: DST differs from SRC`);
}

const contract = suite('backend contract');

contract.before(async () => {
	sshd = await startSshd();
	// The SSH variants connect from this process: the test sshd's HOME holds ~/.ssh/config and the keys.
	process.env['HOME'] = sshd.home;
	delete process.env['SSH_AUTH_SOCK'];
});

contract.after(async () => {
	for (const variant of variants) {
		variant.reset();
	}
	await sshd.stop();
	removeTempDir(cacheDir);
});

for (const variant of variants) {
	contract(`${variant.name}: should make a first copy keeping holes, then find nothing to do`, async () => {
		variant.reset();
		const src = content(6 * MiB + 1000, 1);
		variant.put('src', src);
		const first = ok(variant, await sync(variant, {truncate: true}));
		sameDst(variant, src);
		assert.ok(variant.allocated('dst') <= variant.allocated('src') + 64 * 1024, `${variant.name}: DST allocated ${variant.allocated('dst')} vs SRC ${variant.allocated('src')}`);
		assert.is(first.size, src.length);
		const again = ok(variant, await sync(variant));
		assert.is(again.blocksChanged, 0);
		assert.is(again.bytesWritten, 0);
		assert.is(again.bytesScanned, src.length);
	});

	contract(`${variant.name}: should count the bytes it reads of each image: none of a new DST, holes never, both images in a dry run`, async () => {
		variant.reset();
		const src = content(6 * MiB + 1000, 21);
		const data = countBytes(src, page => page.some(byte => byte !== 0));
		variant.put('src', src);
		const first = ok(variant, await sync(variant, {truncate: true}));
		sameDst(variant, src);
		assert.is(first.dstBytesRead, 0, `${variant.name}: a first copy into a new DST reads none of it`);
		assert.ok(first.srcBytesRead >= data && first.srcBytesRead <= variant.allocated('src') + 64 * 1024 && first.srcBytesRead < src.length,
			`${variant.name}: read ${first.srcBytesRead} bytes of SRC, which holds ${data} bytes of data in ${src.length}`);
		assert.is(first.bytesScanned, src.length, `${variant.name}: bytesScanned stays the logical bytes compared`);
		const changedSrc = changed(src, 5, 22);
		variant.put('src', changedSrc);
		const dry = ok(variant, await sync(variant, {dryRun: true}));
		sameDst(variant, src);
		assert.ok(dry.srcBytesRead >= data && dry.srcBytesRead <= src.length, `${variant.name}: dry run read ${dry.srcBytesRead} of SRC`);
		assert.ok(dry.dstBytesRead >= data && dry.dstBytesRead <= src.length, `${variant.name}: dry run read ${dry.dstBytesRead} of DST`);
		const real = ok(variant, await sync(variant));
		sameDst(variant, changedSrc);
		assert.ok(real.dstBytesRead >= data && real.dstBytesRead <= src.length + MiB, `${variant.name}: read ${real.dstBytesRead} of DST`);
		const copy = ok(variant, await sync(variant, {copy: true}));
		sameDst(variant, changedSrc);
		assert.is(copy.dstBytesRead, 0, `${variant.name}: --copy reads none of DST`);
	});

	contract(`${variant.name}: should read less of DST with its digest cache than without it`, async () => {
		variant.reset();
		const base = content(8 * MiB, 23);
		const data = countBytes(base, page => page.some(byte => byte !== 0));
		variant.put('src', base);
		variant.put('dst', changed(base, 40, 24));
		const built = ok(variant, await sync(variant, {cache: true}));
		sameDst(variant, base);
		const once = changed(base, 3, 25);
		variant.put('src', once);
		const cached = ok(variant, await sync(variant, {cache: true}));
		sameDst(variant, once);
		const twice = changed(once, 3, 26);
		variant.put('src', twice);
		const uncached = ok(variant, await sync(variant, {cache: false}));
		sameDst(variant, twice);
		assert.ok(uncached.dstBytesRead >= data, `${variant.name}: without the cache read ${uncached.dstBytesRead} of DST's ${data} bytes of data`);
		if (!variant.caches) {
			// This backend keeps no cache (yet): the cached run read DST as any run does.
			assert.ok(cached.dstBytesRead >= data, `${variant.name}: read ${cached.dstBytesRead}`);
			return;
		}
		assert.is(built.cache, 'built');
		assert.is(cached.cache, 'used');
		// Three changed blocks: at most three 1 MiB chunks read back, never the rest.
		assert.ok(cached.dstBytesRead <= 3 * MiB && cached.dstBytesRead < uncached.dstBytesRead / 2,
			`${variant.name}: with the cache read ${cached.dstBytesRead} of DST, without it ${uncached.dstBytesRead}`);
		assert.ok(cached.srcBytesRead >= data, `${variant.name}: SRC is read in full (${cached.srcBytesRead})`);
	});

	contract(`${variant.name}: should write exactly the changed blocks, and punch data that became zero`, async () => {
		variant.reset();
		const base = content(8 * MiB, 2);
		variant.put('dst', base);
		const src = changed(base, 20, 3);
		src.fill(0, 2 * MiB, 3 * MiB);
		variant.put('src', src);
		const zeroedData = countBlocks(base, 2 * MiB, 3 * MiB, block => block.some(byte => byte !== 0));
		const summary = ok(variant, await sync(variant));
		sameDst(variant, src);
		assert.ok(summary.blocksChanged >= zeroedData && summary.blocksChanged <= 20 + zeroedData, `${variant.name}: ${summary.blocksChanged} changed`);
		assert.ok(summary.blocksPunched >= 1, `${variant.name}: nothing punched`);
	});

	contract(`${variant.name}: should count in a dry run what a real run then changes, writing nothing`, async () => {
		variant.reset();
		const base = content(4 * MiB, 4);
		const src = changed(base, 9, 5);
		variant.put('src', src);
		variant.put('dst', base);
		const dry = ok(variant, await sync(variant, {dryRun: true}));
		sameDst(variant, base);
		const real = ok(variant, await sync(variant));
		sameDst(variant, src);
		assert.is(dry.blocksChanged, real.blocksChanged);
		assert.ok(real.blocksChanged > 0);
	});

	contract(`${variant.name}: should grow and shrink DST with --truncate, and refuse another size without it`, async () => {
		variant.reset();
		const src = content(3 * MiB + 512, 6);
		variant.put('src', src);
		const small = content(MiB, 7);
		variant.put('dst', small);
		const refused = await sync(variant);
		assert.is(exitCodeOf(refused.error), 1, `${variant.name}: ${String(refused.error)}`);
		sameDst(variant, small);
		ok(variant, await sync(variant, {truncate: true}));
		sameDst(variant, src);
		variant.put('dst', content(5 * MiB, 8));
		ok(variant, await sync(variant, {truncate: true}));
		sameDst(variant, src);
	});

	contract(`${variant.name}: should overwrite everything in copy mode, zeros included`, async () => {
		variant.reset();
		const src = content(4 * MiB, 9);
		variant.put('src', src);
		variant.put('dst', Buffer.alloc(4 * MiB, 0xaa));
		ok(variant, await sync(variant, {copy: true}));
		sameDst(variant, src);
	});

	for (const [blockSize, size] of [[512, 2 * MiB + 3], [65_536, 5 * MiB + 4097], [4096, 1]] as const) {
		contract(`${variant.name}: should sync with ${blockSize}-byte blocks an image of ${size} bytes`, async () => {
			variant.reset();
			const base = content(size, 10);
			const src = changed(base, Math.min(5, size), 11, Math.min(blockSize, size));
			variant.put('src', src);
			variant.put('dst', base);
			ok(variant, await sync(variant, {blockSize, workers: 3}));
			sameDst(variant, src);
		});
	}

	contract(`${variant.name}: should fail with exit 2 when DST cannot be written, saying DST may be partially updated`, async () => {
		variant.reset();
		const src = content(8 * MiB, 12);
		variant.put('src', src);
		variant.failDst(src.length);
		const outcome = await sync(variant, {truncate: true, workers: 1});
		assert.is(exitCodeOf(outcome.error), 2, `${variant.name}: ${String(outcome.error)}`);
		assert.match(String(outcome.error), /DST may be partially updated/);
		assert.ok(outcome.summary && !outcome.summary.ok, `${variant.name}: the summary must say the run failed`);
	});

	contract(`${variant.name}: should stop with exit 130 when cancelled, leaving SRC's bytes where it wrote`, async () => {
		variant.reset();
		const src = content(16 * MiB, 13);
		variant.put('src', src);
		variant.put('dst', Buffer.alloc(src.length));
		const outcome = await sync(variant, {}, controller => controller.abort());
		assert.is(exitCodeOf(outcome.error), 130, `${variant.name}: ${String(outcome.error)}`);
		assert.match(String(outcome.error), /interrupted; DST may be partially updated/);
		const dst = variant.get('dst')!;
		assert.is(dst.length, src.length);
		ok(variant, await sync(variant));
		sameDst(variant, src);
	});
}

/** Bytes of the 4 KiB pages of buffer for which test holds. */
function countBytes(buffer: Buffer, test: (page: Buffer) => boolean): number {
	let count = 0;
	for (let at = 0; at < buffer.length; at += 4096) {
		const page = buffer.subarray(at, at + 4096);
		count += test(page) ? page.length : 0;
	}
	return count;
}

function countBlocks(buffer: Buffer, start: number, end: number, test: (block: Buffer) => boolean): number {
	let count = 0;
	for (let at = start; at < end; at += 4096) {
		count += test(buffer.subarray(at, Math.min(end, at + 4096))) ? 1 : 0;
	}
	return count;
}

contract.run();
