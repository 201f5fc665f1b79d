// Property: whatever a hostile SOURCE sends, a real DestRole never writes or zeroes outside its job's
// [start, end) ∩ [0, srcSize), and a frame it refuses had nothing of it written.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {deflateRawSync} from 'node:zlib';
import {geometryFor} from '../../source/delta/chunks.js';
import {DestRole} from '../../source/delta/dest-role.js';
import {createHasher} from '../../source/delta/hash.js';
import {ProtocolViolation} from '../../source/delta/session-rules.js';
import type {Range, WritableImage} from '../../source/image/image.js';
import {MemoryImage} from '../../source/image/memory-image.js';
import {decode, encode, type Message} from '../../source/protocol/messages.js';

const test = suite('hostile SOURCE against DestRole');
const MiB = 1024 * 1024;

/** A small seeded generator (mulberry32): a failure prints its seed and replays. */
function random(seed: number): (n: number) => number {
	let state = seed >>> 0;
	return n => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
	};
}

/** Delegates to a MemoryImage and records every write and zero, with the index of the frame being handled. */
class RecordingImage implements WritableImage {
	readonly kind = 'memory' as const;
	readonly name = 'dst';
	readonly touched: Array<Range & {frame: number}> = [];
	frame = -1;
	constructor(private readonly inner: MemoryImage) {}
	get size(): number {
		return this.inner.size;
	}
	read(buffer: Buffer, offset: number, length: number, position: number): void {
		this.inner.read(buffer, offset, length, position);
	}
	dataRanges(start: number, end: number): Range[] {
		return this.inner.dataRanges(start, end);
	}
	write(buffer: Buffer, offset: number, length: number, position: number): void {
		this.touched.push({start: position, end: position + length, frame: this.frame});
		this.inner.write(buffer, offset, length, position);
	}
	zero(position: number, length: number): void {
		this.touched.push({start: position, end: position + length, frame: this.frame});
		this.inner.zero(position, length);
	}
	sync(): void {}
	close(): void {}
}

type Trial = {seed: number; blockSize: number; srcSize: number; start: number; end: number; copy: boolean; dryRun: boolean; emptyDst: boolean; wide: boolean};

/** A mostly honest SOURCE (it follows DEST's replies); one frame in eight bent: offsets, lengths, masks, types. */
function hostileFrames(trial: Trial, pick: (n: number) => number, replies: Message[]): () => Message {
	const {chunkSize, blockSize, subSize} = geometryFor(trial.blockSize);
	const limit = Math.min(trial.end, trial.srcSize);
	const todo: Message[] = [];
	let next = trial.start;
	let copy = trial.copy;
	const chunkLength = (offset: number): number => Math.min(chunkSize, limit - offset);
	/** Runs of blocks inside [from, to), ascending, some of them ZERO. */
	const runs = (from: number, to: number): Message[] => {
		const out: Message[] = [];
		for (let at = from; at < to;) {
			const length = Math.min(to - at, blockSize * (1 + pick(8)));
			if (pick(3) > 0) {
				const data = randomBytes(length);
				out.push(trial.dryRun ? {type: 'diff', offset: at, length} : pick(4) ? {type: 'data', offset: at, data} : {type: 'dataz', offset: at, length, deflated: deflateRawSync(data)});
			} else if (!trial.dryRun || pick(2)) {
				out.push({type: 'zero', offset: at, length});
			}
			at += length + blockSize * pick(3);
		}
		return out;
	};
	const honest = (): Message => {
		for (const reply of replies.splice(0)) {
			if (reply.type === 'empty') {
				copy = true;
			} else if (reply.type === 'subs') {
				const subs = reply.digests.length / 8;
				const mask = 1 + pick(2 ** subs - 1);
				todo.push(pick(4) ? {type: 'want', offset: reply.offset, mask} : {type: 'chunkEnd', offset: reply.offset});
			} else if (reply.type === 'blocks') {
				for (let sub = 0; sub < 32; sub++) {
					if (reply.mask & (1 << sub)) {
						const from = reply.offset + sub * subSize;
						todo.push(...runs(from, Math.min(from + subSize, reply.offset + chunkLength(reply.offset))));
					}
				}
				todo.push({type: 'chunkEnd', offset: reply.offset});
			} else if (reply.type === 'full') {
				todo.push(...runs(reply.offset, reply.offset + chunkLength(reply.offset)), {type: 'chunkEnd', offset: reply.offset});
			}
		}
		const queued = todo.shift();
		if (queued) {
			return queued;
		}
		if (next >= limit) {
			return {type: 'sourceEnd', blocksZero: pick(4)};
		}
		const offset = next;
		if (pick(4) === 0) {
			next = Math.min(limit, next + chunkSize * (1 + pick(3)));
			return {type: 'zero', offset, length: next - offset};
		}
		next += chunkLength(offset);
		if (copy) {
			todo.push(...runs(offset, next).slice(1), {type: 'chunkEnd', offset});
			return runs(offset, next)[0] ?? {type: 'chunkEnd', offset};
		}
		// A wide session: CHUNK_SUBS (DEST answers BLOCKS unasked), now and then with a wrong count of sub-chunk digests.
		return trial.wide
			? {type: 'chunkSubs', offset, length: next - offset, digest: randomBytes(32), subs: randomBytes(8 * (Math.ceil((next - offset) / subSize) + (pick(16) === 0 ? 1 : 0)))}
			: {type: 'chunk', offset, length: next - offset, digest: randomBytes(32)};
	};
	const bend = (value: number): number => [value + 1, value - blockSize, value + blockSize, value + chunkSize, trial.srcSize, 2 ** 40, trial.start - blockSize][pick(7)]!;
	return () => {
		const message = honest();
		if (pick(8) > 0) {
			return message;
		}
		switch (pick(4)) {
			case 0: return 'offset' in message ? {...message, offset: bend(message.offset)} : message;
			case 1: return 'length' in message ? {...message, length: bend(message.length)} : 'data' in message ? {...message, data: randomBytes(bend(message.data.length) % (2 * chunkSize))} : message;
			case 2: return message.type === 'want' ? {...message, mask: [0, 0xffffffff, 1 << pick(32)][pick(3)]!} : {type: 'chunkEnd', offset: next - chunkSize * pick(3)};
			default: return [
				{type: 'credit', granted: 1 << 20},
				{type: 'done', counters: [0, 0, 0, 0, 0, 0, 0, 0]},
				{type: 'subs', offset: trial.start, digests: Buffer.alloc(8)},
				{type: 'sourceEnd', blocksZero: 0},
				{type: 'dataz', offset: next, length: blockSize, deflated: randomBytes(20)},
				// The other session's frames: CHUNK in a wide one, CHUNK_SUBS in a narrow one, WANT unasked.
				trial.wide ? {type: 'chunk', offset: next, length: chunkLength(next), digest: randomBytes(32)}
					: {type: 'chunkSubs', offset: next, length: chunkLength(next), digest: randomBytes(32), subs: randomBytes(8 * Math.ceil(chunkLength(next) / subSize))},
				{type: 'want', offset: next - chunkSize, mask: 1},
			][pick(7)] as Message;
		}
	};
}

test('should never write outside [start, end) ∩ [0, srcSize), nor anything of a frame it refuses', async () => {
	const blake3 = await createHasher('blake3');
	let refusals = 0;
	let writes = 0;
	for (let seed = 1; seed <= 400; seed++) {
		const pick = random(seed);
		const blockSize = [512, 4096, 65_536][pick(3)]!;
		const srcSize = 3 * MiB + pick(3 * MiB);
		const start = pick(2) ? 0 : 2 * MiB;
		const end = pick(3) ? srcSize : start + MiB + pick(MiB);
		const trial: Trial = {seed, blockSize, srcSize, start, end, copy: pick(4) === 0, dryRun: pick(8) === 0, emptyDst: pick(4) === 0, wide: pick(2) === 0};
		// DST is larger than SRC, like a block device: bytes past srcSize must stay as they are.
		const inner = trial.emptyDst ? new MemoryImage('dst', srcSize + 2 * MiB) : MemoryImage.from('dst', randomBytes(srcSize + 2 * MiB));
		const tail = Buffer.from(inner.content.subarray(srcSize));
		const dst = new RecordingImage(inner);
		const replies: Message[] = [];
		const dest = new DestRole(dst, trial.dryRun ? undefined : dst, geometryFor(blockSize), blake3,
			{start, end, srcSize, dryRun: trial.dryRun, copy: trial.copy, wide: trial.wide}, message => replies.push(message));
		dest.begin();
		const next = hostileFrames(trial, pick, replies);
		for (let frame = 0; frame < 80; frame++) {
			let message: Message;
			try {
				message = decode(frameOf(next()));
			} catch {
				continue; // Not even encodable (a negative length): no peer can send it.
			}
			dst.frame = frame;
			try {
				dest.handle(message);
			} catch (error) {
				const text = error instanceof Error ? error.message : String(error);
				assert.ok(error instanceof ProtocolViolation || /still differs from SRC/.test(text), `seed ${seed}: ${message.type} threw ${String(error)}`);
				assert.not.ok(dst.touched.some(t => t.frame === frame), `seed ${seed}: ${message.type} was refused (${text}) after a write`);
				refusals += 1;
				break;
			}
		}
		const limit = Math.min(end, srcSize);
		for (const touched of dst.touched) {
			assert.ok(touched.start >= start && touched.end <= limit && touched.start < touched.end,
				`seed ${seed}: wrote [${touched.start}, ${touched.end}) outside [${start}, ${limit})`);
		}
		assert.ok(inner.content.subarray(srcSize).equals(tail), `seed ${seed}: bytes past SRC's size changed`);
		writes += dst.touched.length;
	}
	// The generator must exercise both sides: many refusals, and many writes accepted.
	assert.ok(refusals > 300, `${refusals} refusals`);
	assert.ok(writes > 300, `${writes} writes`);
});

function frameOf(message: Message): {type: number; payload: Buffer} {
	const bytes = encode(message);
	return {type: bytes[4]!, payload: bytes.subarray(5)};
}

test.run();
