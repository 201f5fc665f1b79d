import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {
	CMD, CMD_FLAG, decodeBlockStatus, decodeError, decodeInfo, decodeMetaContext, decodeOffsetData, decodeOffsetHole, dirtyBitmapContext,
	encodeClientFlags, encodeExportName, encodeGo, encodeMetaContext, encodeOption, encodeRequest, errnoCode, HandshakeDecoder,
	type HandshakeMessage, INFO, NbdProtocolError, OPT, REP, type Reply, REPLY_FLAG_DONE, REPLY_TYPE, ReplyDecoder,
} from '../../source/image/nbd-protocol.js';

const hex = (bytes: Buffer): string => bytes.toString('hex');

const encode = suite('NBD encoders');

encode('should lay out a request header as the spec says (magic, flags, type, cookie, offset, length)', () => {
	const bytes = encodeRequest({type: CMD.WRITE_ZEROES, flags: CMD_FLAG.NO_HOLE, cookie: 0x0102030405, offset: 2 ** 40 + 7, length: 0xfffffffe});
	assert.is(hex(bytes), '25609513' + '0002' + '0006' + '0000000102030405' + '0000010000000007' + 'fffffffe');
	assert.is(hex(encodeRequest({type: CMD.DISC, cookie: 9})), '25609513000000020000000000000009' + '0'.repeat(16) + '00000000');
});

encode('should lay out options: IHAVEOPT, option, length, data', () => {
	assert.is(hex(encodeOption(OPT.STRUCTURED_REPLY)), '49484156454f5054' + '00000008' + '00000000');
	assert.is(hex(encodeClientFlags(3)), '00000003');
	assert.is(hex(encodeExportName('ab')), '49484156454f5054' + '00000001' + '00000002' + '6162');
	// GO: name length, name, number of info requests, the requests.
	assert.is(hex(encodeGo('disk', [INFO.BLOCK_SIZE])), '49484156454f5054' + '00000007' + '0000000c' + '00000004' + hex(Buffer.from('disk')) + '0001' + '0003');
	assert.is(hex(encodeGo('', [])), '49484156454f5054' + '00000007' + '00000006' + '00000000' + '0000');
});

encode('should lay out NBD_OPT_SET_META_CONTEXT: export name, number of queries, each query with its length', () => {
	const bitmap = dirtyBitmapContext('b0');
	assert.is(bitmap, 'qemu:dirty-bitmap:b0');
	const bytes = encodeMetaContext('x', ['base:allocation', bitmap]);
	const data = '00000001' + hex(Buffer.from('x')) + '00000002' + '0000000f' + hex(Buffer.from('base:allocation')) + '00000014' + hex(Buffer.from(bitmap));
	assert.is(hex(bytes), '49484156454f5054' + '0000000a' + (data.length / 2).toString(16).padStart(8, '0') + data);
	assert.is(hex(encodeMetaContext('', [])), '49484156454f5054' + '0000000a' + '00000008' + '00000000' + '00000000');
});

encode('should refuse an export name longer than 4096 bytes or holding NUL', () => {
	assert.throws(() => encodeGo('x'.repeat(4097), []), /at most 4096 bytes/);
	assert.throws(() => encodeExportName('a\0b'), /without NUL/);
});

encode('should map NBD error values to errno codes, unknown ones to EINVAL', () => {
	assert.equal([1, 5, 12, 22, 28, 75, 95, 108, 9999].map(errnoCode), ['EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'ENOTSUP', 'ESHUTDOWN', 'EINVAL']);
});

encode.run();

/** A server's option reply. */
function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
	const head = Buffer.alloc(20);
	head.writeBigUInt64BE(0x3e889045565a9n, 0);
	head.writeUInt32BE(option, 8);
	head.writeUInt32BE(type, 12);
	head.writeUInt32BE(data.length, 16);
	return Buffer.concat([head, data]);
}

function greeting(flags: number): Buffer {
	const bytes = Buffer.alloc(18);
	bytes.writeBigUInt64BE(0x4e42444d41474943n, 0);
	bytes.writeBigUInt64BE(0x49484156454f5054n, 8);
	bytes.writeUInt16BE(flags, 16);
	return bytes;
}

function infoExport(size: number, flags: number): Buffer {
	const bytes = Buffer.alloc(12);
	bytes.writeUInt16BE(INFO.EXPORT, 0);
	bytes.writeBigUInt64BE(BigInt(size), 2);
	bytes.writeUInt16BE(flags, 10);
	return bytes;
}

function infoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
	const bytes = Buffer.alloc(14);
	bytes.writeUInt16BE(INFO.BLOCK_SIZE, 0);
	bytes.writeUInt32BE(minimum, 2);
	bytes.writeUInt32BE(preferred, 6);
	bytes.writeUInt32BE(maximum, 10);
	return bytes;
}

const metaContext = (id: number, name: string): Buffer => Buffer.concat([Buffer.from([id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff]), Buffer.from(name)]);

const handshakeStream = Buffer.concat([
	greeting(3),
	optionReply(OPT.STRUCTURED_REPLY, REP.ACK),
	optionReply(OPT.SET_META_CONTEXT, REP.META_CONTEXT, metaContext(7, 'base:allocation')),
	optionReply(OPT.SET_META_CONTEXT, REP.ACK),
	optionReply(OPT.GO, REP.INFO, infoExport(2 ** 33 + 512, 0x0ded)),
	optionReply(OPT.GO, REP.INFO, infoBlockSize(512, 4096, 2 ** 25)),
	optionReply(OPT.GO, REP.ACK),
]);

function describe(messages: HandshakeMessage[]): string[] {
	return messages.map(m => m.kind === 'greeting' ? `greeting ${m.flags}` : m.kind === 'export' ? `export ${m.size} ${m.flags}` : `reply ${m.option} ${m.type} ${hex(m.data)}`);
}

const handshake = suite('NBD HandshakeDecoder');
const expectedHandshake = describe(new HandshakeDecoder().push(handshakeStream));

handshake('should decode the greeting and every option reply', () => {
	assert.is(expectedHandshake.length, 7);
	assert.is(expectedHandshake[0], 'greeting 3');
	const info = decodeInfo(Buffer.from(expectedHandshake[4]!.split(' ')[3]!, 'hex'));
	assert.equal(info, {type: 'export', export: {size: 2 ** 33 + 512, flags: 0x0ded}});
	assert.equal(decodeInfo(infoBlockSize(512, 4096, 2 ** 25)), {type: 'block-size', blockSize: {minimum: 512, preferred: 4096, maximum: 2 ** 25}});
	assert.equal(decodeMetaContext(metaContext(7, 'base:allocation')), {id: 7, name: 'base:allocation'});
});

handshake('should return the same messages whatever the split point', () => {
	for (let split = 0; split <= handshakeStream.length; split++) {
		const decoder = new HandshakeDecoder();
		const got = [...decoder.push(handshakeStream.subarray(0, split)), ...decoder.push(handshakeStream.subarray(split))];
		assert.equal(describe(got), expectedHandshake, `split at ${split}`);
		assert.is(decoder.buffered, 0);
	}
});

handshake('should decode a stream fed one byte at a time, and at every pair of split points', () => {
	const decoder = new HandshakeDecoder();
	const got: HandshakeMessage[] = [];
	for (const byte of handshakeStream) {
		got.push(...decoder.push(Buffer.from([byte])));
	}
	assert.equal(describe(got), expectedHandshake);
	for (let a = 0; a < handshakeStream.length; a += 3) {
		for (let b = a; b <= handshakeStream.length; b += 5) {
			const pair = new HandshakeDecoder();
			const all = [a, b].reduce<[HandshakeMessage[], number]>(([out, from], to) => [[...out, ...pair.push(handshakeStream.subarray(from, to))], to], [[], 0]);
			assert.equal(describe([...all[0], ...pair.push(handshakeStream.subarray(b))]), expectedHandshake, `splits ${a} ${b}`);
		}
	}
});

handshake('should decode the reply to NBD_OPT_EXPORT_NAME with and without its 124 zero bytes', () => {
	for (const noZeroes of [true, false]) {
		const reply = Buffer.alloc(noZeroes ? 10 : 134);
		reply.writeBigUInt64BE(4096n, 0);
		reply.writeUInt16BE(1, 8);
		// The server answers only once the client has sent NBD_OPT_EXPORT_NAME (and so has called expectExportReply).
		for (let split = 0; split <= reply.length; split++) {
			const decoder = new HandshakeDecoder();
			const first = decoder.push(greeting(3));
			decoder.expectExportReply(noZeroes);
			const got = [...first, ...decoder.push(reply.subarray(0, split)), ...decoder.push(reply.subarray(split))];
			assert.equal(describe(got), ['greeting 3', 'export 4096 1'], `split ${split}`);
			assert.is(decoder.buffered, 0);
		}
	}
});

handshake('should refuse a server that is not NBD, an oldstyle one, a bad reply magic and an oversized reply', () => {
	const isProtocol = (pattern: RegExp) => (error: unknown) => error instanceof NbdProtocolError && pattern.test(error.message);
	assert.throws(() => new HandshakeDecoder().push(Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian\r\n')), isProtocol(/not an NBD server/));
	const oldstyle = greeting(0);
	oldstyle.writeBigUInt64BE(0x00420281861253n, 8);
	assert.throws(() => new HandshakeDecoder().push(oldstyle), isProtocol(/oldstyle servers are not supported/));
	const bad = optionReply(OPT.GO, REP.ACK);
	bad.writeUInt8(bad[0]! ^ 1, 0);
	assert.throws(() => new HandshakeDecoder().push(Buffer.concat([greeting(1), bad])), isProtocol(/bad magic in an NBD option reply/));
	assert.throws(() => new HandshakeDecoder(100).push(Buffer.concat([greeting(1), optionReply(OPT.GO, REP.INFO, Buffer.alloc(101))])), isProtocol(/exceeds the 100-byte limit/));
});

handshake('should validate NBD_REP_INFO payloads and ignore unknown information types', () => {
	assert.throws(() => decodeInfo(infoExport(1, 1).subarray(0, 11)), /NBD_INFO_EXPORT of 11 bytes \(must be 12\)/);
	assert.throws(() => decodeInfo(infoBlockSize(3, 4096, 2 ** 25)), /invalid NBD block size constraints 3\/4096\/33554432/);
	assert.throws(() => decodeInfo(infoBlockSize(512, 4096, 100)), /invalid NBD block size constraints/);
	assert.is(decodeInfo(Buffer.from([0, 99, 1, 2])), undefined);
	assert.equal(decodeInfo(Buffer.concat([Buffer.from([0, 1]), Buffer.from('disk')])), {type: 'name', text: 'disk'});
	assert.throws(() => decodeInfo(Buffer.from([0])), /shorter than its type/);
	assert.throws(() => decodeMetaContext(Buffer.from([0, 0])), /shorter than its id/);
});

handshake.run();

function chunk(flags: number, type: number, cookie: number, payload: Buffer): Buffer {
	const head = Buffer.alloc(20);
	head.writeUInt32BE(0x668e33ef, 0);
	head.writeUInt16BE(flags, 4);
	head.writeUInt16BE(type, 6);
	head.writeBigUInt64BE(BigInt(cookie), 8);
	head.writeUInt32BE(payload.length, 16);
	return Buffer.concat([head, payload]);
}

function simple(cookie: number, error: number, data: Buffer = Buffer.alloc(0)): Buffer {
	const head = Buffer.alloc(16);
	head.writeUInt32BE(0x67446698, 0);
	head.writeUInt32BE(error, 4);
	head.writeBigUInt64BE(BigInt(cookie), 8);
	return Buffer.concat([head, data]);
}

const u64 = (value: number): Buffer => {
	const bytes = Buffer.alloc(8);
	bytes.writeBigUInt64BE(BigInt(value));
	return bytes;
};
const u32 = (value: number): Buffer => {
	const bytes = Buffer.alloc(4);
	bytes.writeUInt32BE(value);
	return bytes;
};

const data = Buffer.from(Array.from({length: 700}, (_, i) => (i * 13) & 0xff));
const replyStream = Buffer.concat([
	chunk(0, REPLY_TYPE.OFFSET_DATA, 1, Buffer.concat([u64(2 ** 36), data])),
	chunk(0, REPLY_TYPE.OFFSET_HOLE, 1, Buffer.concat([u64(2 ** 36 + 700), u32(4096)])),
	simple(2, 0),
	chunk(REPLY_FLAG_DONE, REPLY_TYPE.NONE, 1, Buffer.alloc(0)),
	chunk(REPLY_FLAG_DONE, REPLY_TYPE.BLOCK_STATUS, 3, Buffer.concat([u32(0), u32(65_536), u32(3), u32(512), u32(0)])),
	chunk(REPLY_FLAG_DONE, REPLY_TYPE.ERROR_OFFSET, 4, Buffer.concat([u32(5), Buffer.from([0, 3]), Buffer.from('bad'), u64(1024)])),
	simple(5, 0, Buffer.from('simple read data')),
	simple(6, 28),
]);
/** Cookie 5 is a READ of 16 bytes without structured replies. */
const readLength = (cookie: number): number => cookie === 5 ? 16 : 0;

function summary(replies: Reply[]): string[] {
	return replies.map(r => r.kind === 'simple' ? `simple ${r.cookie} ${r.error} ${r.data?.toString() ?? ''}` : `chunk ${r.cookie} ${r.flags} ${r.type} ${r.payload.length} ${hex(r.payload.subarray(0, 12))}`);
}

const replies = suite('NBD ReplyDecoder');
const expectedReplies = summary(new ReplyDecoder(readLength).push(replyStream));

replies('should decode structured chunks and simple replies, with a READ\'s data where one is expected', () => {
	assert.is(expectedReplies.length, 8);
	const all = new ReplyDecoder(readLength).push(replyStream);
	const first = all[0]!;
	assert.ok(first.kind === 'chunk');
	const read = decodeOffsetData(first.payload);
	assert.is(read.offset, 2 ** 36);
	assert.ok(read.data.equals(data));
	assert.equal(decodeOffsetHole((all[1] as Reply & {kind: 'chunk'}).payload), {offset: 2 ** 36 + 700, length: 4096});
	assert.equal(decodeBlockStatus((all[4] as Reply & {kind: 'chunk'}).payload), {contextId: 0, extents: [{length: 65_536, flags: 3}, {length: 512, flags: 0}]});
	assert.equal(decodeError(REPLY_TYPE.ERROR_OFFSET, (all[5] as Reply & {kind: 'chunk'}).payload), {error: 5, message: 'bad', offset: 1024});
	assert.is(expectedReplies[6], 'simple 5 0 simple read data');
	assert.is(expectedReplies[7], 'simple 6 28 ');
});

replies('should return the same replies whatever the split point', () => {
	for (let split = 0; split <= replyStream.length; split++) {
		const decoder = new ReplyDecoder(readLength);
		const got = [...decoder.push(replyStream.subarray(0, split)), ...decoder.push(replyStream.subarray(split))];
		assert.equal(summary(got), expectedReplies, `split at ${split}`);
		decoder.end();
	}
});

replies('should decode a stream fed one byte at a time', () => {
	const decoder = new ReplyDecoder(readLength);
	const got: Reply[] = [];
	for (const byte of replyStream) {
		got.push(...decoder.push(Buffer.from([byte])));
	}
	assert.equal(summary(got), expectedReplies);
});

replies('should throw on a stream that ends inside a reply, at every truncation point', () => {
	for (let cut = 1; cut < replyStream.length; cut++) {
		const decoder = new ReplyDecoder(readLength);
		decoder.push(replyStream.subarray(0, cut));
		if (decoder.buffered > 0) {
			assert.throws(() => decoder.end(), (error: unknown) => error instanceof NbdProtocolError && /ended inside a reply/.test(error.message));
		}
	}
});

replies('should refuse a bad magic and a chunk above the payload limit', () => {
	assert.throws(() => new ReplyDecoder().push(Buffer.from('HTTP/1.1 200 OK\r\n')), /bad magic 0x48545450 in an NBD reply/);
	assert.throws(() => new ReplyDecoder(undefined, 100).push(chunk(0, 1, 1, Buffer.alloc(101))), /NBD reply chunk of 101 bytes exceeds the 100-byte limit/);
});

replies('should check the lengths of every chunk payload type', () => {
	assert.throws(() => decodeOffsetData(Buffer.alloc(8)), /at least 9/);
	assert.throws(() => decodeOffsetHole(Buffer.alloc(11)), /must be 12/);
	assert.throws(() => decodeOffsetHole(Buffer.alloc(12)), /length 0/);
	assert.throws(() => decodeBlockStatus(Buffer.alloc(4)), /positive multiple of 8/);
	assert.throws(() => decodeBlockStatus(Buffer.alloc(13)), /positive multiple of 8/);
	assert.throws(() => decodeBlockStatus(Buffer.alloc(12)), /extent of length 0/);
	assert.throws(() => decodeError(REPLY_TYPE.ERROR, Buffer.alloc(5)), /at least 6/);
	assert.throws(() => decodeError(REPLY_TYPE.ERROR, Buffer.concat([u32(5), Buffer.from([0, 9]), Buffer.from('ab')])), /overruns/);
	assert.throws(() => decodeError(REPLY_TYPE.ERROR_OFFSET, Buffer.concat([u32(5), Buffer.from([0, 0])])), /without its offset/);
	assert.equal(decodeError(0x8123, Buffer.concat([u32(22), Buffer.from([0, 1]), Buffer.from('x'), Buffer.alloc(3)])), {error: 22, message: 'x'});
	assert.throws(() => decodeOffsetHole(Buffer.concat([u64(2 ** 60), u32(1)])), /beyond 2\^53/);
});

replies('should never hang or crash on random garbage, nor its payload decoders', () => {
	for (let seed = 1; seed < 2000; seed++) {
		const garbage = Buffer.alloc(seed % 97 + 1);
		for (let i = 0; i < garbage.length; i++) {
			garbage[i] = (seed * 131 + i * 7919 + ((seed * i) >> 3)) & 0xff;
		}
		// Valid magics in front, so the garbage reaches the length and payload fields too.
		if (seed % 3 === 0 && garbage.length >= 4) {
			garbage.writeUInt32BE(seed % 2 ? 0x668e33ef : 0x67446698, 0);
		}
		const attempts: Array<() => unknown> = [
			() => {
				const decoder = new ReplyDecoder(() => seed % 50, 4096);
				decoder.push(garbage);
				decoder.end();
			},
			() => {
				const decoder = new HandshakeDecoder(4096);
				decoder.push(Buffer.concat([greeting(1), garbage]));
			},
			() => decodeInfo(garbage),
			() => decodeBlockStatus(garbage),
			() => decodeOffsetData(garbage),
			() => decodeOffsetHole(garbage),
			() => decodeError(seed % 2 ? REPLY_TYPE.ERROR : REPLY_TYPE.ERROR_OFFSET, garbage),
			() => decodeMetaContext(garbage),
		];
		for (const attempt of attempts) {
			try {
				attempt();
			} catch (error) {
				assert.ok(error instanceof NbdProtocolError, String(error));
			}
		}
	}
});

replies.run();
