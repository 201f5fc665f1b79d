import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {FrameDecoder, ProtocolError} from '../../source/protocol/frame.js';
import {baseCounters, countersFromTuple, countersTuple, decode, encode, type Message, OpenFlag, openFlagBits, openFlags, Role} from '../../source/protocol/messages.js';

const test = suite('encode/decode');

const digest = Buffer.alloc(32, 9);
const samples: Message[] = [
	{type: 'hello', protocol: 1, caps: 1, program: '0.1.0', hashes: 'blake3,sha256'},
	{type: 'open', role: Role.dest, flags: 17, blockSize: 4096, compress: 1, srcSize: 2 ** 40 + 3, start: 0, end: 2 ** 40 + 3, hash: 'blake3', path: '/tmp/a b;$(touch x)', srcIdentity: 'c3d6a1e0-7f2b-4d3e-9a1b-2c3d4e5f6a7b:2049:12:0:file'},
	{type: 'open', role: Role.dest, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 4096, end: 8192, hash: 'blake3', path: '/dev/x', srcIdentity: '', holder: 'c3d6a1e0-7f2b-4d3e-9a1b-2c3d4e5f6a7b:4242:23'},
	{type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: 'vm.qcow2', srcIdentity: '', format: 'qcow2'},
	{type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: 'vm.qcow2', srcIdentity: '', holder: '/tmp/rblocksync-nbd-x/nbd.sock', format: 'qcow2'},
	{type: 'open', role: Role.source, flags: 16, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: '/dev/pve/vm-100-disk-0', srcIdentity: '', qmp: '/var/run/qemu-server/100.qmp'},
	{type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: 'vm.qcow2', srcIdentity: '', holder: 'nbd+unix:///rblocksync-1-2-3-s?socket=/tmp/x/nbd.sock', qmp: '/run/vm.qmp'},
	{type: 'open', role: Role.source, flags: 16, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: 'vm.qcow2', srcIdentity: '', format: 'qcow2', locking: 'off'},
	{type: 'open', role: Role.dest, flags: 80, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: '/dev/loop3', srcIdentity: '', cacheDir: '/srv/rbs cache', trustCache: '0.5'},
	{type: 'open', role: Role.dest, flags: 80, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: 'vm.img', srcIdentity: '', cacheDir: 'relative/dir'},
	{type: 'opened', size: 123, kind: 2, dstExtraBytes: 4096, identity: ''},
	{type: 'opened', size: 123, kind: 2, dstExtraBytes: 0, identity: 'b:1:2:0:file', server: '/tmp/rblocksync-nbd-x/nbd.sock'},
	{type: 'error', kind: 1, message: 'open /x: ENOENT (no such file or directory)'},
	{type: 'warn', message: 'holes will be written as zeros: native helper unavailable'},
	{type: 'cache', status: 'stale: made with blake3, this run uses sha256'},
	{type: 'cache', status: 'used', bytesRead: 8 * 1024 * 1024},
	{type: 'credit', granted: 4_000_000_000},
	{type: 'chunk', offset: 1 << 20, length: 1 << 20, digest},
	{type: 'zero', offset: 0, length: 2 ** 45},
	{type: 'subs', offset: 0, digests: Buffer.alloc(128, 3)},
	{type: 'want', offset: 0, mask: 0x8001},
	{type: 'blocks', offset: 0, mask: 3, digests: Buffer.alloc(256, 4)},
	{type: 'data', offset: 4096, data: Buffer.from('data')},
	{type: 'dataz', offset: 4096, length: 65_536, deflated: Buffer.from([1, 2, 3])},
	{type: 'diff', offset: 8192, length: 4096},
	{type: 'chunkEnd', offset: 0},
	{type: 'full', offset: 0},
	{type: 'sourceEnd', blocksZero: 77},
	{type: 'stats', counters: [1, 2, 3, 4, 5, 6, 7, 8]},
	{type: 'done', counters: [8, 7, 6, 5, 4, 3, 2, 1]},
	{type: 'stats', counters: [1, 2, 3, 4, 5, 6, 7, 8, 2 ** 41, 2 ** 40]},
	{type: 'done', counters: [8, 7, 6, 5, 4, 3, 2, 1, 9, 10]},
	{type: 'empty'},
	{type: 'chunkSubs', offset: 3 << 20, length: 1 << 20, digest: Buffer.alloc(32, 7), subs: Buffer.alloc(128, 5)},
	// A wide session's worker OPEN: the session string after every other trailing one (written empty).
	{type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: '/dev/loop3', srcIdentity: '', session: 'wide'},
	{type: 'key', key: Buffer.alloc(32, 7)},
	{type: 'checkpoint', offset: 2 ** 40 + (1 << 20)},
	{type: 'open', role: Role.source, flags: 16, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 0, hash: 'blake3', path: 'vm.img', srcIdentity: '', version: 'file:2049:12:8192:1700000000000000001:1700000000000000002'},
	{type: 'opened', size: 8192, kind: 1, dstExtraBytes: 0, identity: 'b:1:2:0:file', version: 'file:2049:12:8192:1:2'},
];

test('should round-trip every message type', () => {
	for (const message of samples) {
		const [frame] = new FrameDecoder().push(encode(message));
		assert.equal(decode(frame!), message, message.type);
	}
});

test('should round-trip a stream of all messages split at every offset', () => {
	const stream = Buffer.concat(samples.map(encode));
	for (let split = 0; split <= stream.length; split += 1) {
		const decoder = new FrameDecoder();
		const got = [...decoder.push(stream.subarray(0, split)), ...decoder.push(stream.subarray(split))].map(decode);
		assert.equal(got, samples);
	}
});

test('should refuse truncated payloads, trailing bytes and unknown types with a ProtocolError', () => {
	for (const message of samples) {
		const [frame] = new FrameDecoder().push(encode(message));
		if (frame!.payload.length > 0 && !['data', 'dataz', 'subs', 'blocks', 'chunkSubs'].includes(message.type) && !(message.type === 'open' && message.session !== undefined)) {
			assert.throws(() => decode({type: frame!.type, payload: frame!.payload.subarray(0, -1)}), (e: unknown) => e instanceof ProtocolError, message.type);
			assert.throws(() => decode({type: frame!.type, payload: Buffer.concat([frame!.payload, Buffer.from([0])])}), (e: unknown) => e instanceof ProtocolError, message.type);
		}
	}
	assert.throws(() => decode({type: 0x7f, payload: Buffer.alloc(0)}), /unknown frame type 0x7f/);
	assert.throws(() => decode({type: 0x23, payload: Buffer.alloc(8 + 4 + 32 + 12)}), /chunkSubs: digest list of 12 bytes is not a multiple of 8/);
	assert.throws(() => decode({type: 0x23, payload: Buffer.alloc(8 + 4 + 31)}), (e: unknown) => e instanceof ProtocolError);
	assert.throws(() => decode({type: 0x13, payload: Buffer.alloc(8 + 5)}), /not a multiple of 8/);
	assert.throws(() => decode({type: 0x02, payload: encode(samples[1]!).subarray(5).fill(9, 0, 1)}), /unknown role 9/);
});

test('should read STATS and DONE of eight counters (a peer without the read counters) as 0 bytes read, and refuse nine', () => {
	const ten = countersTuple({bytesScanned: 1, blocksChanged: 2, blocksZero: 3, blocksPunched: 4, bytesWritten: 5, bytesPunched: 6, wireBytesSent: 7, wireBytesReceived: 8, srcBytesRead: 9, dstBytesRead: 10});
	assert.equal(ten, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
	const [frame] = new FrameDecoder().push(encode({type: 'done', counters: baseCounters(ten)}));
	assert.is(frame!.payload.length, 64, 'protocol 1 DONE: eight u64');
	const message = decode(frame!);
	assert.equal(message.type === 'done' && countersFromTuple(message.counters), {...countersFromTuple(ten), srcBytesRead: 0, dstBytesRead: 0});
	assert.throws(() => decode({type: 0x1c, payload: Buffer.alloc(72)}), /stats: 72 bytes of counters, not 64 or 80/);
});

test('should refuse garbage payloads without crashing', () => {
	for (let type = 0; type < 0x20; type++) {
		for (let length = 0; length < 40; length++) {
			try {
				decode({type, payload: Buffer.alloc(length, 0xff)});
			} catch (error) {
				assert.ok(error instanceof ProtocolError, String(error));
			}
		}
	}
});

function frameOf(bytes: Buffer): {type: number; payload: Buffer} {
	const [frame] = new FrameDecoder().push(bytes);
	return frame!;
}

test('should round-trip OPEN flags, drop cache (bit 5), cache (bit 6) and keyed (bit 7) included', () => {
	const all = {truncate: true, dryRun: true, copy: true, force: true, prepare: true, dropCache: true, cache: true, keyed: true};
	assert.is(openFlagBits(all), 255);
	assert.equal(openFlags(255), all);
	assert.equal(openFlags(OpenFlag.dropCache | OpenFlag.keyed), {truncate: false, dryRun: false, copy: false, force: false, prepare: false, dropCache: true, cache: false, keyed: true});
});

test('should carry --bitmap in OPEN and the pass record in OPENED after the optional strings before them, and SKIP', () => {
	const open: Message = {type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: '/x.qcow2', srcIdentity: '', format: 'qcow2', bitmap: 'b0'};
	assert.equal(decode(frameOf(encode(open))), open);
	const commit: Message = {...open, bitmap: 'b0', pass: '{"dst":"d","stamp":"s"}'};
	assert.equal(decode(frameOf(encode(commit))), commit);
	// Without a bitmap the frame is what it was: no trailing empty strings.
	const plain: Message = {type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: '/x', srcIdentity: ''};
	assert.is(encode({...plain, bitmap: undefined}).length, encode(plain).length);
	const opened: Message = {type: 'opened', size: 1, kind: 2, dstExtraBytes: 0, identity: 'x', pass: 'file:1:2:3:4:5'};
	assert.equal(decode(frameOf(encode(opened))), opened);
	const skip: Message = {type: 'skip', offset: 1 << 20, length: 3 << 20};
	assert.equal(decode(frameOf(encode(skip))), skip);
	assert.is(encode(skip)[4], 0x20);
});

test('should keep OPEN and OPENED without a format or server byte for byte what older agents read', () => {
	const open: Message = {type: 'open', role: Role.dest, flags: 0, blockSize: 4096, compress: 0, srcSize: 8192, start: 0, end: 8192, hash: 'blake3', path: '/dev/x', srcIdentity: ''};
	const formatted = encode({...open, format: 'qcow2'});
	// The format follows an empty holder, so an older agent's decoder (one optional string) refuses the frame rather than ignoring the format.
	assert.is(formatted.length, encode(open).length + 2 + 2 + 'qcow2'.length);
	// qmp follows the four strings before it (empty): an agent that does not know --qmp refuses the frame.
	assert.is(encode({...open, qmp: '/run/vm.qmp'}).length, encode(open).length + 4 * 2 + 2 + '/run/vm.qmp'.length);
	const opened: Message = {type: 'opened', size: 1, kind: 1, dstExtraBytes: 0, identity: 'x'};
	assert.is(encode({...opened, server: 's'}).length, encode(opened).length + 3);
});

test.run();
