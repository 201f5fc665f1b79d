// The receive window of an exec channel (source/ssh/window.ts) through the real test sshd: widened past ssh2's fixed
// 2 MiB while the reader keeps up (a pull's SOURCE then fills a long link with one channel), and still a bound on
// what the far end sends to a reader that paused (the --bwlimit pacer pauses a remote SOURCE's channel).
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {connect, type Connection} from '../../source/ssh/connect.js';
import {RECEIVE_WINDOW} from '../../source/ssh/window.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';

const test = suite('SSH receive window');
const MiB = 1024 * 1024;
let sshd: Sshd;
let connection: Connection;

type Windowed = {incoming: {window: number}};

test.before(async () => {
	sshd = await startSshd();
	connection = await connect({host: 'pve', home: sshd.home, acceptNewHostKey: false, warn: () => {}});
});

test.after(async () => {
	connection.close();
	await sshd.stop();
});

test('should keep more than ssh2\'s 2 MiB of window open while the reader keeps up, and deliver every byte', async () => {
	const channel = await connection.exec('/usr/bin/head -c 67108864 /dev/zero');
	let bytes = 0;
	let widest = (channel as unknown as Windowed).incoming.window;
	let narrowest = widest;
	channel.on('data', (chunk: Buffer) => {
		bytes += chunk.length;
		const window = (channel as unknown as Windowed).incoming.window;
		widest = Math.max(widest, window);
		narrowest = Math.min(narrowest, window);
	});
	await new Promise(resolve => channel.on('close', resolve));
	assert.is(bytes, 64 * MiB);
	assert.is(widest, RECEIVE_WINDOW);
	// Refilled at half: never down to ssh2's own refill point (1 MiB) while data flows.
	assert.ok(narrowest > 2 * MiB, `window fell to ${narrowest} bytes`);
});

test('should let a paused reader hold the far end within the window', async () => {
	const channel = await connection.exec('/usr/bin/head -c 67108864 /dev/zero');
	channel.pause();
	await new Promise(resolve => setTimeout(resolve, 1500));
	const held = channel.readableLength;
	assert.ok(held > 0, 'nothing arrived');
	assert.ok(held <= RECEIVE_WINDOW, `${held} bytes arrived for a paused reader`);
	let rest = 0;
	channel.on('data', (chunk: Buffer) => {
		rest += chunk.length;
	});
	channel.resume();
	await new Promise(resolve => channel.on('close', resolve));
	// What was held comes first, then the rest: every byte, once.
	assert.is(rest, 64 * MiB);
});

test.run();
