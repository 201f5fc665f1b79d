// The SOURCE side of a session: streams chunk digests under DEST's credit and answers its requests (doc/protocol.md).
import {deflateRawSync} from 'node:zlib';
import {nativeOps, type ZstdOps} from '../native/native.js';
import {AutoCompress} from './auto-compress.js';
import {rangeCursor} from '../blocks/blocks.js';
import {RunCoalescer} from '../blocks/runs.js';
import type {Hasher} from './hash.js';
import type {Image, Range} from '../image/image.js';
import {CountedImage} from '../image/counted-image.js';
import {emptyCounters} from '../blocks/counters.js';
import type {Message} from '../protocol/messages.js';
import {compressSpec, type CompressSpec, countersTuple, CREDIT_WINDOW, SHORT_DIGEST, WIDE_CREDIT_WINDOW} from '../protocol/messages.js';
import {type ChunkSnapshot, ChunkState, type Geometry} from './chunks.js';
import {SourceRules} from './session-rules.js';
import {KeyedDigests} from './keyed.js';

export type SourceJob = {
	readonly start: number;
	readonly end: number;
	readonly dryRun: boolean;
	/** --copy: no digests; every non-zero block is sent as data. */
	copy: boolean;
	/** OPEN's compress byte (protocol/messages.ts CompressBits): 0 never; a zlib level; zstd and auto bits. */
	readonly compress: number;
	/**
	 * --bitmap, after a recorded pass: only the chunks holding a range SRC's dirty bitmap marks (image.changedRanges)
	 * are read and compared; the others go as SKIP, unread.
	 */
	readonly bitmap?: boolean;
	/** Send STATS with srcBytesRead to the driver (its HELLO had Capability.readCounters). */
	readonly reportReads?: boolean;
	/** A wide session (the driver's HELLO had Capability.wideSession): CHUNK_SUBS instead of CHUNK, DEST's BLOCKS unasked. */
	readonly wide?: boolean;
};

/** The ranges rounded out to whole chunks of [start, end) (chunks from `start`), merged. Pure. */
export function chunksOf(ranges: readonly Range[], start: number, end: number, chunkSize: number): Range[] {
	const out: Range[] = [];
	for (const range of ranges) {
		const from = Math.max(start, start + Math.floor((range.start - start) / chunkSize) * chunkSize);
		const to = Math.min(end, start + Math.ceil((range.end - start) / chunkSize) * chunkSize);
		const last = out[out.length - 1];
		if (to <= from) {
			continue;
		}
		if (last && last.end >= from) {
			last.end = Math.max(last.end, to);
		} else {
			out.push({start: from, end: to});
		}
	}
	return out;
}

/** The intersection of two ascending lists of disjoint ranges. Pure. */
export function intersectRanges(a: readonly Range[], b: readonly Range[]): Range[] {
	const out: Range[] = [];
	for (let i = 0, j = 0; i < a.length && j < b.length;) {
		const from = Math.max(a[i]!.start, b[j]!.start);
		const to = Math.min(a[i]!.end, b[j]!.end);
		if (to > from) {
			out.push({start: from, end: to});
		}
		if (a[i]!.end < b[j]!.end) {
			i += 1;
		} else {
			j += 1;
		}
	}
	return out;
}

/** Stops producing after this much synchronous work, to let I/O through. */
const SLICE_MS = 20;

/** SOURCE's STATS (srcBytesRead) go to the driver at most this often while it streams chunks. */
const STATS_INTERVAL_MS = 100;

/** One worker range of SRC: produces CHUNK/ZERO under credit, answers SUBS, BLOCKS and FULL. Synchronous reads. */
export class SourceRole {
	private readonly chunk: ChunkState;
	private readonly data: Range[];
	private readonly overlapsData: (start: number, end: number) => boolean;
	private next: number;
	private sent = 0;
	private granted = 0;
	private blocksZero = 0;
	/** SRC's zero ranges between data chunks, sent as one ZERO frame per run. */
	private readonly zeros = new RunCoalescer((offset, length) => this.send({type: 'zero', offset, length}));
	/** Chunks the bitmap says did not change, sent as one SKIP frame per run. */
	private readonly skips = new RunCoalescer((offset, length) => this.send({type: 'skip', offset, length}));
	/** With --bitmap: whether [start, end) holds a dirty range; undefined: every chunk is compared. */
	private readonly changed: ((start: number, end: number) => boolean) | undefined;
	private scheduled = false;
	private ended = false;
	private stopped = false;
	/** Digests of the chunks sent most recently, so DEST's questions rarely need a re-read (bounded: the window and 32 more). */
	private readonly recent = new Map<number, ChunkSnapshot>();
	private readonly job: SourceJob;
	/** DEST said EMPTY: its range holds no data, so zero runs need not be sent. */
	private destEmpty = false;
	private deflateMisses = 0;
	private deflateSkipped = 0;
	private readonly compression: CompressSpec;
	/** --compress=auto: whether compressing pays on this worker's link, measured as it runs. */
	private readonly auto: AutoCompress | undefined;
	private readonly zstd: ZstdOps | undefined;
	/** Auto: the first CREDIT (the window), and the bytes sent up to the end of each chunk sent, in order. */
	private window: number | undefined;
	private readonly marks: number[] = [];
	private lastGrant = 0;
	/** DEST grants credit per completed chunk (seen once a CREDIT moved by one). */
	private perChunkCredit = false;
	private wire = 0;
	/** zstd's output, reused: a run is copied out of it only when it shrank. */
	private zstdOut: Buffer = Buffer.alloc(0);
	/** Every frame from DEST is checked here before SOURCE acts on it. */
	private readonly rules: SourceRules;
	private readonly send: (message: Message) => void;
	/** After DEST's KEY: SUBS and BLOCKS carry keyed digests, compared with ours keyed the same way. */
	private keyed: KeyedDigests | undefined;
	/** The keyed block digests of the chunk at `keyedAt` (computed for its SUBS, reused for its BLOCKS). */
	private keyedBlocks: Buffer = Buffer.alloc(0);
	private keyedAt = -1;
	/** SRC, its reads counted (srcBytesRead, sent to the driver in STATS). */
	private readonly image: CountedImage;
	/** srcBytesRead in the last STATS, and when it went. */
	private statsRead = 0;
	private statsAt = 0;

	constructor(
		image: Image,
		private readonly geometry: Geometry,
		private readonly hasher: Hasher,
		job: SourceJob,
		send: (message: Message) => void,
	) {
		this.image = new CountedImage(image);
		this.job = {...job};
		this.compression = compressSpec(job.compress);
		this.zstd = this.compression?.codec === 'zstd' ? nativeOps()?.zstd : undefined;
		if (this.compression?.codec === 'zstd' && !this.zstd) {
			throw new Error('zstd compression was asked for, but this agent cannot load libzstd.so.1');
		}
		this.auto = this.compression?.auto ? new AutoCompress(performance.now(), this.compression.level) : undefined;
		this.rules = new SourceRules({...job, srcSize: job.end, geometry});
		this.send = message => {
			this.rules.sent(message);
			this.maybeStats(message);
			send(message);
		};
		this.chunk = new ChunkState(geometry, hasher);
		let changedChunks: Range[] | undefined;
		if (job.bitmap) {
			if (!image.changedRanges) {
				throw new Error(`${image.name}: --bitmap: this image keeps no dirty bitmap`);
			}
			// Whole chunks holding a dirty range: the only ones read.
			changedChunks = chunksOf(image.changedRanges(job.start, job.end), job.start, job.end, geometry.chunkSize);
			this.changed = rangeCursor(changedChunks);
		}
		this.data = image.dataRanges(job.start, job.end) ?? [{start: job.start, end: job.end}];
		this.overlapsData = rangeCursor(this.data);
		// What this range will read, in order: its data, in the chunks the bitmap marks (an NBD image fetches ahead in it).
		image.readAhead?.(changedChunks ? intersectRanges(this.data, changedChunks) : this.data);
		this.next = job.start;
	}

	/** Handles one message from DEST; throws on I/O errors, and ProtocolViolation on a frame DEST may not send. */
	handle(message: Message): void {
		this.rules.received(message);
		switch (message.type) {
			case 'empty':
				// DEST holds nothing in this range: send the data without digests, as --copy does, and
				// no zero runs inside data chunks (there is nothing to zero there).
				this.job.copy = true;
				this.destEmpty = true;
				return;
			case 'key':
				this.keyed = new KeyedDigests(this.hasher, Buffer.from(message.key), this.geometry);
				return;
			case 'credit':
				this.granted = Math.max(this.granted, message.granted);
				if (this.auto) {
					// CREDIT grants the window past the chunks DEST completed: those chunks' frames have crossed the link.
					if (this.window !== undefined && message.granted === this.lastGrant + 1) {
						this.perChunkCredit = true;
					}
					this.lastGrant = message.granted;
					this.window ??= message.granted;
					const completed = this.granted - this.window;
					// Every chunk sent is complete: all that went out arrived (answers sent after a chunk's mark too), so holding() ends.
					this.auto.acked(completed >= this.sent ? this.wire : completed > 0 ? this.marks[completed - 1] ?? 0 : 0, performance.now());
				}
				this.schedule();
				return;
			case 'subs':
				this.answerSubs(message.offset, message.digests);
				return;
			case 'blocks':
				this.answerBlocks(message.offset, message.mask, message.digests);
				return;
			case 'full':
				this.recent.delete(message.offset);
				this.load(message.offset, false);
				this.sendBlocks(() => true);
				this.send({type: 'chunkEnd', offset: message.offset});
				return;
			case 'done':
				this.stopped = true;
				return;
			default:
				throw new Error(`SOURCE cannot handle a ${message.type} message`);
		}
	}

	/** Bytes read from SRC so far. */
	get bytesRead(): number {
		return this.image.bytesRead;
	}

	/**
	 * STATS with srcBytesRead before `message` when the count moved: every 100 ms, and before SOURCE_END and each
	 * CHUNK_END after it. Every read is followed by a frame of its chunk, and DEST's DONE follows the last CHUNK_END,
	 * so the driver holds the final count by the time DONE reaches it.
	 */
	private maybeStats(message: Message): void {
		const read = this.image.bytesRead;
		if (read === this.statsRead || this.job.reportReads !== true) {
			return;
		}
		const closing = message.type === 'sourceEnd' || (this.ended && message.type === 'chunkEnd');
		const now = performance.now();
		if (closing || now - this.statsAt >= STATS_INTERVAL_MS) {
			this.statsRead = read;
			this.statsAt = now;
			this.send({type: 'stats', counters: countersTuple({...emptyCounters(), srcBytesRead: read})});
		}
	}

	/** Stops producing (the session failed). */
	stop(): void {
		this.stopped = true;
	}

	private schedule(): void {
		if (!this.scheduled && !this.ended && !this.stopped) {
			this.scheduled = true;
			setImmediate(() => {
				this.scheduled = false;
				try {
					this.produce();
				} catch (error) {
					this.stopped = true;
					this.onError(error);
				}
			});
		}
	}

	/** Set by the owner: an error raised while producing asynchronously. */
	onError: (error: unknown) => void = error => {
		throw error;
	};

	private produce(): void {
		const began = performance.now();
		const {chunkSize, blockSize} = this.geometry;
		while (!this.stopped && this.next < this.job.end) {
			const offset = this.next;
			const length = Math.min(chunkSize, this.job.end - offset);
			if (this.changed && !this.changed(offset, offset + length)) {
				this.zeros.flush();
				this.skips.add(offset, offset + length);
				this.next += length;
				continue;
			}
			this.skips.flush();
			if (!this.overlapsData(offset, offset + length)) {
				this.zeros.add(offset, offset + length);
				this.blocksZero += Math.ceil(length / blockSize);
				this.next += length;
				continue;
			}
			if (this.sent >= this.granted || this.holding()) {
				this.auto?.waiting(performance.now());
				this.zeros.flush();
				this.skips.flush();
				return; // Resumed by the next CREDIT.
			}
			this.load(offset, !this.job.copy); // --copy and an EMPTY DEST use no digests: do not compute them.
			this.blocksZero += this.chunk.zeroBlocks();
			this.next += length;
			if (this.chunk.allZero()) {
				this.zeros.add(offset, offset + length);
				continue;
			}
			this.zeros.flush();
			this.sent += 1;
			if (this.job.copy) {
				this.sendBlocks(() => true);
				this.send({type: 'chunkEnd', offset});
			} else {
				// A wide session: the sub-chunk digests go along, and DEST answers BLOCKS at once (one round trip, not two).
				this.send(this.job.wide === true
					? {type: 'chunkSubs', offset, length, digest: this.chunk.chunkDigest(), subs: this.keyed ? this.keyedOf(offset).subs : this.chunk.subDigests()}
					: {type: 'chunk', offset, length, digest: this.chunk.chunkDigest()});
				this.remember();
			}
			if (this.auto) {
				this.wireSent(this.job.copy ? 13 : this.job.wide === true ? 49 + this.chunk.subs() * SHORT_DIGEST : 49);
				this.marks.push(this.wire);
			}
			if (performance.now() - began > SLICE_MS) {
				this.schedule();
				return;
			}
		}
		if (!this.stopped && this.next >= this.job.end && !this.ended) {
			this.zeros.flush();
			this.skips.flush();
			this.ended = true;
			this.send({type: 'sourceEnd', blocksZero: this.blocksZero});
		}
	}

	private remember(): void {
		this.recent.set(this.chunk.offset, this.chunk.snapshot());
		if (this.recent.size > (this.job.wide === true ? WIDE_CREDIT_WINDOW : CREDIT_WINDOW) + CREDIT_WINDOW) {
			this.recent.delete(this.recent.keys().next().value as number);
		}
	}

	/** The chunk's digests, from memory when possible; its data is read only where it is sent. */
	private recall(offset: number): void {
		const snapshot = this.recent.get(offset);
		if (snapshot) {
			this.chunk.restore(snapshot);
		} else {
			this.load(offset);
			this.remember();
		}
	}

	private load(offset: number, hash = true): void {
		const length = Math.min(this.geometry.chunkSize, this.job.end - offset);
		if (offset < this.job.start || offset >= this.job.end || (offset - this.job.start) % this.geometry.chunkSize !== 0) {
			throw new Error(`DEST asked about offset ${offset}, which is not a chunk of this range`);
		}
		this.chunk.load(this.image, this.data, offset, length, hash);
	}

	private answerSubs(offset: number, digests: Buffer): void {
		this.recall(offset);
		const mine = this.keyed ? this.keyedOf(offset).subs : this.chunk.subDigests();
		let mask = 0;
		for (let sub = 0; sub < this.chunk.subs(); sub++) {
			const at = sub * SHORT_DIGEST;
			if (mine.compare(digests, at, at + SHORT_DIGEST, at, at + SHORT_DIGEST) === 0) {
				continue;
			}
			if (this.chunk.subZero(sub)) {
				const [first, end] = this.chunk.subBlocks(sub);
				this.sendRun('zero', first, end);
			} else {
				mask |= 1 << sub;
			}
		}
		if (mask === 0) {
			this.recent.delete(offset);
		}
		this.send(mask === 0 ? {type: 'chunkEnd', offset} : {type: 'want', offset, mask});
	}

	private answerBlocks(offset: number, mask: number, digests: Buffer): void {
		this.recall(offset);
		this.recent.delete(offset);
		const wanted: number[] = [];
		for (let sub = 0; sub < this.chunk.subs(); sub++) {
			if (mask & (1 << sub)) {
				const [first, end] = this.chunk.subBlocks(sub);
				for (let block = first; block < end; block++) {
					wanted.push(block);
				}
			}
		}
		const differs = new Uint8Array(this.chunk.blocks);
		const [mine, width] = this.keyed ? [this.keyedOf(offset).blocks, SHORT_DIGEST] : [this.chunk.digests, 32];
		wanted.forEach((block, index) => {
			const at = block * width;
			differs[block] = mine.compare(digests, index * SHORT_DIGEST, (index + 1) * SHORT_DIGEST, at, at + SHORT_DIGEST) === 0 ? 0 : 1;
		});
		this.sendBlocks(block => differs[block] === 1);
		this.send({type: 'chunkEnd', offset});
	}

	/** The keyed digests of the loaded chunk (at `offset`): its blocks' and its sub-chunks'. */
	private keyedOf(offset: number): {blocks: Buffer; subs: Buffer} {
		const keyed = this.keyed!;
		if (this.keyedAt !== offset) {
			this.keyedBlocks = keyed.chunk(this.chunk.digests, this.chunk.blocks).blocks;
			this.keyedAt = offset;
		}
		return {blocks: this.keyedBlocks, subs: keyed.subs(this.keyedBlocks, this.chunk.blocks)};
	}

	/** Sends the selected blocks of the loaded chunk: runs of zero blocks as ZERO, others as DATA (DIFF in a dry run). */
	private sendBlocks(selected: (block: number) => boolean): void {
		const {blocks, zero} = this.chunk;
		for (let block = 0; block < blocks;) {
			if (!selected(block)) {
				block += 1;
				continue;
			}
			const isZero = zero[block];
			let end = block + 1;
			while (end < blocks && selected(end) && zero[end] === isZero) {
				end += 1;
			}
			if (isZero) {
				// With --copy DEST has not read its data: it must hear of every zero run to zero it.
				if (!this.destEmpty) {
					this.sendRun('zero', block, end);
				}
			} else {
				this.sendRun(this.job.dryRun ? 'diff' : 'data', block, end);
			}
			block = end;
		}
	}

	private sendRun(kind: 'zero' | 'diff' | 'data', first: number, end: number): void {
		const {blockSize} = this.geometry;
		const from = first * blockSize;
		const to = Math.min(this.chunk.length, end * blockSize);
		const offset = this.chunk.offset + from;
		if (kind !== 'data') {
			this.send({type: kind, offset, length: to - from});
			return;
		}
		if (!this.chunk.dataValid) {
			this.image.read(this.chunk.data, from, to - from, offset);
		}
		const data = this.chunk.data.subarray(from, to);
		const spec = this.compression;
		const auto = this.auto;
		// With a fixed level: after 8 misses in a row (encrypted or compressed data) try one run in 16. Auto samples itself.
		if (spec && (auto ? auto.wants() : this.deflateMisses < 8 || ++this.deflateSkipped % 16 === 0)) {
			const began = performance.now();
			const message = this.compress(spec, offset, data);
			auto?.compressed(data.length, message ? message.bytes : data.length, performance.now() - began);
			if (message) {
				this.deflateMisses = 0;
				this.send(message.frame);
				this.wireSent(message.bytes + 17);
				return;
			}
			this.deflateMisses += 1;
		}
		this.send({type: 'data', offset, data});
		if (auto) {
			this.wireSent(data.length + 13);
		}
	}

	/**
	 * Auto: enough is in flight for the link (AutoCompress.holding), and more than DEST completes before its next
	 * CREDIT (a DEST of this version grants per chunk; an older one a quarter window at a time), so that DEST always
	 * has chunks to complete and a CREDIT to send.
	 */
	private holding(): boolean {
		if (!this.auto || this.window === undefined) {
			return false;
		}
		const completed = this.granted - this.window;
		const inFlight = this.sent - completed;
		return (this.perChunkCredit ? inFlight >= 2 : inFlight >= this.window / 2) && this.auto.holding();
	}

	private wireSent(bytes: number): void {
		this.wire += bytes;
		this.auto?.sent(bytes);
	}

	/** The run as DATAZS (zstd) or DATAZ (zlib) when that is at least 10% smaller; undefined when it is not. */
	private compress(spec: NonNullable<CompressSpec>, offset: number, data: Buffer): {frame: Message; bytes: number} | undefined {
		const most = Math.floor(data.length * 0.9) - 4;
		if (most <= 0) {
			return undefined;
		}
		if (this.zstd) {
			if (this.zstdOut.length < most) {
				this.zstdOut = Buffer.allocUnsafe(Math.max(most, this.geometry.chunkSize));
			}
			const written = this.zstd.compress(data, data.length, this.zstdOut.subarray(0, most), this.auto?.level ?? spec.level);
			return written > 0 ? {frame: {type: 'datazs', offset, length: data.length, compressed: Buffer.from(this.zstdOut.subarray(0, written))}, bytes: written} : undefined;
		}
		const deflated = deflateRawSync(data, {level: Math.min(9, spec.level)});
		return deflated.length <= most ? {frame: {type: 'dataz', offset, length: data.length, deflated}, bytes: deflated.length} : undefined;
	}

}
