// Property: whatever a hostile DEST answers, a real SourceRole refuses it with a ProtocolViolation (nothing
// else is thrown) and never reads SRC outside its job's [start, end).
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {geometryFor} from '../../source/delta/chunks.js';
import {createHasher} from '../../source/delta/hash.js';
import {ProtocolViolation} from '../../source/delta/session-rules.js';
import {SourceRole} from '../../source/delta/source-role.js';
import {MemoryImage} from '../../source/image/memory-image.js';
import {decode, encode, type Message, WIDE_CREDIT_WINDOW} from '../../source/protocol/messages.js';

const test = suite('hostile DEST against SourceRole');
const MiB = 1024 * 1024;

function random(seed: number): (n: number) => number {
	let state = seed >>> 0;
	return n => {
		state = (Math.imul(state ^ (state >>> 15), 2_654_435_761) + 0x9e3779b9) >>> 0;
		return Math.floor((state / 4294967296) * n);
	};
}

const turn = async (): Promise<void> => new Promise(resolve => setImmediate(resolve));

test('should refuse every bent answer with a ProtocolViolation and read only its own range', async () => {
	const blake3 = await createHasher('blake3');
	let refusals = 0;
	for (let seed = 1; seed <= 150; seed++) {
		const pick = random(seed);
		const blockSize = [512, 4096, 65_536][pick(3)]!;
		const {chunkSize, subSize} = geometryFor(blockSize);
		const size = 3 * MiB + pick(2 * MiB);
		const start = pick(2) ? 0 : MiB;
		const end = size - pick(MiB);
		// Half the trials a wide session: CHUNK_SUBS answered by BLOCKS unasked (or FULL), a window of 512.
		const wide = pick(2) === 0;
		const window = wide ? WIDE_CREDIT_WINDOW : 32;
		const src = MemoryImage.from('src', randomBytes(size));
		const reads: Array<[number, number]> = [];
		const image = Object.create(src) as MemoryImage;
		image.read = (buffer, offset, length, position) => {
			reads.push([position, position + length]);
			src.read(buffer, offset, length, position);
		};
		const sent: Message[] = [];
		let failed: unknown;
		const role = new SourceRole(image, geometryFor(blockSize), blake3, {start, end, dryRun: false, copy: false, compress: 0, wide}, m => sent.push(m));
		role.onError = error => {
			failed = error;
		};
		let completed = 0;
		const answer = (m: Message): Message | undefined => {
			switch (m.type) {
				case 'chunkSubs': {
					// BLOCKS for a random non-empty mask of its sub-chunks.
					const subs = Math.ceil(m.length / subSize);
					const mask = 1 + pick(2 ** subs - 1);
					let blocks = 0;
					for (let sub = 0; sub < subs; sub++) {
						if (mask & (1 << sub)) {
							blocks += Math.ceil((Math.min(m.length, (sub + 1) * subSize) - sub * subSize) / blockSize);
						}
					}
					return pick(4) ? {type: 'blocks', offset: m.offset, mask, digests: randomBytes(8 * blocks)} : {type: 'full', offset: m.offset};
				}
				case 'chunk': return pick(3) ? {type: 'subs', offset: m.offset, digests: randomBytes(8 * Math.ceil(m.length / subSize))} : {type: 'full', offset: m.offset};
				case 'want': {
					const length = Math.min(chunkSize, end - m.offset);
					let blocks = 0;
					for (let sub = 0; sub < 16; sub++) {
						if (m.mask & (1 << sub)) {
							blocks += Math.ceil((Math.min(length, (sub + 1) * subSize) - sub * subSize) / blockSize);
						}
					}
					return {type: 'blocks', offset: m.offset, mask: m.mask, digests: randomBytes(8 * blocks)};
				}
				case 'chunkEnd': completed += 1; return {type: 'credit', granted: window + completed};
				default: return undefined;
			}
		};
		const bend = (m: Message): Message => {
			switch (pick(6)) {
				case 0: return 'offset' in m ? {...m, offset: m.offset + [1, chunkSize, -chunkSize, blockSize][pick(4)]!} as Message : m;
				case 1: return 'digests' in m ? {...m, digests: m.digests.subarray(8)} : m;
				case 2: return m.type === 'blocks' ? {...m, mask: m.mask ^ (1 << pick(20))} : {type: 'full', offset: start + chunkSize * pick(8)};
				case 3: return {type: 'credit', granted: [0, 1 << 30, window + 1 + completed + pick(64)][pick(3)]!};
				// EMPTY late; in a wide session SUBS (refused: BLOCKS come unasked), in a narrow one BLOCKS nobody asked for.
				case 4: return pick(2) ? {type: 'empty'} : 'offset' in m ? (wide ? {type: 'subs', offset: m.offset, digests: randomBytes(128)} : {type: 'blocks', offset: m.offset, mask: 1, digests: randomBytes(128)}) : m;
				default: return pick(2) ? {type: 'full', offset: end} : {type: 'subs', offset: end - chunkSize * pick(3), digests: Buffer.alloc(128)};
			}
		};
		const frames: Message[] = [{type: 'credit', granted: window}];
		try {
			for (let step = 0; step < 200 && failed === undefined; step++) {
				const frame = frames.shift();
				if (frame) {
					const wire = decode({type: encode(frame)[4]!, payload: encode(frame).subarray(5)});
					role.handle(wire);
				}
				await turn();
				for (const m of sent.splice(0)) {
					const reply = answer(m);
					if (reply) {
						frames.push(pick(10) ? reply : bend(reply));
					}
				}
				if (!frame && frames.length === 0) {
					break;
				}
			}
		} catch (error) {
			assert.instance(error, ProtocolViolation, `seed ${seed}: ${String(error)}`);
			refusals += 1;
		}
		role.stop();
		assert.is(failed, undefined, `seed ${seed}: SOURCE failed while producing: ${String(failed)}`);
		for (const [from, to] of reads) {
			assert.ok(from >= start && to <= end, `seed ${seed}: read [${from}, ${to}) outside [${start}, ${end})`);
		}
	}
	assert.ok(refusals > 50, `${refusals} refusals`);
});

test.run();
