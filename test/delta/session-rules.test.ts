import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {geometryFor} from '../../source/delta/chunks.js';
import {DestRules, ProtocolViolation, type SessionShape, SourceRules} from '../../source/delta/session-rules.js';
import {type Message, WIDE_CREDIT_WINDOW} from '../../source/protocol/messages.js';

const MiB = 1024 * 1024;
const digest = Buffer.alloc(32);
/** Worker 1 of two over a 10 MiB + 1000 B SRC: [4 MiB, 10 MiB + 1000), 4 KiB blocks. */
const shape: SessionShape = {start: 4 * MiB, end: 10 * MiB + 1000, srcSize: 10 * MiB + 1000, geometry: geometryFor(4096), dryRun: false, copy: false};

function refuses(rules: {received(message: Message): void}, message: Message, text: string): void {
	try {
		rules.received(message);
	} catch (error) {
		assert.instance(error, ProtocolViolation);
		assert.is((error as Error).message, text);
		return;
	}
	assert.unreachable(`${message.type} was accepted`);
}

function destWith(overrides: Partial<SessionShape> = {}): DestRules {
	const rules = new DestRules({...shape, ...overrides});
	rules.sent({type: 'credit', granted: 32});
	return rules;
}

const dest = suite('DestRules');

dest('should take SKIP of whole chunks from the next one, and refuse any other', () => {
	const rules = destWith();
	refuses(rules, {type: 'skip', offset: 4 * MiB + 4096, length: MiB}, 'SKIP at offset 4198400 length 1048576 is not whole chunks');
	refuses(rules, {type: 'skip', offset: 5 * MiB, length: MiB}, 'SKIP at offset 5242880 length 1048576 out of order: the next chunk is at offset 4194304');
	rules.received({type: 'skip', offset: 4 * MiB, length: 2 * MiB});
	refuses(rules, {type: 'chunk', offset: 5 * MiB, length: MiB, digest}, 'CHUNK at offset 5242880 out of order: the next chunk is at offset 6291456');
	rules.received({type: 'chunk', offset: 6 * MiB, length: MiB, digest});
	// The last chunk is short: SKIP to the range's end.
	rules.received({type: 'skip', offset: 7 * MiB, length: 3 * MiB + 1000});
	refuses(rules, {type: 'skip', offset: 7 * MiB, length: MiB}, 'SKIP at offset 7340032 length 1048576 after the last chunk of this worker\'s range [4194304, 10486760) was sent');
	rules.received({type: 'sourceEnd', blocksZero: 0});
});

dest('should refuse SKIP inside a chunk being sent without digests', () => {
	const rules = destWith({copy: true});
	rules.received({type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)});
	refuses(rules, {type: 'skip', offset: 5 * MiB, length: MiB}, 'SKIP at offset 5242880 length 1048576 comes before the CHUNK_END of the chunk at offset 4194304');
});

dest('should refuse DATA and ZERO outside the worker range or past SRC end', () => {
	const rules = destWith();
	refuses(rules, {type: 'data', offset: 10 * MiB + 1000, data: Buffer.alloc(4096)},
		'DATA at offset 10486760 length 4096 is outside this worker\'s range [4194304, 10486760)');
	refuses(rules, {type: 'data', offset: 4 * MiB - 4096, data: Buffer.alloc(4096)},
		'DATA at offset 4190208 length 4096 is outside this worker\'s range [4194304, 10486760)');
	refuses(rules, {type: 'zero', offset: 2 ** 40, length: MiB}, 'ZERO at offset 1099511627776 length 1048576 is outside this worker\'s range [4194304, 10486760)');
	refuses(rules, {type: 'zero', offset: 4 * MiB, length: 0}, 'ZERO at offset 4194304 length 0 is outside this worker\'s range [4194304, 10486760)');
	// The worker's end past SRC's size: SRC's size is the limit.
	refuses(destWith({end: 12 * MiB}), {type: 'zero', offset: 10 * MiB, length: 2 * MiB}, 'ZERO at offset 10485760 length 2097152 is outside this worker\'s range [4194304, 10486760)');
});

dest('should refuse DATA outside a chunk in progress, unaligned, or outside the sub-chunks asked for', () => {
	const rules = destWith();
	refuses(rules, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)}, 'DATA at offset 4194304 length 4096 is not inside a chunk in progress');
	rules.received({type: 'chunk', offset: 4 * MiB, length: MiB, digest});
	rules.sent({type: 'subs', offset: 4 * MiB, digests: Buffer.alloc(128)});
	refuses(rules, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)}, 'DATA at offset 4194304 length 4096 is not inside a chunk in progress');
	refuses(rules, {type: 'want', offset: 4 * MiB, mask: 0x10000}, 'WANT at offset 4194304 has mask 0x10000; that chunk has 16 sub-chunks');
	rules.received({type: 'want', offset: 4 * MiB, mask: 0b10});
	refuses(rules, {type: 'want', offset: 4 * MiB, mask: 0b10}, 'WANT at offset 4194304 for a chunk that awaits no WANT (DEST sent it no SUBS, or it was answered)');
	rules.received({type: 'data', offset: 4 * MiB + 65_536, data: Buffer.alloc(8192)});
	refuses(rules, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)},
		'DATA at offset 4194304 length 4096 is outside the sub-chunks asked for (WANT mask 0x2) of the chunk at offset 4194304');
	refuses(rules, {type: 'data', offset: 4 * MiB + 65_537, data: Buffer.alloc(4096)}, 'DATA at offset 4259841 length 4096 is not block-aligned (block size 4096)');
	refuses(rules, {type: 'diff', offset: 4 * MiB + 65_536, length: 4096}, 'DIFF at offset 4259840 outside a dry run');
	rules.received({type: 'chunkEnd', offset: 4 * MiB});
	refuses(rules, {type: 'chunkEnd', offset: 4 * MiB}, 'CHUNK_END at offset 4194304 for a chunk that is not in progress (never announced, or already ended)');
	refuses(rules, {type: 'data', offset: 4 * MiB + 65_536, data: Buffer.alloc(4096)}, 'DATA at offset 4259840 length 4096 is not inside a chunk in progress');
	// FULL opens the whole chunk again.
	rules.sent({type: 'full', offset: 4 * MiB});
	rules.received({type: 'data', offset: 4 * MiB, data: Buffer.alloc(MiB)});
	refuses(rules, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(MiB + 4096)}, 'DATA at offset 4194304 length 1052672 is longer than a chunk (1048576 bytes)');
});

dest('should take CHUNK_SUBS only in a wide session, and DATA then only inside the sub-chunks of DEST\'s unasked BLOCKS', () => {
	const subs = Buffer.alloc(128);
	refuses(destWith(), {type: 'chunkSubs', offset: 4 * MiB, length: MiB, digest, subs},
		'CHUNK_SUBS at offset 4194304 in a narrow session (CHUNK, SUBS and WANT)');
	const rules = destWith({wide: true});
	refuses(rules, {type: 'chunk', offset: 4 * MiB, length: MiB, digest}, 'CHUNK at offset 4194304 in a wide session (CHUNK_SUBS and unasked BLOCKS)');
	refuses(rules, {type: 'chunkSubs', offset: 4 * MiB, length: MiB, digest, subs: Buffer.alloc(120)},
		'CHUNK_SUBS at offset 4194304 has 15 sub-chunk digests; that chunk has 16 sub-chunks');
	refuses(rules, {type: 'chunkSubs', offset: 4 * MiB + 4096, length: MiB, digest, subs},
		'CHUNK_SUBS at offset 4198400 is not a chunk of this worker\'s range [4194304, 10486760)');
	refuses(rules, {type: 'chunkSubs', offset: 5 * MiB, length: MiB, digest, subs}, 'CHUNK_SUBS at offset 5242880 out of order: the next chunk is at offset 4194304');
	refuses(rules, {type: 'chunkSubs', offset: 4 * MiB, length: MiB - 4096, digest, subs},
		'CHUNK_SUBS at offset 4194304 has length 1044480; that chunk of this worker\'s range [4194304, 10486760) is 1048576 bytes');
	const fresh = destWith({wide: true});
	fresh.received({type: 'chunkSubs', offset: 4 * MiB, length: MiB, digest, subs});
	refuses(fresh, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)}, 'DATA at offset 4194304 length 4096 is not inside a chunk in progress');
	refuses(fresh, {type: 'want', offset: 4 * MiB, mask: 1}, 'WANT at offset 4194304 for a chunk that awaits no WANT (DEST sent it no SUBS, or it was answered)');
	fresh.sent({type: 'blocks', offset: 4 * MiB, mask: 0b100, digests: Buffer.alloc(16 * 8)});
	fresh.received({type: 'data', offset: 4 * MiB + 2 * 65_536, data: Buffer.alloc(65_536)});
	refuses(fresh, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)},
		'DATA at offset 4194304 length 4096 is outside the sub-chunks asked for (WANT mask 0x4) of the chunk at offset 4194304');
	refuses(fresh, {type: 'want', offset: 4 * MiB, mask: 4}, 'WANT at offset 4194304 for a chunk that awaits no WANT (DEST sent it no SUBS, or it was answered)');
	fresh.received({type: 'chunkEnd', offset: 4 * MiB});
	refuses(fresh, {type: 'data', offset: 4 * MiB + 2 * 65_536, data: Buffer.alloc(4096)}, 'DATA at offset 4325376 length 4096 is not inside a chunk in progress');
	// The last chunk of the range: 1000 bytes, one sub-chunk.
	fresh.received({type: 'zero', offset: 5 * MiB, length: 5 * MiB});
	refuses(fresh, {type: 'chunkSubs', offset: 10 * MiB, length: 1000, digest, subs},
		'CHUNK_SUBS at offset 10485760 has 16 sub-chunk digests; that chunk has 1 sub-chunks');
	fresh.received({type: 'chunkSubs', offset: 10 * MiB, length: 1000, digest, subs: Buffer.alloc(8)});
	// Credit bounds CHUNK_SUBS as it does CHUNK.
	const tight = new DestRules({...shape, wide: true});
	tight.sent({type: 'credit', granted: 1});
	tight.received({type: 'chunkSubs', offset: 4 * MiB, length: MiB, digest, subs});
	refuses(tight, {type: 'chunkSubs', offset: 5 * MiB, length: MiB, digest, subs}, 'CHUNK_SUBS at offset 5242880 exceeds DEST\'s credit of 1 chunks');
});

dest('should take chunks in order, each once, of the right length, under credit', () => {
	const rules = destWith();
	refuses(rules, {type: 'chunk', offset: 5 * MiB, length: MiB, digest}, 'CHUNK at offset 5242880 out of order: the next chunk is at offset 4194304');
	refuses(rules, {type: 'chunk', offset: 4 * MiB + 4096, length: MiB, digest}, 'CHUNK at offset 4198400 is not a chunk of this worker\'s range [4194304, 10486760)');
	refuses(rules, {type: 'chunk', offset: 4 * MiB, length: 4096, digest}, 'CHUNK at offset 4194304 has length 4096; that chunk of this worker\'s range [4194304, 10486760) is 1048576 bytes');
	rules.received({type: 'zero', offset: 4 * MiB, length: 2 * MiB});
	refuses(rules, {type: 'zero', offset: 4 * MiB, length: MiB}, 'ZERO at offset 4194304 length 1048576 out of order: the next chunk is at offset 6291456');
	refuses(rules, {type: 'zero', offset: 6 * MiB, length: 4096}, 'ZERO at offset 6291456 length 4096 is neither whole chunks from the next one nor inside a chunk in progress');
	refuses(rules, {type: 'sourceEnd', blocksZero: 0}, 'SOURCE_END before the chunk at offset 6291456 of this worker\'s range [4194304, 10486760) was sent');
	rules.received({type: 'chunk', offset: 6 * MiB, length: MiB, digest});
	rules.received({type: 'zero', offset: 7 * MiB, length: 3 * MiB});
	// The last chunk is short: 1000 bytes, one partial block.
	refuses(rules, {type: 'chunk', offset: 10 * MiB, length: MiB, digest}, 'CHUNK at offset 10485760 has length 1048576; that chunk of this worker\'s range [4194304, 10486760) is 1000 bytes');
	rules.received({type: 'chunk', offset: 10 * MiB, length: 1000, digest});
	refuses(rules, {type: 'sourceEnd', blocksZero: 1e6}, 'SOURCE_END counts 1000000 zero blocks; this worker\'s range [4194304, 10486760) has 1537');
	rules.received({type: 'sourceEnd', blocksZero: 5});
	refuses(rules, {type: 'sourceEnd', blocksZero: 5}, 'a second SOURCE_END');
	refuses(rules, {type: 'credit', granted: 1}, 'CREDIT frame: SOURCE never sends one here');
	const starved = new DestRules(shape);
	refuses(starved, {type: 'chunk', offset: 4 * MiB, length: MiB, digest}, 'CHUNK at offset 4194304 exceeds DEST\'s credit of 0 chunks');
});

dest('should take --copy runs in order inside one chunk at a time, and want its CHUNK_END', () => {
	const rules = destWith({copy: true});
	refuses(rules, {type: 'chunk', offset: 4 * MiB, length: MiB, digest}, 'CHUNK at offset 4194304 in a session without digests (--copy or EMPTY)');
	rules.received({type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)});
	rules.received({type: 'zero', offset: 4 * MiB + 4096, length: 4096});
	refuses(rules, {type: 'data', offset: 4 * MiB, data: Buffer.alloc(4096)}, 'DATA at offset 4194304 length 4096 overlaps what SOURCE already sent of the chunk at offset 4194304');
	refuses(rules, {type: 'data', offset: 5 * MiB, data: Buffer.alloc(4096)}, 'DATA at offset 5242880 length 4096 comes before the CHUNK_END of the chunk at offset 4194304');
	refuses(rules, {type: 'data', offset: 5 * MiB - 4096, data: Buffer.alloc(8192)}, 'DATA at offset 5238784 length 8192 crosses the end of the chunk at offset 4194304');
	refuses(rules, {type: 'sourceEnd', blocksZero: 0}, 'SOURCE_END before the CHUNK_END of the chunk at offset 4194304');
	rules.received({type: 'chunkEnd', offset: 4 * MiB});
	refuses(rules, {type: 'chunkEnd', offset: 4 * MiB}, 'CHUNK_END at offset 4194304 for a chunk that is not in progress (never announced, or already ended)');
	refuses(rules, {type: 'chunkEnd', offset: 6 * MiB}, 'CHUNK_END at offset 6291456 for a chunk that is not in progress (never announced, or already ended)');
	refuses(rules, {type: 'data', offset: 6 * MiB, data: Buffer.alloc(4096)}, 'DATA at offset 6291456 length 4096 out of order: the next chunk is at offset 5242880');
	rules.received({type: 'zero', offset: 5 * MiB, length: 5 * MiB + 1000});
	rules.received({type: 'sourceEnd', blocksZero: 0});
});

dest('should check DATAZ by its inflated length', () => {
	const rules = destWith();
	refuses(rules, {type: 'dataz', offset: 4 * MiB, length: 2 * MiB, deflated: Buffer.alloc(10)}, 'DATAZ at offset 4194304 length 2097152 is longer than a chunk (1048576 bytes)');
	assert.throws(() => rules.inflate({type: 'dataz', offset: 4 * MiB, length: 4096, deflated: Buffer.from('garbage')}), (error: Error) =>
		error instanceof ProtocolViolation && error.message.startsWith('DATAZ at offset 4194304 length 4096 does not inflate: '));
});

dest.run();

const source = suite('SourceRules');

function sourceWith(overrides: Partial<SessionShape> = {}): SourceRules {
	const rules = new SourceRules({...shape, ...overrides});
	rules.received({type: 'credit', granted: 32});
	return rules;
}

source('should take answers only for chunks that await them, with digest counts of the right size', () => {
	const rules = sourceWith();
	refuses(rules, {type: 'subs', offset: 4 * MiB, digests: Buffer.alloc(128)}, 'SUBS at offset 4194304 for a chunk that awaits no SUBS');
	rules.sent({type: 'chunk', offset: 4 * MiB, length: MiB, digest});
	refuses(rules, {type: 'subs', offset: 4 * MiB, digests: Buffer.alloc(24)}, 'SUBS at offset 4194304 has 3 sub-chunk digests; that chunk has 16 sub-chunks');
	refuses(rules, {type: 'subs', offset: 4 * MiB + 1, digests: Buffer.alloc(24)}, 'SUBS at offset 4194305 is not a chunk of this worker\'s range [4194304, 10486760)');
	rules.received({type: 'subs', offset: 4 * MiB, digests: Buffer.alloc(128)});
	refuses(rules, {type: 'subs', offset: 4 * MiB, digests: Buffer.alloc(128)}, 'SUBS at offset 4194304 for a chunk that awaits no SUBS');
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 1, digests: Buffer.alloc(128)}, 'BLOCKS at offset 4194304 for a chunk that awaits no BLOCKS');
	rules.sent({type: 'want', offset: 4 * MiB, mask: 0b101});
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 0b1, digests: Buffer.alloc(128)}, 'BLOCKS at offset 4194304 has mask 0x1; SOURCE asked for 0x5');
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 0b101, digests: Buffer.alloc(64)}, 'BLOCKS at offset 4194304 has 8 block digests; mask 0x5 covers 32 blocks');
	rules.received({type: 'blocks', offset: 4 * MiB, mask: 0b101, digests: Buffer.alloc(256)});
	rules.sent({type: 'chunkEnd', offset: 4 * MiB});
	rules.received({type: 'full', offset: 4 * MiB});
	rules.sent({type: 'chunkEnd', offset: 4 * MiB});
	refuses(rules, {type: 'full', offset: 4 * MiB}, 'FULL at offset 4194304 for a chunk that is not awaiting an answer (not sent, in progress, or already sent in full)');
	refuses(rules, {type: 'full', offset: 11 * MiB}, 'FULL at offset 11534336 is not a chunk of this worker\'s range [4194304, 10486760)');
	refuses(rules, {type: 'chunk', offset: 4 * MiB, length: MiB, digest}, 'CHUNK frame: DEST never sends one here');
});

source('should take BLOCKS unasked for a CHUNK_SUBS in a wide session, and no SUBS', () => {
	const rules = new SourceRules({...shape, wide: true});
	rules.received({type: 'credit', granted: 4});
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 1, digests: Buffer.alloc(128)}, 'BLOCKS at offset 4194304 for a chunk that awaits no BLOCKS');
	rules.sent({type: 'chunkSubs', offset: 4 * MiB, length: MiB, digest, subs: Buffer.alloc(128)});
	refuses(rules, {type: 'subs', offset: 4 * MiB, digests: Buffer.alloc(128)}, 'SUBS at offset 4194304 in a wide session (CHUNK_SUBS and unasked BLOCKS)');
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 0, digests: Buffer.alloc(0)}, 'BLOCKS at offset 4194304 has mask 0x0; that chunk has 16 sub-chunks');
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 0x10000, digests: Buffer.alloc(128)}, 'BLOCKS at offset 4194304 has mask 0x10000; that chunk has 16 sub-chunks');
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 1, digests: Buffer.alloc(64)}, 'BLOCKS at offset 4194304 has 8 block digests; mask 0x1 covers 16 blocks');
	rules.received({type: 'blocks', offset: 4 * MiB, mask: 1, digests: Buffer.alloc(128)});
	refuses(rules, {type: 'blocks', offset: 4 * MiB, mask: 1, digests: Buffer.alloc(128)}, 'BLOCKS at offset 4194304 for a chunk that awaits no BLOCKS');
	refuses(rules, {type: 'full', offset: 4 * MiB}, 'FULL at offset 4194304 for a chunk that is not awaiting an answer (not sent, in progress, or already sent in full)');
	// A CHUNK_SUBS answered FULL (its sub-chunk digests all equal, the chunk digests not).
	rules.sent({type: 'chunkSubs', offset: 5 * MiB, length: MiB, digest, subs: Buffer.alloc(128)});
	rules.received({type: 'full', offset: 5 * MiB});
	// The narrow session takes no BLOCKS without its WANT.
	const narrow = new SourceRules(shape);
	narrow.received({type: 'credit', granted: 4});
	narrow.sent({type: 'chunk', offset: 4 * MiB, length: MiB, digest});
	refuses(narrow, {type: 'blocks', offset: 4 * MiB, mask: 1, digests: Buffer.alloc(128)}, 'BLOCKS at offset 4194304 for a chunk that awaits no BLOCKS');
});

source('should bound CREDIT by the wide window in a wide session, and by the narrow one without digests', () => {
	const rules = new SourceRules({...shape, wide: true});
	refuses(rules, {type: 'credit', granted: WIDE_CREDIT_WINDOW + 1}, `CREDIT of ${WIDE_CREDIT_WINDOW + 1} chunks, more than the window of ${WIDE_CREDIT_WINDOW} past the 0 chunks sent`);
	rules.received({type: 'credit', granted: WIDE_CREDIT_WINDOW});
	rules.sent({type: 'chunkSubs', offset: 4 * MiB, length: MiB, digest, subs: Buffer.alloc(128)});
	rules.received({type: 'credit', granted: WIDE_CREDIT_WINDOW + 1});
	refuses(rules, {type: 'credit', granted: WIDE_CREDIT_WINDOW + 2}, `CREDIT of ${WIDE_CREDIT_WINDOW + 2} chunks, more than the window of ${WIDE_CREDIT_WINDOW} past the 1 chunks sent`);
	// After EMPTY every chunk in flight may be a whole chunk of data: the narrow window.
	const empty = new SourceRules({...shape, wide: true});
	empty.received({type: 'empty'});
	refuses(empty, {type: 'credit', granted: 33}, 'CREDIT of 33 chunks, more than the window of 32 past the 0 chunks sent');
	const copy = new SourceRules({...shape, wide: true, copy: true});
	refuses(copy, {type: 'credit', granted: 33}, 'CREDIT of 33 chunks, more than the window of 32 past the 0 chunks sent');
});

source('should bound CREDIT by the chunks sent and take EMPTY only first', () => {
	const rules = new SourceRules(shape);
	refuses(rules, {type: 'credit', granted: 33}, 'CREDIT of 33 chunks, more than the window of 32 past the 0 chunks sent');
	rules.received({type: 'credit', granted: 32});
	refuses(rules, {type: 'credit', granted: 31}, 'CREDIT of 31 chunks after one of 32');
	refuses(rules, {type: 'empty'}, 'EMPTY after CREDIT');
	refuses(new SourceRules({...shape, dryRun: true}), {type: 'empty'}, 'EMPTY in a dry run');
	const empty = new SourceRules(shape);
	empty.received({type: 'empty'});
	empty.received({type: 'credit', granted: 32});
	empty.sent({type: 'chunkEnd', offset: 4 * MiB});
	refuses(empty, {type: 'full', offset: 4 * MiB}, 'FULL at offset 4194304 for a chunk that is not awaiting an answer (not sent, in progress, or already sent in full)');
	empty.received({type: 'credit', granted: 33});
});

source('should take KEY once, before the first CREDIT, only in a session with digests', () => {
	const key = {type: 'key', key: Buffer.alloc(32, 1)} as const;
	const rules = new SourceRules(shape);
	rules.received(key);
	refuses(rules, key, 'KEY twice');
	rules.received({type: 'credit', granted: 32});
	const late = new SourceRules(shape);
	late.received({type: 'credit', granted: 32});
	refuses(late, key, 'KEY after CREDIT');
	refuses(new SourceRules({...shape, dryRun: true}), key, 'KEY in a dry run');
	const empty = new SourceRules(shape);
	empty.received({type: 'empty'});
	refuses(empty, key, 'KEY in a session without digests');
});

source.run();
