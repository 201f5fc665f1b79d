// NbdClient against scripted servers on a Unix socket: what qemu-nbd never does (no NBD_OPT_GO, no structured
// replies, broken or hostile replies, refusals). The real server is in test/image/nbd-image.test.ts.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {NbdClient, NbdError} from '../../source/nbd/client.js';
import {CMD, NbdProtocolError, OPT, REP, REPLY_FLAG_DONE, REPLY_TYPE, TFLAG} from '../../source/nbd/protocol.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-nbd-client-'));
process.on('exit', () => fs.rmSync(dir, {recursive: true, force: true}));
let serial = 0;

type Request = {type: number; flags: number; cookie: bigint; offset: number; length: number; data?: Buffer};

/** What a scripted server does: answer each option, then each request, on `socket`. */
type Script = {
	greetingFlags?: number;
	option(socket: net.Socket, option: number, data: Buffer): void;
	request(socket: net.Socket, request: Request): void;
};

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number): Buffer => {
	const b = Buffer.alloc(4);
	b.writeUInt32BE(n >>> 0);
	return b;
};
const u64 = (n: number | bigint): Buffer => {
	const b = Buffer.alloc(8);
	b.writeBigUInt64BE(BigInt(n));
	return b;
};

function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
	return Buffer.concat([u64(0x3e889045565a9n), u32(option), u32(type), u32(data.length), data]);
}

function chunk(flags: number, type: number, cookie: bigint, payload: Buffer): Buffer {
	return Buffer.concat([u32(0x668e33ef), u16(flags), u16(type), u64(cookie), u32(payload.length), payload]);
}

function simple(cookie: bigint, error: number, data: Buffer = Buffer.alloc(0)): Buffer {
	return Buffer.concat([u32(0x67446698), u32(error), u64(cookie), data]);
}

const SIZE = 1 << 20;
const FLAGS = TFLAG.HAS_FLAGS | TFLAG.SEND_FLUSH | TFLAG.SEND_WRITE_ZEROES | TFLAG.SEND_TRIM;

/** NBD_OPT_GO's successful reply: the export's size and flags, then ACK. */
function go(socket: net.Socket): void {
	socket.write(optionReply(OPT.GO, REP.INFO, Buffer.concat([u16(0), u64(SIZE), u16(FLAGS)])));
	socket.write(optionReply(OPT.GO, REP.ACK));
}

/** A server speaking the script; records every option and request it received. */
async function serve(script: Script): Promise<{socket: string; options: number[]; requests: Request[]; close(): Promise<void>}> {
	const socketPath = path.join(dir, `s${serial++}.sock`);
	const options: number[] = [];
	const requests: Request[] = [];
	const server = net.createServer(socket => {
		socket.on('error', () => {});
		socket.write(Buffer.concat([u64(0x4e42444d41474943n), u64(0x49484156454f5054n), u16(script.greetingFlags ?? 3)]));
		let pending = Buffer.alloc(0);
		let phase: 'flags' | 'options' | 'transmission' = 'flags';
		socket.on('data', data => {
			pending = Buffer.concat([pending, data]);
			for (;;) {
				if (phase === 'flags') {
					if (pending.length < 4) {
						return;
					}
					pending = pending.subarray(4);
					phase = 'options';
				} else if (phase === 'options') {
					if (pending.length < 16 || pending.length < 16 + pending.readUInt32BE(12)) {
						return;
					}
					const option = pending.readUInt32BE(8);
					const body = pending.subarray(16, 16 + pending.readUInt32BE(12));
					pending = pending.subarray(16 + body.length);
					options.push(option);
					script.option(socket, option, body);
					if (option === OPT.EXPORT_NAME || (option === OPT.GO && !socket.destroyed && optionsDone.has(socket))) {
						phase = 'transmission';
					}
				} else {
					if (pending.length < 28) {
						return;
					}
					const request: Request = {flags: pending.readUInt16BE(4), type: pending.readUInt16BE(6), cookie: pending.readBigUInt64BE(8), offset: Number(pending.readBigUInt64BE(16)), length: pending.readUInt32BE(24)};
					const total = 28 + (request.type === CMD.WRITE ? request.length : 0);
					if (pending.length < total) {
						return;
					}
					if (request.type === CMD.WRITE) {
						request.data = Buffer.from(pending.subarray(28, total));
					}
					pending = pending.subarray(total);
					requests.push(request);
					if (request.type === CMD.DISC) {
						socket.end();
						return;
					}
					script.request(socket, request);
				}
			}
		});
	});
	await new Promise<void>(resolve => server.listen(socketPath, resolve));
	return {socket: socketPath, options, requests, close: () => new Promise(resolve => server.close(() => resolve()))};
}

/** Sockets whose NBD_OPT_GO was answered with ACK (the script marks them). */
const optionsDone = new WeakSet<net.Socket>();

/** A structured server whose READ replies come from `read`. */
function structured(read: (socket: net.Socket, request: Request) => void): Script {
	return {
		option(socket, option) {
			if (option === OPT.STRUCTURED_REPLY) {
				socket.write(optionReply(option, REP.ACK));
			} else if (option === OPT.SET_META_CONTEXT) {
				socket.write(optionReply(option, REP.META_CONTEXT, Buffer.concat([u32(5), Buffer.from('base:allocation')])));
				socket.write(optionReply(option, REP.ACK));
			} else if (option === OPT.GO) {
				optionsDone.add(socket);
				go(socket);
			}
		},
		request(socket, request) {
			if (request.type === CMD.READ) {
				read(socket, request);
			} else {
				socket.write(simple(request.cookie, 0));
			}
		},
	};
}

const test = suite('NbdClient against scripted servers');

test('should fall back to NBD_OPT_EXPORT_NAME and simple replies on a server without GO or structured replies', async () => {
	const content = Buffer.from(Array.from({length: SIZE}, (_, i) => (i * 31) & 0xff));
	const server = await serve({
		option(socket, option) {
			if (option === OPT.EXPORT_NAME) {
				socket.write(Buffer.concat([u64(SIZE), u16(FLAGS)])); // NO_ZEROES agreed: no 124 zero bytes.
			} else {
				socket.write(optionReply(option, REP.ERR_UNSUP));
			}
		},
		request(socket, request) {
			if (request.type === CMD.READ) {
				socket.write(simple(request.cookie, 0, content.subarray(request.offset, request.offset + request.length)));
			} else if (request.type === CMD.WRITE) {
				request.data!.copy(content, request.offset);
				socket.write(simple(request.cookie, 0));
			} else {
				socket.write(simple(request.cookie, request.type === CMD.TRIM ? 5 : 0));
			}
		},
	});
	const client = await NbdClient.connect({socket: server.socket, readRequestBytes: 64 * 1024});
	try {
		assert.equal(server.options, [OPT.STRUCTURED_REPLY, OPT.GO, OPT.EXPORT_NAME], 'no SET_META_CONTEXT without structured replies');
		assert.is(client.info.structuredReplies, false);
		assert.is(client.info.size, SIZE);
		assert.is(client.info.contexts.size, 0);
		await client.write(1000, Buffer.alloc(5000, 0xab));
		const back = Buffer.alloc(300_000);
		await client.read(100, back.length, back);
		assert.ok(back.equals(content.subarray(100, 100 + back.length)));
		assert.is(server.requests.filter(r => r.type === CMD.READ).length, 5, 'split into 64 KiB requests');
		await client.flush();
		await client.trim(0, 4096).then(() => assert.unreachable('trim should fail'), (error: NbdError) => {
			assert.is(error.message, 'NBD trim at offset 0: EIO');
			assert.is(error.code, 'EIO');
		});
		await client.blockStatus(0, 4096).then(() => assert.unreachable(), (error: Error) => assert.match(error.message, /selected no metadata context/));
	} finally {
		await client.disconnect();
		await server.close();
	}
	assert.is(server.requests[server.requests.length - 1]!.type, CMD.DISC);
});

test('should pass an error chunk on as the request\'s error and keep the connection', async () => {
	let first = true;
	const server = await serve(structured((socket, request) => {
		if (first) {
			first = false;
			socket.write(chunk(REPLY_FLAG_DONE, REPLY_TYPE.ERROR, request.cookie, Buffer.concat([u32(28), u16(9), Buffer.from('disk full')])));
		} else {
			socket.write(chunk(0, REPLY_TYPE.OFFSET_HOLE, request.cookie, Buffer.concat([u64(request.offset), u32(request.length - 10)])));
			socket.write(chunk(REPLY_FLAG_DONE, REPLY_TYPE.OFFSET_DATA, request.cookie, Buffer.concat([u64(request.offset + request.length - 10), Buffer.alloc(10, 9)])));
		}
	}));
	const client = await NbdClient.connect({socket: server.socket});
	try {
		assert.is(client.info.contexts.get('base:allocation'), 5);
		await client.read(0, 100, Buffer.alloc(100)).then(() => assert.unreachable(), (error: NbdError) => {
			assert.is(error.message, 'NBD read at offset 0: ENOSPC (disk full)');
			assert.is(error.code, 'ENOSPC');
		});
		const back = Buffer.alloc(100, 0xee);
		await client.read(4096, 100, back);
		assert.ok(back.subarray(0, 90).every(b => b === 0) && back.subarray(90).every(b => b === 9));
	} finally {
		await client.disconnect();
		await server.close();
	}
});

/** Each broken READ reply, and the protocol error the client must end the connection with. */
const broken: Array<[string, (socket: net.Socket, request: Request) => void, RegExp]> = [
	['data outside the request', (s, r) => s.write(chunk(REPLY_FLAG_DONE, REPLY_TYPE.OFFSET_DATA, r.cookie, Buffer.concat([u64(r.offset + 1), Buffer.alloc(r.length)]))), /outside the read/],
	['overlapping chunks', (s, r) => {
		s.write(chunk(0, REPLY_TYPE.OFFSET_HOLE, r.cookie, Buffer.concat([u64(r.offset), u32(r.length)])));
		s.write(chunk(REPLY_FLAG_DONE, REPLY_TYPE.OFFSET_DATA, r.cookie, Buffer.concat([u64(r.offset), Buffer.alloc(1)])));
	}, /overlapping NBD content chunks/],
	['success without all the data', (s, r) => s.write(chunk(REPLY_FLAG_DONE, REPLY_TYPE.OFFSET_HOLE, r.cookie, Buffer.concat([u64(r.offset), u32(r.length - 1)]))), /no content for \[4095, 4096\)/],
	['a reply to no request', (s, r) => s.write(chunk(REPLY_FLAG_DONE, REPLY_TYPE.NONE, r.cookie + 1n, Buffer.alloc(0))), /which no request in flight has/],
	['a simple reply to a structured READ', (s, r) => s.write(simple(r.cookie, 0)), /simple reply to NBD_CMD_READ/],
	['an unknown chunk type', (s, r) => s.write(chunk(REPLY_FLAG_DONE, 77, r.cookie, Buffer.alloc(0))), /unexpected NBD reply chunk of type 77/],
	['a bad magic', s => s.write(Buffer.alloc(32, 0x41)), /bad magic 0x41414141/],
];

for (const [what, reply, pattern] of broken) {
	test(`should end the connection on ${what}, failing the read and every later request`, async () => {
		const server = await serve(structured(reply));
		const client = await NbdClient.connect({socket: server.socket});
		try {
			await client.read(0, 4096, Buffer.alloc(4096)).then(() => assert.unreachable('read should fail'), (error: Error) => {
				assert.ok(error instanceof NbdProtocolError, String(error));
				assert.match(error.message, pattern);
			});
			await client.flush().then(() => assert.unreachable('flush should fail'), (error: Error) => assert.match(error.message, pattern));
		} finally {
			await client.disconnect();
			await server.close();
		}
	});
}

test('should end a refused handshake with NBD_OPT_ABORT and name the export and the server\'s reason', async () => {
	const server = await serve({
		option(socket, option) {
			if (option === OPT.GO) {
				socket.write(optionReply(option, REP.ERR_UNKNOWN, Buffer.from("export 'x' not present")));
			} else if (option !== OPT.ABORT) {
				socket.write(optionReply(option, option === OPT.STRUCTURED_REPLY ? REP.ACK : REP.ERR_UNSUP));
			} else {
				socket.end(optionReply(option, REP.ACK));
			}
		},
		request() {},
	});
	try {
		await NbdClient.connect({socket: server.socket, exportName: 'x'}).then(() => assert.unreachable(), (error: NbdError) => {
			assert.is(error.message, 'the NBD server refused the export "x": NBD_REP_ERR_UNKNOWN (export \'x\' not present)');
			assert.is(error.code, 'ENOENT');
		});
		for (const until = Date.now() + 2000; !server.options.includes(OPT.ABORT) && Date.now() < until;) {
			await new Promise(resolve => setTimeout(resolve, 10));
		}
		assert.equal(server.options, [OPT.STRUCTURED_REPLY, OPT.SET_META_CONTEXT, OPT.GO, OPT.ABORT]);
	} finally {
		await server.close();
	}
});

test('should refuse a server that is not fixed newstyle, and one that goes away during the handshake', async () => {
	const plain = await serve({greetingFlags: 0, option() {}, request() {}});
	await NbdClient.connect({socket: plain.socket}).then(() => assert.unreachable(), (error: Error) => assert.is(error.message, 'the NBD server does not support the fixed newstyle handshake'));
	await plain.close();
	const leaving = await serve({option: socket => socket.destroy(), request() {}});
	await NbdClient.connect({socket: leaving.socket}).then(() => assert.unreachable(), (error: Error) => assert.is(error.message, 'the NBD server closed the connection during the handshake'));
	await leaving.close();
	await NbdClient.connect({socket: path.join(dir, 'none.sock')}).then(() => assert.unreachable(), (error: Error & {code?: string}) => {
		assert.match(error.message, /^NBD server at .*none\.sock: connect ENOENT/);
		assert.is(error.code, 'ENOENT');
	});
});

test.run();
