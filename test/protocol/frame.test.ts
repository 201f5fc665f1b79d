import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {encodeFrame, FrameDecoder, MAX_FRAME, ProtocolError} from '../../source/protocol/frame.js';

const test = suite('FrameDecoder');

const frames = [encodeFrame(1, Buffer.from('hello')), encodeFrame(0x16, Buffer.alloc(0)), encodeFrame(0x11, Buffer.alloc(300, 7))];
const stream = Buffer.concat(frames);

test('should return the same frames whatever the split point', () => {
	for (let split = 0; split <= stream.length; split++) {
		const decoder = new FrameDecoder();
		const got = [...decoder.push(stream.subarray(0, split)), ...decoder.push(stream.subarray(split))];
		assert.is(got.length, 3, `split at ${split}`);
		assert.equal(got.map(f => f.type), [1, 0x16, 0x11]);
		assert.is(got[0]!.payload.toString(), 'hello');
		assert.is(got[2]!.payload.length, 300);
		assert.is(decoder.buffered, 0);
		decoder.end();
	}
});

test('should decode a stream fed one byte at a time', () => {
	const decoder = new FrameDecoder();
	const got = [];
	for (const byte of stream) {
		got.push(...decoder.push(Buffer.from([byte])));
	}
	assert.is(got.length, 3);
});

test('should throw on a stream that ends inside a frame, at every truncation point', () => {
	for (let cut = 1; cut < frames[0]!.length; cut++) {
		const decoder = new FrameDecoder();
		assert.equal(decoder.push(frames[0]!.subarray(0, cut)), []);
		assert.throws(() => decoder.end(), (error: unknown) => error instanceof ProtocolError && /ended inside a frame/.test(error.message));
	}
});

test('should refuse a length of 0 and one above the limit', () => {
	assert.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0, 1])), /length 0/);
	const big = Buffer.alloc(5);
	big.writeUInt32BE(MAX_FRAME + 1);
	assert.throws(() => new FrameDecoder().push(big), /exceeds/);
	assert.throws(() => new FrameDecoder(100).push(encodeFrame(1, Buffer.alloc(200))), /exceeds the 100-byte limit/);
	assert.throws(() => encodeFrame(1, Buffer.alloc(MAX_FRAME)), (e: unknown) => e instanceof ProtocolError);
});

test('should never hang or crash on random garbage', () => {
	for (let seed = 1; seed < 500; seed++) {
		const garbage = Buffer.alloc(seed % 64 + 1);
		for (let i = 0; i < garbage.length; i++) {
			garbage[i] = (seed * 131 + i * 7919) & 0xff;
		}
		const decoder = new FrameDecoder(4096);
		try {
			decoder.push(garbage);
			decoder.end();
		} catch (error) {
			assert.ok(error instanceof ProtocolError, String(error));
		}
	}
});

test.run();
