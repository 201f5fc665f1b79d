// The local hot path: compare one byte range of SRC and DST in large batches, write only what differs.
import type {Image, Range, WritableImage} from '../image/image.js';
import {blockCount, rangeCursor, unionAligned} from '../blocks/blocks.js';
import {createBatchPlan, planBatch} from '../blocks/plan.js';
import {RunCoalescer} from '../blocks/runs.js';
import type {Counters} from './progress.js';

export type RangeJob = {
	readonly start: number;
	readonly end: number;
	readonly blockSize: number;
	readonly batchBytes: number;
	/** --copy: never read DST; write every non-zero block. */
	readonly copy: boolean;
	/** DST bytes in this range that may hold data before the sync (a new or extended file has none past its old size). */
	readonly dstKnownData: Range;
};

/** A mutual exclusion lock shared by the workers writing one DST, so writes go out in long ordered runs. */
export type WriteLock = {acquire(): void; release(): void};

export type RangeHooks = {
	/** Checked between batches; true stops the range after flushing what was planned. */
	shouldStop(): boolean;
	/** Called after every batch with the running counters (the caller throttles). */
	progress(counters: Counters): void;
	lock?: WriteLock;
};

/**
 * Makes DST equal SRC over [job.start, job.end), or with `writable` undefined only counts what
 * differs (dry run, verify). Ranges that are holes on both sides are skipped unread.
 * Returns false when stopped early.
 */
export function syncRange(src: Image, dst: Image, writable: WritableImage | undefined, job: RangeJob, counters: Counters, hooks: RangeHooks): boolean {
	const {start, end, blockSize, batchBytes, copy} = job;
	const srcData = src.dataRanges(start, end) ?? [{start, end}];
	const knownEnd = Math.min(end, job.dstKnownData.end);
	const knownStart = Math.max(start, job.dstKnownData.start);
	const dstData = knownStart >= knownEnd ? [] : (dst.dataRanges(knownStart, knownEnd) ?? [{start: knownStart, end: knownEnd}]);
	const regions = unionAligned(srcData, dstData, blockSize, {start, end});

	const srcBuf = Buffer.allocUnsafe(batchBytes);
	const dstBuf = copy ? srcBuf : Buffer.allocUnsafe(batchBytes);
	const plan = createBatchPlan(batchBytes / blockSize);
	const srcCursor = rangeCursor(srcData);
	const dstCursor = rangeCursor(dstData);
	const zeros = new RunCoalescer((position, length) => writable?.zero(position, length));

	let at = start;
	let stopped = false;
	for (const region of regions) {
		skipZeroGap(counters, at, region.start, blockSize);
		at = region.start;
		for (let p = region.start; p < region.end; p += batchBytes) {
			if (hooks.shouldStop()) {
				stopped = true;
				break;
			}
			const q = Math.min(region.end, p + batchBytes);
			const length = q - p;
			const srcHas = srcCursor(p, q);
			const dstHas = dstCursor(p, q);
			if (srcHas) {
				src.read(srcBuf, 0, length, p);
				counters.srcBytesRead += length;
			}
			const dstRead = !copy && dstHas;
			if (dstRead) {
				dst.read(dstBuf, 0, length, p);
				counters.dstBytesRead += length;
			}
			planBatch(plan, srcHas ? srcBuf : null, dstRead ? dstBuf : null, length, blockSize, {copy, dstMayHaveData: dstHas});
			if (writable && (plan.writeRuns > 0 || plan.zeroRuns > 0)) {
				hooks.lock?.acquire();
				try {
					for (let r = 0; r < plan.writeRuns; r++) {
						const from = plan.writeStart[r]! * blockSize;
						const to = Math.min(length, plan.writeEnd[r]! * blockSize);
						writable.write(srcBuf, from, to - from, p + from);
					}
					for (let r = 0; r < plan.zeroRuns; r++) {
						const from = p + plan.zeroStart[r]! * blockSize;
						zeros.add(from, p + Math.min(length, plan.zeroEnd[r]! * blockSize));
					}
				} finally {
					hooks.lock?.release();
				}
			}
			for (let r = 0; r < plan.writeRuns; r++) {
				counters.bytesWritten += Math.min(length, plan.writeEnd[r]! * blockSize) - plan.writeStart[r]! * blockSize;
			}
			for (let r = 0; r < plan.zeroRuns; r++) {
				counters.bytesPunched += Math.min(length, plan.zeroEnd[r]! * blockSize) - plan.zeroStart[r]! * blockSize;
			}
			counters.blocksZero += plan.blocksZero;
			counters.blocksChanged += plan.blocksWrite + plan.blocksToZero;
			counters.blocksPunched += plan.blocksToZero;
			counters.bytesScanned += length;
			at = q;
			hooks.progress(counters);
		}
		if (stopped) {
			break;
		}
	}
	if (!stopped) {
		skipZeroGap(counters, at, end, blockSize);
	}
	hooks.lock?.acquire();
	try {
		zeros.flush();
	} finally {
		hooks.lock?.release();
	}
	hooks.progress(counters);
	return !stopped;
}

/** Counts [from, to), a hole on both sides, as scanned zero blocks without reading it. */
function skipZeroGap(counters: Counters, from: number, to: number, blockSize: number): void {
	if (to > from) {
		counters.bytesScanned += to - from;
		counters.blocksZero += blockCount(to - from, blockSize);
	}
}
