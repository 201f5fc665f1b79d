import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {encode, type Message} from '../../source/protocol/messages.js';
import {type Peer, StallWatch} from '../../source/remote/stall-watch.js';

const stall = suite('StallWatch');

/** A watch on a fake clock; `frames` go by at 1 ms intervals, then the clock jumps by `quiet` ms in 250 ms steps. */
function stalled(frames: ReadonlyArray<[Peer, Message]>, quiet: number, ms = 2000): Peer | undefined {
	let now = 0;
	let named: Peer | undefined;
	const watch = new StallWatch(ms, peer => {
		named = peer;
	}, () => now);
	try {
		for (const [peer, message] of frames) {
			now += 1;
			const bytes = encode(message);
			watch.saw(peer, {type: bytes[4]!, payload: bytes.subarray(5)});
			watch.check();
		}
		for (let waited = 0; waited < quiet; waited += 250) {
			now += 250;
			watch.check();
		}
		return named;
	} finally {
		watch.stop();
	}
}

const digest = Buffer.alloc(32);
const credit: [Peer, Message] = ['DEST', {type: 'credit', granted: 32}];
const chunk = (offset: number): [Peer, Message] => ['SOURCE', {type: 'chunk', offset, length: 1 << 20, digest}];

stall('should name nobody while the silence is shorter than the bound', () => {
	assert.is(stalled([credit, chunk(0)], 1750), undefined);
});

stall('should name SOURCE when it has credit left, even though DEST spoke first (its DATA needs no answer)', () => {
	assert.is(stalled([credit, chunk(0), ['SOURCE', {type: 'data', offset: 0, data: Buffer.alloc(4096)}]], 2000), 'SOURCE');
});

stall('should name DEST once SOURCE used every credit', () => {
	const chunks = Array.from({length: 32}, (_, index) => chunk(index << 20));
	assert.is(stalled([credit, ...chunks], 2000), 'DEST');
});

stall('should name SOURCE for a chunk DEST asked about (SUBS, FULL), DEST for a WANT, SOURCE again after BLOCKS', () => {
	const chunks = Array.from({length: 32}, (_, index) => chunk(index << 20));
	const subs: [Peer, Message] = ['DEST', {type: 'subs', offset: 0, digests: Buffer.alloc(16 * 8)}];
	const want: [Peer, Message] = ['SOURCE', {type: 'want', offset: 0, mask: 1}];
	const blocks: [Peer, Message] = ['DEST', {type: 'blocks', offset: 0, mask: 1, digests: Buffer.alloc(16 * 8)}];
	assert.is(stalled([credit, ...chunks, subs], 2000), 'SOURCE');
	assert.is(stalled([credit, ...chunks, subs, want], 2000), 'DEST');
	assert.is(stalled([credit, ...chunks, subs, want, blocks], 2000), 'SOURCE');
	assert.is(stalled([credit, ...chunks, subs, want, blocks, ['SOURCE', {type: 'chunkEnd', offset: 0}]], 2000), 'DEST');
	assert.is(stalled([credit, ...chunks, ['DEST', {type: 'full', offset: 0}]], 2000), 'SOURCE');
});

stall('should name DEST after SOURCE_END when nothing is owed to it (its DONE, after fdatasync)', () => {
	assert.is(stalled([credit, chunk(0), ['SOURCE', {type: 'sourceEnd', blocksZero: 0}]], 2000), 'DEST');
});

stall('should count copy-mode chunks (a CHUNK_END nobody asked for) against the credit', () => {
	const chunks = Array.from({length: 32}, (_, index): [Peer, Message] => ['SOURCE', {type: 'chunkEnd', offset: index << 20}]);
	assert.is(stalled([credit, ...chunks.slice(0, 1)], 2000), 'SOURCE');
	assert.is(stalled([credit, ...chunks], 2000), 'DEST');
	// Two or more unacknowledged with credit left: an auto SOURCE may hold for DEST's CREDIT; DEST, quiet longer, is named.
	assert.is(stalled([credit, ...chunks.slice(0, 31)], 2000), 'DEST');
});

stall('should start the silence over after a check that came late (this process was blocked)', () => {
	let now = 0;
	let named: Peer | undefined;
	const watch = new StallWatch(2000, peer => {
		named = peer;
	}, () => now);
	try {
		now = 10_000;
		watch.check();
		assert.is(named, undefined, 'a blocked event loop is not a silent peer');
		now += 1750;
		watch.check();
		assert.is(named, undefined, 'the silence counts from the late check');
		now += 250;
		watch.check();
		assert.is(named, 'DEST', 'no CREDIT yet: the session waits for DEST');
	} finally {
		watch.stop();
	}
});

stall.run();
