// NbdImage against a real qemu-nbd: the image conformance suite over raw, qcow2 and an export with a 4 KiB
// minimum block, then what only NBD has (zero clusters, the guest view, read-only and named exports, dirty bitmaps).
import {execFileSync} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {CountedImage} from '../../source/image/counted-image.js';
import {NbdImage} from '../../source/image/nbd-image.js';
import {dirtyBitmapContext} from '../../source/nbd/protocol.js';
import {guestView, leftoverServers, qemuImgCreate, qemuImgInfo, qemuImgMap, qemuNbdProblem, type QemuNbd, type QemuNbdOptions, running, startQemuNbd} from '../helpers/qemu-nbd.js';
import {skip} from '../helpers/skip.js';
import {type ImageFactory, imageConformance} from './image-conformance.js';

const problem = qemuNbdProblem();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-nbd-image-'));
process.on('exit', () => fs.rmSync(dir, {recursive: true, force: true}));
let serial = 0;
const MiB = 1024 * 1024;

/** An image over a new file, served by its own qemu-nbd; `prepare` makes the file, `spec` what qemu-nbd opens. */
function nbdFactory(prepare: (file: string, size: number) => void, options: QemuNbdOptions, spec: (file: string) => string = file => file): ImageFactory['create'] {
	return size => {
		const file = path.join(dir, `image${serial++}`);
		prepare(file, size);
		const server = startQemuNbd(spec(file), {unmap: true, ...options});
		const image = NbdImage.open({socket: server.socket, writable: true});
		return {
			image,
			allocated: () => fs.statSync(file).blocks * 512,
			cleanup() {
				image.close();
				server.stop();
				fs.rmSync(file, {force: true});
			},
		};
	};
}

const makeRaw = (file: string, size: number): void => {
	fs.writeFileSync(file, '');
	fs.truncateSync(file, size);
};

if (problem) {
	const skipped = suite('NbdImage over qemu-nbd');
	skipped('should pass the image conformance suite and the NBD tests over qemu-nbd', context => skip(context, problem));
	skipped.run();
} else {
	imageConformance('NBD (qemu-nbd, raw)', {sparse: true, create: nbdFactory(makeRaw, {format: 'raw'})});
	// 4 KiB clusters, so that allocation is as fine as the suite's 4 KiB checks.
	// A qcow2 file's allocation also holds metadata clusters (a zeroed range may allocate an L2 table or a refcount
	// block): its zero clusters are checked with qemu-img below, not through the container's st_blocks.
	imageConformance('NBD (qemu-nbd, qcow2)', {sparse: false, create: nbdFactory((file, size) => qemuImgCreate(file, 'qcow2', size, ['cluster_size=4096']), {format: 'qcow2'})});
	// blkdebug's align makes qemu-nbd advertise a 4 KiB minimum block: unaligned calls become read-modify-write.
	imageConformance('NBD (qemu-nbd, 4 KiB minimum block)', {
		sparse: true,
		create: nbdFactory(makeRaw, {format: 'raw', imageOpts: true}, file => `driver=blkdebug,align=4096,image.driver=file,image.filename=${file}`),
	});
	nbdTests();
}

/** Opens `file` through a qemu-nbd of its own, runs `body`, closes both. */
function withImage<T>(file: string, options: QemuNbdOptions, body: (image: NbdImage, server: QemuNbd) => T, writable = !options.readOnly): T {
	const server = startQemuNbd(file, options);
	try {
		const image = NbdImage.open({socket: server.socket, writable});
		try {
			return body(image, server);
		} finally {
			image.close();
		}
	} finally {
		server.stop();
	}
}

function nbdTests(): void {
	const test = suite('NbdImage over qemu-nbd');

	test('should report the 4 KiB minimum block it honours, and qemu-nbd\'s defaults otherwise', () => {
		const file = path.join(dir, 'aligned.raw');
		makeRaw(file, MiB);
		withImage(`driver=blkdebug,align=4096,image.driver=file,image.filename=${file}`, {format: 'raw', imageOpts: true}, image => {
			assert.is(image.export.minimumBlock, 4096);
			assert.is(image.kind, 'block');
			assert.is(image.size, MiB);
		});
		withImage(file, {format: 'raw'}, image => {
			assert.is(image.export.minimumBlock, 1);
			assert.ok(image.export.contexts.has('base:allocation'));
			assert.ok(image.export.structuredReplies);
			assert.match(image.name, /^nbd\+unix:\/\/\/\?socket=\/.*\/nbd\.sock$/);
		});
	});

	test('should keep a qcow2 small: zero() leaves zero clusters (freeing written ones), zeroAllocated() keeps them allocated', () => {
		const file = path.join(dir, 'zeros.qcow2');
		qemuImgCreate(file, 'qcow2', 256 * MiB);
		withImage(file, {format: 'qcow2', unmap: true}, image => {
			image.write(randomBytes(16 * MiB), 0, 16 * MiB, 0);
			image.write(randomBytes(16 * MiB), 0, 16 * MiB, 64 * MiB);
			image.sync();
			const written = qemuImgInfo(file)['actual-size'];
			assert.ok(written >= 32 * MiB, `actual size ${written} after 32 MiB of data`);
			image.zero(0, 16 * MiB);
			image.zero(128 * MiB, 128 * MiB);
			image.zeroAllocated(64 * MiB, 16 * MiB);
			image.sync();
			assert.equal(image.dataRanges(0, image.size), [], 'everything reads as zeros');
		});
		const info = qemuImgInfo(file);
		assert.is(info['virtual-size'], 256 * MiB);
		assert.ok(info['actual-size'] < 16 * MiB + 2 * MiB, `actual size ${info['actual-size']}: only the NO_HOLE range stays allocated`);
		const map = qemuImgMap(file);
		const at = (offset: number) => map.find(entry => entry.start <= offset && offset < entry.start + entry.length)!;
		for (const offset of [0, 8 * MiB, 128 * MiB, 200 * MiB]) {
			assert.ok(at(offset).zero && !at(offset).data && at(offset).offset === undefined, `${offset}: ${JSON.stringify(at(offset))}`);
		}
		assert.ok(at(64 * MiB).zero && at(64 * MiB).offset !== undefined, `NO_HOLE keeps the clusters: ${JSON.stringify(at(64 * MiB))}`);
	});

	test('should read exactly the guest view (qemu-img convert -O raw) of a qcow2 with a backing file', () => {
		const base = path.join(dir, 'base.qcow2');
		const overlay = path.join(dir, 'overlay.qcow2');
		// qcow2 sizes are whole 512-byte sectors.
		const size = 48 * MiB + 25 * 512;
		qemuImgCreate(base, 'qcow2', size);
		const expected = Buffer.alloc(size);
		const put = (image: NbdImage, position: number, bytes: Buffer): void => {
			image.write(bytes, 0, bytes.length, position);
			bytes.copy(expected, position);
		};
		withImage(base, {format: 'qcow2'}, image => {
			put(image, 0, randomBytes(3 * MiB + 17));
			put(image, 20 * MiB, randomBytes(5 * MiB));
			put(image, size - 1000, randomBytes(1000));
		});
		execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
		withImage(overlay, {format: 'qcow2', unmap: true}, image => {
			put(image, MiB, randomBytes(4096));
			image.zero(21 * MiB, 2 * MiB);
			expected.fill(0, 21 * MiB, 23 * MiB);
			put(image, 40 * MiB + 3, randomBytes(MiB));
		});
		const view = guestView(overlay, 'qcow2');
		const differs = view.findIndex((byte, i) => byte !== expected[i]);
		assert.is(differs, -1, 'the guest view holds what was written');
		withImage(overlay, {format: 'qcow2', readOnly: true}, image => {
			assert.ok(image.readOnly);
			// In 4 MiB batches, only the data ranges, the way the engine reads.
			const got = Buffer.alloc(size);
			for (let at = 0; at < size; at += 4 * MiB) {
				for (const range of image.dataRanges(at, Math.min(size, at + 4 * MiB)) ?? []) {
					image.read(got, range.start, range.end - range.start, range.start);
				}
			}
			assert.ok(got.equals(view), 'data ranges read equal the guest view');
			const whole = Buffer.alloc(size);
			image.read(whole, 0, size, 0);
			assert.ok(whole.equals(view), 'a whole read equals the guest view');
		});
	});

	test('should refuse to write to a read-only export, naming the image, and refuse to open it writable', () => {
		const file = path.join(dir, 'ro.raw');
		makeRaw(file, MiB);
		withImage(file, {format: 'raw', readOnly: true}, image => {
			assert.throws(() => image.write(Buffer.alloc(512, 1), 0, 512, 4096), (error: Error & {code?: string}) =>
				error.message === `${image.name}: write at offset 4096: the NBD export is read-only` && error.code === 'EROFS');
			assert.throws(() => image.zero(0, 4096), /: zero at offset 0: the NBD export is read-only$/);
		});
		const server = startQemuNbd(file, {format: 'raw', readOnly: true});
		try {
			assert.throws(() => NbdImage.open({socket: server.socket, writable: true, name: 'ro.raw'}), (error: Error & {code?: string}) =>
				error.message === 'ro.raw: open: the NBD export is read-only' && error.code === 'EROFS');
		} finally {
			server.stop();
		}
	});

	test('should open a named export and name an unknown one in the error', () => {
		const file = path.join(dir, 'named.raw');
		makeRaw(file, MiB);
		const server = startQemuNbd(file, {format: 'raw', persistent: true, args: ['-x', 'disk0']});
		try {
			assert.throws(() => NbdImage.open({socket: server.socket, exportName: 'other'}), (error: Error & {code?: string}) =>
				/^nbd\+unix:\/\/\/other\?socket=.*: open: the NBD server refused the export "other": NBD_REP_ERR_UNKNOWN/.test(error.message) && error.code === 'ENOENT');
			const image = NbdImage.open({socket: server.socket, exportName: 'disk0'});
			assert.is(image.size, MiB);
			image.close();
		} finally {
			server.stop();
		}
	});

	test('should select a qemu dirty bitmap as a metadata context and report its dirty extents', () => {
		const file = path.join(dir, 'bitmap.qcow2');
		qemuImgCreate(file, 'qcow2', 16 * MiB);
		execFileSync('qemu-img', ['bitmap', '--add', '-g', '65536', file, 'b0']);
		execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 7 1M 64k', '-c', 'write -P 8 5M 200k', file]);
		const context = dirtyBitmapContext('b0');
		const server = startQemuNbd(file, {format: 'qcow2', readOnly: true, args: ['-B', 'b0']});
		try {
			const image = NbdImage.open({socket: server.socket, extraContexts: [context]});
			try {
				assert.ok(image.export.contexts.has(context), `contexts: ${[...image.export.contexts.keys()].join(', ')}`);
				const dirty = image.extents(0, image.size, context).filter(span => span.flags & 1).map(span => [span.start, span.end]);
				assert.equal(dirty, [[MiB, MiB + 65_536], [5 * MiB, 5 * MiB + 256 * 1024]]);
				assert.equal(image.dataRanges(0, image.size), [{start: MiB, end: MiB + 65_536}, {start: 5 * MiB, end: 5 * MiB + 200 * 1024}]);
			} finally {
				image.close();
			}
		} finally {
			server.stop();
		}
	});

	test('should fail, not hang, when the server dies, and after that fail at once', () => {
		const file = path.join(dir, 'dies.raw');
		makeRaw(file, MiB);
		const server = startQemuNbd(file, {format: 'raw', persistent: true});
		const image = NbdImage.open({socket: server.socket, timeoutMs: 20_000});
		try {
			process.kill(server.pid, 'SIGKILL');
			for (const until = Date.now() + 3000; running(server.pid) && Date.now() < until;) {
				Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
			}
			const started = Date.now();
			assert.throws(() => image.read(Buffer.alloc(4096), 0, 4096, 0), (error: Error & {code?: string}) =>
				error.message.startsWith(`${image.name}: read at offset 0: `) && /closed the connection|ECONNRESET|EPIPE/.test(error.message));
			assert.throws(() => image.read(Buffer.alloc(4096), 0, 4096, 0), /closed the connection|ECONNRESET|EPIPE/);
			assert.ok(Date.now() - started < 10_000, 'no wait for the timeout');
		} finally {
			image.close();
			server.stop();
		}
	});

	test('should fetch scattered hinted ranges ahead in few round trips and serve reads behind its front from them, a 4 KiB minimum block too', () => {
		const file = path.join(dir, 'scattered.raw');
		const bytes = randomBytes(80 * MiB);
		fs.writeFileSync(file, bytes);
		// 32 ranges of 1 MiB and a bit, 2 MiB apart (the chunks a dirty bitmap marks), unaligned ends included.
		const ranges = Array.from({length: 32}, (_, index) => ({start: index * 2 * MiB + (index % 3) * 1000, end: index * 2 * MiB + MiB + (index % 5) * 512}));
		const spec = `driver=blkdebug,align=4096,image.driver=file,image.filename=${file}`;
		for (const [name, options] of [['raw', {format: 'raw', readOnly: true}], ['blkdebug align=4096', {format: 'raw', readOnly: true, imageOpts: true}]] as const) {
			withImage(options.imageOpts ? spec : file, options, image => {
				const counted = new CountedImage(image);
				image.readAhead(ranges);
				const before = image.handoffs;
				for (const range of ranges) {
					const got = Buffer.alloc(range.end - range.start);
					image.read(got, 0, got.length, range.start);
					assert.ok(got.equals(bytes.subarray(range.start, range.end)), `${name}: the bytes of [${range.start}, ${range.end})`);
				}
				// 8 MiB a fetch: about 8 ranges each, not one round trip per range.
				assert.ok(image.handoffs - before <= 5, `${name}: ${image.handoffs - before} round trips for 32 ranges`);
				// Fetched: the hinted bytes from the first range's start to the end of the last.
				const hinted = ranges.reduce((sum, range) => sum + range.end - range.start, 0);
				assert.is(counted.bytesRead, hinted, `${name}: the bytes read from the export`);
				// SOURCE sending the blocks DEST asked for, behind its front: from memory.
				const again = image.handoffs;
				for (const range of [...ranges].reverse()) {
					const got = Buffer.alloc(range.end - range.start - 100);
					image.read(got, 0, got.length, range.start + 100);
					assert.ok(got.equals(bytes.subarray(range.start + 100, range.end)), `${name}: the bytes of [${range.start + 100}, ${range.end}) again`);
				}
				assert.is(image.handoffs, again, `${name}: re-reads behind the front`);
				assert.is(counted.bytesRead, hinted, `${name}: re-reads from memory are no reads of the export (srcBytesRead)`);
				// Outside the hint, as asked: bytes right, one round trip.
				const outside = Buffer.alloc(4096);
				image.read(outside, 0, 4096, 70 * MiB + 10);
				assert.ok(outside.equals(bytes.subarray(70 * MiB + 10, 70 * MiB + 4106)));
				assert.is(image.handoffs, again + 1);
				assert.is(counted.bytesRead, hinted + 4096);
			}, false);
		}
	});

	test('should forget what it fetched ahead once it is written, and once it falls out of the kept buffers', () => {
		const file = path.join(dir, 'ahead.raw');
		const bytes = randomBytes(64 * MiB);
		fs.writeFileSync(file, bytes);
		withImage(file, {format: 'raw'}, image => {
			image.readAhead([{start: 0, end: 64 * MiB}]);
			const got = Buffer.alloc(MiB);
			image.read(got, 0, MiB, 0);
			assert.ok(got.equals(bytes.subarray(0, MiB)));
			const written = randomBytes(MiB);
			image.write(written, 0, MiB, 2 * MiB);
			image.read(got, 0, MiB, 2 * MiB);
			assert.ok(got.equals(written), 'a read after a write sees the write, not what was fetched before it');
			written.copy(bytes, 2 * MiB);
			image.readAhead([{start: 0, end: 64 * MiB}]);
			for (let at = 0; at < 64 * MiB; at += MiB) {
				image.read(got, 0, MiB, at);
				assert.ok(got.equals(bytes.subarray(at, at + MiB)), `the MiB at ${at}`);
			}
			// The first MiB's fetch has been dropped for later ones (40 MiB kept): read again, right.
			const before = image.handoffs;
			image.read(got, 0, MiB, 0);
			assert.ok(got.equals(bytes.subarray(0, MiB)));
			assert.is(image.handoffs, before + 1);
		});
	});

	test('should leave no qemu-nbd running once every test has stopped its server', () => {
		assert.equal(leftoverServers(), []);
	});

	test.run();
}
