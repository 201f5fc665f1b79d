// Runs a SourceRole and a DestRole against each other in memory, through the real codec, counting bytes each way.
import {createHasher, type Hasher} from '../../source/delta/hash.js';
import type {HashName} from '../../source/options.js';
import type {Image, WritableImage} from '../../source/image/image.js';
import {FrameDecoder} from '../../source/protocol/frame.js';
import {decode, encode, type Message} from '../../source/protocol/messages.js';
import {geometryFor} from '../../source/delta/chunks.js';
import {SourceRole} from '../../source/delta/source-role.js';
import {DestRole} from '../../source/delta/dest-role.js';
import type {RangeCache} from '../../source/delta/digest-cache.js';
import {countersFromTuple} from '../../source/protocol/messages.js';
import type {Counters} from '../../source/engine/progress.js';

export type PairOptions = {
	/** SOURCE reads only the chunks src.changedRanges() marks (--bitmap after a recorded pass). */
	readonly bitmap?: boolean;
	blockSize?: number;
	dryRun?: boolean;
	copy?: boolean;
	compress?: number;
	hash?: HashName;
	start?: number;
	end?: number;
	/** DEST's digest cache for the range. */
	cache?: RangeCache;
	/** SOURCE takes KEY (default true): DEST keys SUBS and BLOCKS with the cache's key. */
	keyed?: boolean;
	/** A wide session (OPEN's session "wide"): CHUNK_SUBS, BLOCKS unasked, WIDE_CREDIT_WINDOW. */
	wide?: boolean;
	/** Sees every frame as it is sent, by its sender. */
	observe?: (from: 'source' | 'dest', message: Message) => void;
	/** Replaces SOURCE's hasher (e.g. to count its calls). */
	sourceHasher?: (hasher: Hasher) => Hasher;
	/** DEST sends CHECKPOINT (every chunk boundary its done prefix passes): handed here, not to SOURCE. */
	checkpoint?: (offset: number) => void;
};

/** Syncs src into dst over [start, end); resolves with DEST's final counters and the bytes sent each way. */
export async function syncPair(src: Image, dst: Image, writable: WritableImage | undefined, options: PairOptions = {}): Promise<{counters: Counters; toDest: number; toSource: number}> {
	const geometry = geometryFor(options.blockSize ?? 4096);
	const hasher = await createHasher(options.hash ?? 'blake3');
	const job = {start: options.start ?? 0, end: options.end ?? src.size, srcSize: src.size, dryRun: options.dryRun ?? false, copy: options.copy ?? false, wide: options.wide ?? false};
	let toDest = 0;
	let toSource = 0;
	return new Promise((resolve, reject) => {
		const toDestDecoder = new FrameDecoder();
		const toSourceDecoder = new FrameDecoder();
		const deliver = (bytes: Buffer, decoder: FrameDecoder, handle: (m: Message) => void): void => {
			setImmediate(() => {
				try {
					for (const frame of decoder.push(bytes)) {
						handle(decode(frame));
					}
				} catch (error) {
					reject(error);
				}
			});
		};
		let done = false;
		const source: SourceRole = new SourceRole(src, geometry, options.sourceHasher?.(hasher) ?? hasher, {...job, compress: options.compress ?? 0, bitmap: options.bitmap ?? false}, message => {
			options.observe?.('source', message);
			const bytes = encode(message);
			toDest += bytes.length;
			deliver(bytes, toDestDecoder, m => dest.handle(m));
		});
		source.onError = reject;
		const dest: DestRole = new DestRole(dst, writable, geometry, hasher, {...job, keyed: options.keyed ?? true, ...(options.checkpoint ? {checkpoints: true, checkpointEvery: {ms: 0, bytes: 1}} : {})}, message => {
			options.observe?.('dest', message);
			const bytes = encode(message);
			if (message.type === 'checkpoint') {
				options.checkpoint?.(message.offset);
				return;
			}
			if (message.type === 'done') {
				done = true;
				resolve({counters: {...countersFromTuple(message.counters), srcBytesRead: source.bytesRead}, toDest, toSource});
				return;
			}
			if (message.type === 'stats') {
				return;
			}
			toSource += bytes.length;
			deliver(bytes, toSourceDecoder, m => source.handle(m));
		}, options.cache);
		dest.begin();
		void done;
	});
}
