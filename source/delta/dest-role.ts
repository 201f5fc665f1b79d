// The DEST side of a session: compares chunk digests with its own image, asks for what differs, applies and re-checks it.
import {DIGEST_SIZE, type Hasher} from './hash.js';
import {type BatchPlan, createBatchPlan, planBatch} from '../blocks/plan.js';
import {firstRangeEndingAfter, unionAligned} from '../blocks/blocks.js';
import {type Counters, emptyCounters} from '../blocks/counters.js';
import type {Image, Range, WritableImage} from '../image/image.js';
import {CountedImage} from '../image/counted-image.js';
import {countersTuple, CREDIT_WINDOW, DATA_BUDGET, type Message, WIDE_CREDIT_WINDOW} from '../protocol/messages.js';
import {type ChunkSnapshot, ChunkState, type Geometry} from './chunks.js';
import {type CachedChunk, chunkFromDigests, type RangeCache} from './digest-cache.js';
import {KeyedDigests} from './keyed.js';
import {SHORT_DIGEST} from '../protocol/messages.js';
import {DestRules} from './session-rules.js';

export type DestJob = {
	readonly start: number;
	readonly end: number;
	/** SRC's size: nothing at or past it is ever written, whatever SOURCE sends. */
	readonly srcSize: number;
	readonly dryRun: boolean;
	copy: boolean;
	/** SOURCE takes KEY (OPEN's keyed flag): with a cache, SUBS and BLOCKS carry its keyed digests and DST is not read back. */
	readonly keyed?: boolean;
	/** The driver's HELLO had Capability.checkpoints: DEST says CHECKPOINT (after a sync) as its done prefix grows. */
	readonly checkpoints?: boolean;
	/** How often (default CHECKPOINT_INTERVAL_MS and CHECKPOINT_MIN_BYTES; tests check every chunk). */
	readonly checkpointEvery?: {readonly ms: number; readonly bytes: number};
	/** A wide session (the driver's HELLO had Capability.wideSession): CHUNK_SUBS, BLOCKS unasked, WIDE_CREDIT_WINDOW. */
	readonly wide?: boolean;
};

/** A CHECKPOINT at most this often, and only when its prefix grew by CHECKPOINT_MIN_BYTES since the last one. */
export const CHECKPOINT_INTERVAL_MS = 500;
export const CHECKPOINT_MIN_BYTES = 4 * 1024 * 1024;

const STATS_INTERVAL_MS = 100;

/**
 * fromZero: DEST's chunk was all zero, so FULL was asked at once and every DATA block is a change (no re-check needed).
 * cached: DST was not read; the digest cache's record stands for it (`snapshot` is then unused).
 */
type Pending = {digest: Buffer; snapshot: ChunkSnapshot; full: boolean; fromZero: boolean; length: number; cached?: CachedChunk; bound?: number};

/** A DEST chunk still in the work (differing): what SOURCE said and our block digests. */
export class DestRole {
	readonly counters: Counters = emptyCounters();
	private readonly chunk: ChunkState;
	private readonly check: ChunkState;
	private readonly data: Range[];
	private readonly pending = new Map<number, Pending>();
	private completed = 0;
	private lastCredit = 0;
	/** A wide session: the most image bytes SOURCE may still send for the chunks in progress (each chunk's bound: its length, or its mask's sub-chunks). */
	private pendingData = 0;
	/** A wide session: CHUNK_SUBS received while pendingData was at DATA_BUDGET, answered in order as chunks complete. */
	private readonly deferred: Array<{offset: number; length: number; digest: Buffer; subs: Buffer}> = [];
	private draining = false;
	private sourceEnded = false;
	private finished = false;
	private lastStats = 0;
	private readonly scratch: Buffer;
	/** The one planner of runs (blocks/plan.ts), as the local engine uses it. */
	private readonly plan: BatchPlan;
	private readonly job: DestJob;
	/** Every frame from SOURCE is checked here before anything of it is applied. */
	private readonly rules: DestRules;
	private readonly send: (message: Message) => void;
	/** The digest cache: read instead of DST where it knows a chunk, and told what DST holds after each chunk (not in a dry run). */
	private readonly cache: RangeCache | undefined;
	/** zeroRecord's records, by chunk length. */
	private readonly zeroRecords = new Map<number, CachedChunk>();
	/** --copy and EMPTY, with a cache: the full block digests of the chunks being written, for their records. */
	private readonly building = new Map<number, Buffer>();
	private readonly digestScratch: Buffer;
	/** The cache's keyed digests (records are always keyed); `sessionKeyed`: SOURCE compares them too (KEY sent). */
	private readonly keyed: KeyedDigests | undefined;
	private sessionKeyed = false;
	private readonly keyedZeros = new Map<number, Buffer>();
	/** DST, its reads counted (dstBytesRead). */
	private readonly image: CountedImage;
	/** The end of the chunks SOURCE has begun (CHUNK, whole-chunk ZERO or SKIP, a --copy chunk once it ended). */
	private frontier: number;
	/** A --copy chunk whose runs have begun and whose CHUNK_END has not come. */
	private copyChunk: number | undefined;
	private lastCheckpoint: number;
	private lastCheckpointAt = performance.now();

	constructor(
		image: Image,
		private readonly writable: WritableImage | undefined,
		private readonly geometry: Geometry,
		private readonly hasher: Hasher,
		job: DestJob,
		send: (message: Message) => void,
		cache?: RangeCache,
	) {
		this.image = new CountedImage(image);
		this.job = {...job};
		this.cache = job.dryRun ? undefined : cache;
		this.keyed = this.cache && new KeyedDigests(hasher, this.cache.key, geometry);
		this.rules = new DestRules({...job, geometry});
		this.send = message => {
			this.rules.sent(message);
			send(message);
		};
		this.chunk = new ChunkState(geometry, hasher);
		this.check = new ChunkState(geometry, hasher);
		this.scratch = Buffer.allocUnsafe(geometry.chunkSize);
		this.digestScratch = Buffer.allocUnsafe((geometry.chunkSize / geometry.blockSize) * DIGEST_SIZE);
		this.plan = createBatchPlan(geometry.chunkSize / geometry.blockSize);
		this.data = job.start >= image.size ? [] : (image.dataRanges(job.start, Math.min(job.end, image.size)) ?? [{start: job.start, end: job.end}]);
		this.frontier = job.start;
		this.lastCheckpoint = job.start;
	}

	/** Where every chunk before is complete (written, not yet synced): the lowest chunk begun (or deferred) and not complete, else the frontier. */
	donePrefix(): number {
		let low = Math.min(this.frontier, this.copyChunk ?? Number.POSITIVE_INFINITY);
		for (const offset of this.pending.keys()) {
			low = Math.min(low, offset);
		}
		// A wide session's CHUNK_SUBS kept for the data budget are not complete either (whole-chunk ZERO after them moves the frontier).
		return Math.min(low, this.deferred[0]?.offset ?? Number.POSITIVE_INFINITY);
	}

	/**
	 * CHECKPOINT (doc/protocol.md, "Reconnecting"): after an fdatasync, [start, prefix) is on DST's disk, so a driver whose
	 * link dropped may resume this range there. At most every CHECKPOINT_INTERVAL_MS, once the prefix grew enough.
	 */
	private maybeCheckpoint(): void {
		if (!this.job.checkpoints || this.finished) {
			return;
		}
		const prefix = this.donePrefix();
		const now = performance.now();
		const every = this.job.checkpointEvery ?? {ms: CHECKPOINT_INTERVAL_MS, bytes: CHECKPOINT_MIN_BYTES};
		if (prefix <= this.lastCheckpoint || prefix - this.lastCheckpoint < every.bytes || now - this.lastCheckpointAt < every.ms) {
			return;
		}
		this.writable?.sync();
		this.lastCheckpoint = prefix;
		this.lastCheckpointAt = performance.now();
		this.send({type: 'checkpoint', offset: prefix});
	}

	/** Opens the window: call once after OPENED was sent. */
	begin(): void {
		if (this.data.length === 0 && !this.job.dryRun && !this.job.copy) {
			// Nothing here (a new file, a hole): no digests needed; every non-zero SRC block is data to write.
			this.job.copy = true;
			this.send({type: 'empty'});
		}
		if (this.keyed && this.job.keyed === true && !this.job.copy) {
			this.sessionKeyed = true;
			this.send({type: 'key', key: this.keyed.key});
		}
		this.send({type: 'credit', granted: this.window()});
		this.maybeFinish();
	}

	/** Handles one message from SOURCE; throws on I/O errors, and ProtocolViolation (before any write) on a frame SOURCE may not send. */
	handle(message: Message): void {
		this.rules.received(message);
		switch (message.type) {
			case 'chunk':
				this.onChunk(message.offset, message.length, message.digest);
				break;
			case 'chunkSubs':
				if (this.deferred.length > 0 || this.pendingData >= DATA_BUDGET) {
					// The data asked for stays bounded: answered once earlier chunks complete (their copies: the frame's buffer is reused).
					this.deferred.push({offset: message.offset, length: message.length, digest: Buffer.from(message.digest), subs: Buffer.from(message.subs)});
				} else {
					this.onChunk(message.offset, message.length, message.digest, message.subs);
				}
				break;
			case 'zero':
				this.makeZero(message.offset, message.length, this.isZeroChunks(message.offset, message.length));
				break;
			case 'skip':
				this.skip(message.offset, message.length);
				break;
			case 'want': {
				const pending = this.pendingAt(message.offset);
				if (pending.cached) {
					this.send({type: 'blocks', offset: message.offset, mask: message.mask, digests: this.cachedBlockDigests(pending.cached, message.mask, pending.length)});
					break;
				}
				this.check.restore(pending.snapshot);
				this.send({type: 'blocks', offset: message.offset, mask: message.mask, digests: this.sessionKeyed ? this.keyedBlockDigests(pending, message.mask) : this.check.blockDigests(message.mask)});
				break;
			}
			case 'data':
				this.apply(message.offset, message.data);
				break;
			case 'dataz':
				this.apply(message.offset, this.rules.inflate(message));
				break;
			case 'datazs':
				this.apply(message.offset, this.rules.unzstd(message));
				break;
			case 'diff':
				if (this.job.copy) {
					this.copyChunk ??= this.chunkOf(message.offset);
				}
				this.counters.blocksChanged += Math.ceil(message.length / this.geometry.blockSize);
				break;
			case 'chunkEnd':
				this.onChunkEnd(message.offset);
				break;
			case 'sourceEnd':
				this.counters.blocksZero = message.blocksZero;
				this.sourceEnded = true;
				this.maybeFinish();
				break;
			default:
				break;
		}
		const now = performance.now();
		if (now - this.lastStats >= STATS_INTERVAL_MS && !this.finished) {
			this.lastStats = now;
			this.counters.dstBytesRead = this.image.bytesRead;
			this.send({type: 'stats', counters: countersTuple(this.counters)});
		}
	}

	/** `subs`: SOURCE's sub-chunk digests (CHUNK_SUBS, a wide session): a differing chunk is answered BLOCKS (or FULL), not SUBS. */
	private onChunk(offset: number, length: number, digest: Buffer, subs?: Buffer): void {
		this.frontier = Math.max(this.frontier, offset + length);
		const known = this.cache?.known(offset, length);
		if (known?.chunkDigest?.equals(digest)) {
			// DST is not read: the cache's full chunk digest is SRC's.
			this.cache!.record(offset, length, known);
			this.complete(offset, length);
			return;
		}
		if (known && this.sessionKeyed) {
			// Compared below the chunk with the cache's keyed digests, SOURCE keying its own the same way.
			const pending: Pending = {digest: Buffer.from(digest), snapshot: this.chunk.snapshot(), full: false, fromZero: false, length, cached: known};
			this.track(offset, pending);
			if (subs) {
				this.answerSubs(offset, pending, subs, known.subs, mask => this.cachedBlockDigests(known, mask, length));
			} else {
				this.send({type: 'subs', offset, digests: known.subs});
			}
			return;
		}
		this.chunk.load(this.image, this.data, offset, length);
		if (this.chunk.chunkDigest().equals(digest)) {
			this.recordFrom(offset, length, this.chunk.digests);
			this.complete(offset, length);
			return;
		}
		if (this.chunk.allZero() && !this.job.dryRun) {
			// Nothing here yet (a new file, a hole): every non-zero SRC block is a change; skip the digest rounds.
			this.track(offset, {digest: Buffer.from(digest), snapshot: this.chunk.snapshot(), full: true, fromZero: true, length});
			this.send({type: 'full', offset});
			return;
		}
		// Keep our block digests for WANT (a copy: this.chunk is reused for the next chunk).
		const pending: Pending = {digest: Buffer.from(digest), snapshot: this.chunk.snapshot(), full: false, fromZero: false, length};
		this.track(offset, pending);
		const ours = this.sessionKeyed ? this.keyed!.chunk(this.chunk.digests, this.chunk.blocks).subs : this.chunk.subDigests();
		if (subs) {
			this.answerSubs(offset, pending, subs, ours, mask => this.sessionKeyed ? this.keyedBlockDigests(pending, mask) : this.chunk.blockDigests(mask));
		} else {
			this.send({type: 'subs', offset, digests: ours});
		}
	}

	/**
	 * A differing CHUNK_SUBS: BLOCKS for the sub-chunks whose digests differ, as SOURCE's WANT would have asked (steps 2
	 * and 3 of doc/protocol.md in one); when none does (the chunk digests differ, the truncated ones do not) FULL.
	 */
	private answerSubs(offset: number, pending: Pending, theirs: Buffer, ours: Buffer, blocks: (mask: number) => Buffer): void {
		let mask = 0;
		for (let sub = 0; sub * SHORT_DIGEST < ours.length; sub++) {
			const at = sub * SHORT_DIGEST;
			if (ours.compare(theirs, at, at + SHORT_DIGEST, at, at + SHORT_DIGEST) !== 0) {
				mask |= 1 << sub;
			}
		}
		if (mask === 0) {
			pending.full = true;
			this.send({type: 'full', offset});
			return;
		}
		this.bound(pending, Math.min(pending.length, popcount(mask) * this.geometry.subSize));
		this.send({type: 'blocks', offset, mask, digests: blocks(mask)});
	}

	private onChunkEnd(offset: number): void {
		if (this.job.copy) {
			const length = Math.min(this.geometry.chunkSize, this.job.end - offset);
			this.copyChunk = undefined;
			this.frontier = Math.max(this.frontier, offset + length);
			if (this.cache) {
				const digests = this.building.get(offset) ?? this.zeroDigests(length);
				this.building.delete(offset);
				this.recordFrom(offset, length, digests);
			}
			this.complete(offset, length);
			return;
		}
		const pending = this.pendingAt(offset);
		if (pending.cached) {
			// Written through the cache: SOURCE sent every block whose keyed digest differs from the cache's, so the
			// chunk is SRC's (nobody without the key can make two blocks with equal keyed digests): not read back.
			const cached = pending.cached;
			this.keyed!.subs(cached.blocks, cached.blocks.length / SHORT_DIGEST, cached.subs);
			cached.chunkDigest = pending.digest;
			this.cache!.record(offset, pending.length, cached);
			this.complete(offset, pending.length);
			return;
		}
		if (this.job.dryRun || pending.fromZero) {
			if (pending.fromZero) {
				this.recordFrom(offset, pending.length, pending.snapshot.digests);
			}
			this.complete(offset, pending.length);
			return;
		}
		// Check the full chunk digest over our block digests, updated from what we wrote (no re-read):
		// this is what makes the truncated digests safe: a block wrongly thought equal shows here.
		const digest = Buffer.allocUnsafe(DIGEST_SIZE);
		this.hasher.digest(pending.snapshot.digests, pending.snapshot.digests.length, digest, 0);
		if (digest.equals(pending.digest)) {
			this.recordFrom(offset, pending.length, pending.snapshot.digests);
			this.complete(offset, pending.length);
		} else if (!pending.full) {
			pending.full = true;
			this.bound(pending, pending.length);
			this.send({type: 'full', offset});
		} else {
			throw new Error(`the chunk at offset ${offset} still differs from SRC after rewriting it (is SRC changing during the sync?)`);
		}
	}

	/** Writes data at offset; after FULL only the blocks that really differ. Updates the chunk's block digests. */
	private apply(offset: number, data: Buffer): void {
		const {blockSize} = this.geometry;
		const pending = this.pending.get(this.chunkOf(offset));
		if (pending?.cached) {
			this.applyCached(pending.cached, offset, data);
			return;
		}
		if (!pending && this.job.copy) {
			this.copyChunk ??= this.chunkOf(offset);
		}
		const full = pending !== undefined && pending.full && !pending.fromZero;
		if (pending && (!pending.fromZero || this.cache) && !this.job.dryRun) {
			this.hasher.hashBlocks(data, data.length, blockSize, pending.snapshot.digests, ((offset - pending.snapshot.offset) / blockSize) * DIGEST_SIZE);
		}
		if (!pending && this.job.copy && this.cache) {
			const chunk = this.chunkOf(offset);
			let digests = this.building.get(chunk);
			if (!digests) {
				digests = Buffer.from(this.zeroDigests(Math.min(this.geometry.chunkSize, this.job.end - chunk)));
				this.building.set(chunk, digests);
			}
			this.hasher.hashBlocks(data, data.length, blockSize, digests, ((offset - chunk) / blockSize) * DIGEST_SIZE);
		}
		if (full) {
			this.image.read(this.scratch, 0, data.length, offset);
		}
		// After FULL: only the blocks that differ from what DST holds; else every block as SRC has it.
		const plan = this.plan;
		planBatch(plan, data, full ? this.scratch : null, data.length, blockSize, {copy: !full, dstMayHaveData: full || (pending?.fromZero !== true && this.data.length > 0)});
		for (let r = 0; r < plan.writeRuns; r++) {
			const from = plan.writeStart[r]! * blockSize;
			const to = Math.min(data.length, plan.writeEnd[r]! * blockSize);
			this.writable?.write(data, from, to - from, offset + from);
			this.counters.bytesWritten += to - from;
			this.counters.blocksChanged += plan.writeEnd[r]! - plan.writeStart[r]!;
		}
		this.zeroRuns(plan, offset, data.length);
	}

	/** Zeroes the plan's zero runs of the batch at `offset`. */
	private zeroRuns(plan: BatchPlan, offset: number, length: number): void {
		const {blockSize} = this.geometry;
		for (let r = 0; r < plan.zeroRuns; r++) {
			const from = plan.zeroStart[r]! * blockSize;
			const to = Math.min(length, plan.zeroEnd[r]! * blockSize);
			this.zeroRun(offset + from, to - from);
		}
	}

	/** Makes [offset, offset+length) zero on DEST, touching only blocks that are not zero yet. */
	private makeZero(offset: number, length: number, scanned: boolean): void {
		const {blockSize, chunkSize} = this.geometry;
		const end = offset + length;
		const inProgress = scanned ? undefined : this.pending.get(this.chunkOf(offset));
		if (!scanned && this.job.copy && !inProgress) {
			this.copyChunk ??= this.chunkOf(offset);
		}
		if (inProgress?.cached) {
			// Blocks of a chunk compared through the cache: zero those the cache says are not zero, without reading.
			this.zeroCached(inProgress.cached, this.chunkOf(offset), offset, end);
			this.maybeFinish();
			return;
		}
		if (scanned && this.cache && !this.job.copy) {
			for (let at = offset; at < end; at += chunkSize) {
				const chunkLength = Math.min(chunkSize, end - at);
				const known = this.cache.known(at, chunkLength);
				if (known) {
					this.zeroCached(known, at, at, at + chunkLength);
				} else {
					this.zeroWhereData(at, at + chunkLength);
				}
			}
		} else {
			this.zeroWhereData(offset, end);
		}
		if (scanned) {
			this.frontier = Math.max(this.frontier, end);
			this.counters.bytesScanned += length;
			for (let at = offset; this.cache && at < end; at += chunkSize) {
				const chunkLength = Math.min(chunkSize, end - at);
				this.cache.record(at, chunkLength, this.zeroRecord(chunkLength));
			}
		} else {
			// Blocks of a chunk in progress that SOURCE says are zero: so will our digests be.
			const pending = this.pending.get(this.chunkOf(offset));
			if (pending && !pending.fromZero) {
				for (let at = offset; at < end; at += blockSize) {
					const blockLength = Math.min(blockSize, pending.snapshot.offset + pending.length - at);
					this.chunk.zeroDigest(blockLength).copy(pending.snapshot.digests, ((at - pending.snapshot.offset) / blockSize) * DIGEST_SIZE);
				}
			}
		}
		this.maybeFinish();
	}

	/**
	 * SKIP: SRC's dirty bitmap says these whole chunks did not change since the last pass, so DST holds them
	 * already; nothing is read or written. They count as scanned (progress reaches the end). The digest cache
	 * keeps what it knew of them; a chunk it did not know gets a record that knows nothing (compared as changed).
	 */
	private skip(offset: number, length: number): void {
		const {chunkSize, subSize, blockSize} = this.geometry;
		for (let at = offset; this.cache && at < offset + length; at += chunkSize) {
			const chunkLength = Math.min(chunkSize, offset + length - at);
			const known = this.cache.known(at, chunkLength);
			this.cache.record(at, chunkLength, known ?? {
				chunkDigest: null,
				subs: Buffer.alloc(Math.ceil(chunkLength / subSize) * SHORT_DIGEST), // zeros: matches no keyed digest
				blocks: Buffer.alloc(Math.ceil(chunkLength / blockSize) * SHORT_DIGEST),
			});
		}
		this.frontier = Math.max(this.frontier, offset + length);
		this.counters.bytesScanned += length;
		this.maybeFinish();
	}

	/** Zeroes [offset, end) where SEEK_DATA says DST may hold data: all of it with --copy, else the blocks read as non-zero. */
	private zeroWhereData(offset: number, end: number): void {
		const {blockSize, chunkSize} = this.geometry;
		// Only where DST has data (SEEK_DATA) can a block be non-zero. --copy does not read DST: it
		// zeroes all of that, as the local engine does; otherwise only the blocks read as non-zero.
		const first = firstRangeEndingAfter(this.data, offset);
		let last = first;
		while (last < this.data.length && this.data[last]!.start < end) {
			last += 1;
		}
		const ranges = unionAligned(this.data.slice(first, last), [], blockSize, {start: offset, end});
		for (const range of ranges) {
			if (this.job.copy) {
				this.zeroRun(range.start, range.end - range.start);
				continue;
			}
			for (let at = range.start; at < range.end; at += chunkSize) {
				const batch = Math.min(chunkSize, range.end - at);
				this.image.read(this.scratch, 0, batch, at);
				planBatch(this.plan, null, this.scratch, batch, blockSize, {copy: false, dstMayHaveData: true});
				this.zeroRuns(this.plan, at, batch);
			}
		}
	}

	/** Zeroes the blocks of [from, end) (inside the chunk at `chunk`) that the cache's record says are not zero; updates the record. */
	private zeroCached(cached: CachedChunk, chunk: number, from: number, end: number): void {
		const {blockSize} = this.geometry;
		const chunkEnd = chunk + cached.blocks.length / SHORT_DIGEST * blockSize;
		let runStart = -1;
		const flush = (at: number): void => {
			if (runStart >= 0) {
				this.zeroRun(runStart, at - runStart);
				runStart = -1;
			}
		};
		for (let at = from; at < end; at += blockSize) {
			const blockLength = Math.min(blockSize, end - at, this.job.end - at);
			const slot = ((at - chunk) / blockSize) * SHORT_DIGEST;
			const zero = this.keyedZero(blockLength);
			if (zero.compare(cached.blocks, slot, slot + SHORT_DIGEST, 0, SHORT_DIGEST) === 0) {
				flush(at);
				continue;
			}
			if (runStart < 0) {
				runStart = at;
			}
			zero.copy(cached.blocks, slot, 0, SHORT_DIGEST);
			cached.chunkDigest = null;
		}
		flush(Math.min(end, chunkEnd, this.job.end));
	}

	/** Writes the DATA of a chunk compared through the cache (every block SOURCE sent differs from DST) and updates its record. */
	private applyCached(cached: CachedChunk, offset: number, data: Buffer): void {
		const {blockSize} = this.geometry;
		const chunk = this.chunkOf(offset);
		planBatch(this.plan, data, null, data.length, blockSize, {copy: true, dstMayHaveData: true});
		for (let r = 0; r < this.plan.writeRuns; r++) {
			const from = this.plan.writeStart[r]! * blockSize;
			const to = Math.min(data.length, this.plan.writeEnd[r]! * blockSize);
			this.writable?.write(data, from, to - from, offset + from);
			this.counters.bytesWritten += to - from;
			this.counters.blocksChanged += this.plan.writeEnd[r]! - this.plan.writeStart[r]!;
		}
		this.zeroRuns(this.plan, offset, data.length);
		const blocks = this.hasher.hashBlocks(data, data.length, blockSize, this.digestScratch, 0);
		this.keyed!.blocks(this.digestScratch, 0, blocks, cached.blocks, ((offset - chunk) / blockSize) * SHORT_DIGEST);
		cached.chunkDigest = null;
	}

	/** BLOCKS from a cache record: the truncated digests of the sub-chunks in mask. */
	private cachedBlockDigests(cached: CachedChunk, mask: number, length: number): Buffer {
		const perSub = this.geometry.subSize / this.geometry.blockSize;
		const blocks = Math.ceil(length / this.geometry.blockSize);
		const parts: Buffer[] = [];
		for (let sub = 0; sub * perSub < blocks; sub++) {
			if (mask & (1 << sub)) {
				parts.push(cached.blocks.subarray(sub * perSub * SHORT_DIGEST, Math.min(blocks, (sub + 1) * perSub) * SHORT_DIGEST));
			}
		}
		return Buffer.concat(parts);
	}

	/** BLOCKS of a chunk DEST read, keyed: the keyed digests of the blocks of the sub-chunks in mask. */
	private keyedBlockDigests(pending: Pending, mask: number): Buffer {
		const perSub = this.geometry.subSize / this.geometry.blockSize;
		const blocks = Math.ceil(pending.length / this.geometry.blockSize);
		const parts: Buffer[] = [];
		for (let sub = 0; sub * perSub < blocks; sub++) {
			if (mask & (1 << sub)) {
				const first = sub * perSub;
				const count = Math.min(blocks, first + perSub) - first;
				const out = Buffer.allocUnsafe(count * SHORT_DIGEST);
				this.keyed!.blocks(pending.snapshot.digests, first, count, out, 0);
				parts.push(out);
			}
		}
		return Buffer.concat(parts);
	}

	/** The cache's record of a chunk whose full block digests are known. */
	private recordFrom(offset: number, length: number, digests: Buffer): void {
		if (this.cache) {
			this.cache.record(offset, length, chunkFromDigests(this.keyed!, this.hasher, this.geometry, length, digests));
		}
	}

	/** The keyed digest of a block of `length` zero bytes (cached). */
	private keyedZero(length: number): Buffer {
		let digest = this.keyedZeros.get(length);
		if (!digest) {
			digest = this.keyed!.block(this.chunk.zeroDigest(length));
			this.keyedZeros.set(length, digest);
		}
		return digest;
	}

	/**
	 * The record of a chunk of `length` zero bytes, made once per length (record() copies it into the cache): a sparse
	 * image's holes are most of its chunks, and keying 256 block digests for each cost ~0.1 s of CPU per GiB of holes.
	 */
	private zeroRecord(length: number): CachedChunk {
		let record = this.zeroRecords.get(length);
		if (!record) {
			record = chunkFromDigests(this.keyed!, this.hasher, this.geometry, length, this.zeroDigests(length));
			this.zeroRecords.set(length, record);
		}
		return record;
	}

	/** The full digests of a chunk of `length` zero bytes, one per block. */
	private zeroDigests(length: number): Buffer {
		const {blockSize} = this.geometry;
		const blocks = Math.ceil(length / blockSize);
		const out = Buffer.allocUnsafe(blocks * DIGEST_SIZE);
		for (let block = 0; block < blocks; block++) {
			this.chunk.zeroDigest(Math.min(blockSize, length - block * blockSize)).copy(out, block * DIGEST_SIZE);
		}
		return out;
	}

	private zeroRun(position: number, length: number): void {
		const blocks = Math.ceil(length / this.geometry.blockSize);
		this.writable?.zero(position, length);
		this.counters.blocksChanged += blocks;
		this.counters.blocksPunched += blocks;
		this.counters.bytesPunched += length;
	}

	/** A chunk in progress (replacing its entry: FULL after CHUNK_END), counted against DATA_BUDGET at its length. */
	private track(offset: number, pending: Pending): void {
		this.pendingData -= this.pending.get(offset)?.bound ?? 0;
		this.pending.set(offset, pending);
		this.bound(pending, pending.length);
	}

	/** Sets what SOURCE may still send for this chunk. */
	private bound(pending: Pending, bytes: number): void {
		this.pendingData += bytes - (pending.bound ?? 0);
		pending.bound = bytes;
	}

	/** WIDE_CREDIT_WINDOW in a wide session with digests; CREDIT_WINDOW without digests (--copy, EMPTY: every chunk in flight may be a whole chunk of data) and in a narrow one. */
	private window(): number {
		return this.job.wide === true && !this.job.copy ? WIDE_CREDIT_WINDOW : CREDIT_WINDOW;
	}

	private complete(offset: number, length: number): void {
		this.pendingData -= this.pending.get(offset)?.bound ?? 0;
		this.pending.delete(offset);
		this.completed += 1;
		this.counters.bytesScanned += length;
		// Credit per chunk (a 9-byte frame per MiB): SOURCE's --compress=auto measures the link by it, and holds back on it.
		if (this.completed - this.lastCredit >= 1) {
			this.lastCredit = this.completed;
			this.send({type: 'credit', granted: this.window() + this.completed});
		}
		this.drain();
		this.maybeFinish();
		this.maybeCheckpoint();
	}

	/** Answers the deferred CHUNK_SUBS, in order, while the data asked for is under DATA_BUDGET. */
	private drain(): void {
		if (this.draining) {
			return;
		}
		this.draining = true;
		try {
			while (this.deferred.length > 0 && this.pendingData < DATA_BUDGET) {
				const chunk = this.deferred.shift()!;
				this.onChunk(chunk.offset, chunk.length, chunk.digest, chunk.subs);
			}
		} finally {
			this.draining = false;
		}
	}

	private maybeFinish(): void {
		if (this.sourceEnded && this.pending.size === 0 && this.deferred.length === 0 && !this.finished) {
			this.finished = true;
			this.writable?.sync();
			this.counters.dstBytesRead = this.image.bytesRead;
			this.send({type: 'done', counters: countersTuple(this.counters)});
		}
	}

	private pendingAt(offset: number): Pending {
		const pending = this.pending.get(offset);
		if (!pending) {
			throw new Error(`SOURCE sent a reply for offset ${offset}, which is not a chunk in progress`);
		}
		return pending;
	}

	/**
	 * Whether a ZERO frame stands for whole chunks (it counts as scanned) rather than for blocks of a
	 * chunk in progress (counted when that chunk completes). In progress: a pending chunk, or with
	 * --copy a run inside a data chunk, which never covers a whole chunk (that chunk would be zero).
	 */
	private isZeroChunks(offset: number, length: number): boolean {
		if (this.pending.has(this.chunkOf(offset))) {
			return false;
		}
		const end = offset + length;
		return !this.job.copy || (this.chunkOf(offset) === offset && (this.chunkOf(end) === end || end === this.job.end));
	}

	private chunkOf(offset: number): number {
		const {chunkSize} = this.geometry;
		return this.job.start + Math.floor((offset - this.job.start) / chunkSize) * chunkSize;
	}
}

function popcount(mask: number): number {
	let bits = 0;
	for (let m = mask >>> 0; m !== 0; m &= m - 1) {
		bits += 1;
	}
	return bits;
}
