import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {NbdProtocolError, REPLY_FLAG_DONE, REPLY_TYPE} from '../../source/nbd/protocol.js';
import {decodeBlockStatus, decodeError, decodeOffsetData, decodeOffsetHole, type Reply, ReplyDecoder} from '../../source/nbd/reply-codec.js';

const hex = (bytes: Buffer): string => bytes.toString('hex');

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
			() => decodeBlockStatus(garbage),
			() => decodeOffsetData(garbage),
			() => decodeOffsetHole(garbage),
			() => decodeError(seed % 2 ? REPLY_TYPE.ERROR : REPLY_TYPE.ERROR_OFFSET, garbage),
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
