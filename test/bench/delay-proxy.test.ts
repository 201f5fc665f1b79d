import {createHash, randomBytes} from 'node:crypto';
import {createServer, connect, type Server, type Socket} from 'node:net';
import {performance} from 'node:perf_hooks';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {startDelayProxy} from '../../bench/wan/delay-proxy.js';

const proxy = suite('startDelayProxy');

async function listen(onConnection: (socket: Socket) => void): Promise<{server: Server; port: number}> {
	const server = createServer({allowHalfOpen: true}, onConnection);
	await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()));
	const address = server.address();
	assert.ok(typeof address === 'object' && address);
	return {server, port: address.port};
}

async function dial(port: number): Promise<Socket> {
	const socket = connect({host: '127.0.0.1', port, allowHalfOpen: true});
	await new Promise<void>((resolve, reject) => {
		socket.once('connect', resolve);
		socket.once('error', reject);
	});
	return socket;
}

const once = async (socket: Socket, event: string): Promise<unknown> => new Promise(resolve => socket.once(event, resolve));

proxy('should delay each direction by RTT/2 and a new connection\'s first bytes by the TCP handshake', async () => {
	const arrivals: number[] = [];
	const {server, port} = await listen(socket => socket.on('data', (chunk: Buffer) => {
		arrivals.push(performance.now());
		socket.write(chunk);
	}));
	const link = await startDelayProxy({host: '127.0.0.1', port}, {rttMs: 100, rate: 0});
	try {
		const client = await dial(link.port);
		const opened = performance.now();
		client.write('a');
		await once(client, 'data');
		const first = performance.now() - opened;
		// Connect (1 RTT), then the request and the answer (1 RTT).
		assert.ok(first >= 199 && first < 240, `first answer after ${first.toFixed(1)} ms, expected 200`);
		for (let ping = 0; ping < 3; ping++) {
			const sent = performance.now();
			client.write('b');
			await once(client, 'data');
			const rtt = performance.now() - sent;
			const oneWay = arrivals.at(-1)! - sent;
			assert.ok(rtt >= 99 && rtt < 125, `round trip ${rtt.toFixed(1)} ms, expected 100`);
			assert.ok(oneWay >= 49 && oneWay < 65, `one way ${oneWay.toFixed(1)} ms, expected 50`);
		}
		client.destroy();
	} finally {
		await link.stop();
		server.close();
	}
});

proxy('should limit each direction to its rate within 10%', async () => {
	const rate = 4 * 1024 * 1024;
	const up = 4 * 1024 * 1024;
	const down = 2 * 1024 * 1024;
	let upFirst = 0;
	let upLast = 0;
	let upBytes = 0;
	const {server, port} = await listen(socket => {
		socket.on('data', (chunk: Buffer) => {
			upFirst ||= performance.now();
			upLast = performance.now();
			upBytes += chunk.length;
		});
		socket.end(randomBytes(down));
	});
	const link = await startDelayProxy({host: '127.0.0.1', port}, {rttMs: 10, rate, burstBytes: 64 * 1024});
	try {
		const client = await dial(link.port);
		let downFirst = 0;
		let downBytes = 0;
		client.on('data', (chunk: Buffer) => {
			downFirst ||= performance.now();
			downBytes += chunk.length;
		});
		const ended = once(client, 'end');
		client.write(randomBytes(up));
		await ended;
		const downSeconds = (performance.now() - downFirst) / 1000;
		while (upBytes < up) {
			await new Promise(resolve => setTimeout(resolve, 10));
		}
		const upSeconds = (upLast - upFirst) / 1000;
		// The first burst goes at once; the rest at the rate.
		const expectUp = (up - 64 * 1024) / rate;
		const expectDown = (down - 64 * 1024) / rate;
		assert.is(downBytes, down);
		assert.ok(Math.abs(upSeconds - expectUp) / expectUp < 0.1, `up: ${upSeconds.toFixed(3)} s, expected ${expectUp.toFixed(3)}`);
		assert.ok(Math.abs(downSeconds - expectDown) / expectDown < 0.1, `down: ${downSeconds.toFixed(3)} s, expected ${expectDown.toFixed(3)}`);
		assert.is(link.bytes.up, up);
		assert.is(link.bytes.down, down);
		client.destroy();
	} finally {
		await link.stop();
		server.close();
	}
});

proxy('should deliver every byte intact and in order, then pass on a clean end', async () => {
	const {server, port} = await listen(socket => {
		socket.pipe(socket);
	});
	const link = await startDelayProxy({host: '127.0.0.1', port}, {rttMs: 10, rate: 64 * 1024 * 1024, maxQueuedBytes: 256 * 1024});
	try {
		const client = await dial(link.port);
		const sent = createHash('sha256');
		const received = createHash('sha256');
		let receivedBytes = 0;
		client.on('data', (chunk: Buffer) => {
			received.update(chunk);
			receivedBytes += chunk.length;
		});
		const ended = once(client, 'end');
		let total = 0;
		for (let i = 0; i < 400; i++) {
			// Writes of odd sizes, from 1 byte to ~80 KiB.
			const chunk = randomBytes(1 + ((i * 7919) % 81_920));
			sent.update(chunk);
			total += chunk.length;
			if (!client.write(chunk)) {
				await once(client, 'drain');
			}
		}
		client.end();
		await ended;
		assert.is(receivedBytes, total);
		assert.is(received.digest('hex'), sent.digest('hex'));
	} finally {
		await link.stop();
		server.close();
	}
});

proxy('should reset both sides of every connection on cutAll', async () => {
	let serverSide: Socket | undefined;
	const {server, port} = await listen(socket => {
		serverSide = socket;
		socket.on('error', () => {});
	});
	const link = await startDelayProxy({host: '127.0.0.1', port}, {rttMs: 0, rate: 0});
	try {
		const client = await dial(link.port);
		client.on('error', () => {});
		while (!serverSide) {
			await new Promise(resolve => setTimeout(resolve, 5));
		}
		const closed = Promise.all([once(client, 'close'), once(serverSide, 'close')]);
		link.cutAll();
		await closed;
		assert.is(link.connections, 1);
	} finally {
		await link.stop();
		server.close();
	}
});

proxy.run();
