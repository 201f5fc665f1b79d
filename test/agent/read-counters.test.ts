// The read counters (Capability.readCounters) between this build and older peers: neither side sends what the other cannot decode.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Frame, FrameDecoder} from '../../source/protocol/frame.js';
import {Capability, decode, encode, type Message, Role, TYPE_CODE} from '../../source/protocol/messages.js';
import {InProcessLink, type Link} from '../../source/remote/link.js';
import {openLink, relaySession} from '../../source/remote/session.js';

const test = suite('read counters with older peers');
const dir = mkdtempSync(join(tmpdir(), 'rbs-readcounters-'));

test.after(() => rmSync(dir, {recursive: true, force: true}));

/**
 * An in-process agent seen through an older peer: `driver` strips the capability from the driver's HELLO (an older
 * driver), `agent` from the agent's (an older agent). Records the frames each way.
 */
function older(which: 'driver' | 'agent'): {link: Link; toAgent: Frame[]; fromAgent: Frame[]} {
	const inner = new InProcessLink();
	const toAgent: Frame[] = [];
	const fromAgent: Frame[] = [];
	const strip = (frame: Frame): Buffer => {
		const message = decode(frame);
		return message.type === 'hello' ? encode({...message, caps: message.caps & ~Capability.readCounters}) : encode(message);
	};
	const link: Link = {
		label: 'local', remote: false, bytesIn: 0, bytesOut: 0, greeted: undefined, ended: false, endReason: undefined,
		send(bytes) {
			const [frame] = new FrameDecoder().push(bytes);
			toAgent.push(frame!);
			inner.send(which === 'driver' ? strip(frame!) : bytes);
		},
		close: () => inner.close(),
		onFrame: () => {},
		onClose: () => {},
	};
	inner.onFrame = frame => {
		fromAgent.push(frame);
		link.onFrame(which === 'agent' ? new FrameDecoder().push(strip(frame))[0]! : frame);
	};
	inner.onClose = reason => link.onClose(reason);
	return {link, toAgent, fromAgent};
}

async function sync(source: Link, dest: Link): Promise<{content: Buffer; dst: string; counters: Awaited<ReturnType<typeof relaySession>>}> {
	const src = join(dir, `src-${Math.random()}.img`);
	const dst = join(dir, `dst-${Math.random()}.img`);
	const content = randomBytes(3 * 1024 * 1024 + 5);
	writeFileSync(src, content);
	writeFileSync(dst, randomBytes(content.length));
	const base = {flags: 0, blockSize: 4096, compress: 0, srcSize: content.length, start: 0, end: content.length, hash: 'blake3', srcIdentity: ''};
	const [s, d] = await Promise.all([
		openLink(source, {type: 'open', role: Role.source, ...base, path: src} satisfies Message, () => {}),
		openLink(dest, {type: 'open', role: Role.dest, ...base, path: dst} satisfies Message, () => {}),
	]);
	const counters = await relaySession(source, dest, {source: s.held, dest: d.held}, {stats() {}, warn() {}}, () => new Error('aborted'));
	return {content, dst, counters};
}

test('should send an older driver the eight counters of protocol 1, and no STATS from SOURCE', async () => {
	const source = older('driver');
	const dest = older('driver');
	const {content, dst, counters} = await sync(source.link, dest.link);
	assert.ok(readFileSync(dst).equals(content));
	assert.is(source.fromAgent.filter(frame => frame.type === TYPE_CODE.stats).length, 0, 'SOURCE sent STATS');
	const done = dest.fromAgent.filter(frame => frame.type === TYPE_CODE.done);
	assert.equal(done.map(frame => frame.payload.length), [64]);
	assert.ok(dest.fromAgent.filter(frame => frame.type === TYPE_CODE.stats).every(frame => frame.payload.length === 64));
	assert.is(counters.bytesScanned, content.length);
	assert.is(counters.srcBytesRead, 0);
	assert.is(counters.dstBytesRead, 0);
});

test('should forward DONE to an older SOURCE with eight counters, and read an older DEST\'s eight as 0 bytes read', async () => {
	const source = older('agent');
	const dest = older('agent');
	const {content, dst, counters} = await sync(source.link, dest.link);
	assert.ok(readFileSync(dst).equals(content));
	const forwarded = source.toAgent.filter(frame => frame.type === TYPE_CODE.done);
	assert.equal(forwarded.map(frame => frame.payload.length), [64]);
	assert.is(counters.bytesScanned, content.length);
	// The agents themselves are this build (the driver only thinks them older): they count what they read.
	// Every block differs: SOURCE reads SRC to hash it, then again the blocks it sends (its chunk buffer moved on).
	assert.is(counters.srcBytesRead, 2 * content.length);
	assert.is(counters.dstBytesRead, content.length);
});

test('should count every byte read by both roles between two peers of this build', async () => {
	const {content, dst, counters} = await sync(new InProcessLink(), new InProcessLink());
	assert.ok(readFileSync(dst).equals(content));
	assert.is(counters.srcBytesRead, 2 * content.length);
	assert.is(counters.dstBytesRead, content.length);
});

test.run();
