import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {decodeInfo, decodeMetaContext, HandshakeDecoder, type HandshakeMessage} from '../../source/nbd/handshake-codec.js';
import {INFO, NbdProtocolError, OPT, REP} from '../../source/nbd/protocol.js';

const hex = (bytes: Buffer): string => bytes.toString('hex');

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

handshake('should never hang or crash on random garbage after a greeting, nor its payload decoders', () => {
	for (let seed = 1; seed < 2000; seed++) {
		const garbage = Buffer.alloc(seed % 97 + 1);
		for (let i = 0; i < garbage.length; i++) {
			garbage[i] = (seed * 131 + i * 7919 + ((seed * i) >> 3)) & 0xff;
		}
		if (seed % 3 === 0 && garbage.length >= 8) {
			garbage.writeBigUInt64BE(0x3e889045565a9n, 0);
		}
		for (const attempt of [() => new HandshakeDecoder(4096).push(Buffer.concat([greeting(1), garbage])), () => decodeInfo(garbage), () => decodeMetaContext(garbage)]) {
			try {
				attempt();
			} catch (error) {
				assert.ok(error instanceof NbdProtocolError, String(error));
			}
		}
	}
});

handshake.run();
