// Diff planning for one batch: which blocks to write and which to make zero, as coalesced runs. Pure.
import {isZero} from './zero.js';

/** Runs of block indices [start, end) within one batch, in preallocated arrays (no per-block allocation). */
export type BatchPlan = {
	readonly writeStart: Int32Array;
	readonly writeEnd: Int32Array;
	writeRuns: number;
	readonly zeroStart: Int32Array;
	readonly zeroEnd: Int32Array;
	zeroRuns: number;
	/** SRC blocks that are zero. */
	blocksZero: number;
	/** Blocks to write, and blocks to make zero on DST. */
	blocksWrite: number;
	blocksToZero: number;
};

/** A plan able to hold a batch of up to `maxBlocks` blocks. */
export function createBatchPlan(maxBlocks: number): BatchPlan {
	// Runs alternate at worst every block, so each kind needs at most ceil(maxBlocks/2)+1 slots.
	const slots = (maxBlocks >> 1) + 2;
	return {
		writeStart: new Int32Array(slots),
		writeEnd: new Int32Array(slots),
		writeRuns: 0,
		zeroStart: new Int32Array(slots),
		zeroEnd: new Int32Array(slots),
		zeroRuns: 0,
		blocksZero: 0,
		blocksWrite: 0,
		blocksToZero: 0,
	};
}

export type PlanMode = {
	/** --copy: DST was not read; every non-zero SRC block is written. */
	readonly copy: boolean;
	/** Whether DST may hold non-zero data in this batch (false for holes and new files). */
	readonly dstMayHaveData: boolean;
};

/**
 * Plans one batch of `length` bytes. `src` null means SRC is all zero here; `dst` null means DST is
 * all zero here (or, with copy, that it was not read). Blocks are compared over their real length,
 * so a short last block is handled.
 */
export function planBatch(plan: BatchPlan, src: Buffer | null, dst: Buffer | null, length: number, blockSize: number, mode: PlanMode): void {
	plan.writeRuns = 0;
	plan.zeroRuns = 0;
	plan.blocksZero = 0;
	plan.blocksWrite = 0;
	plan.blocksToZero = 0;
	const blocks = Math.ceil(length / blockSize);
	// Fast paths over whole batches: all zero, or identical.
	if (src === null || isZero(src, 0, length)) {
		plan.blocksZero = blocks;
		if (mode.copy ? mode.dstMayHaveData : dst !== null && mode.dstMayHaveData) {
			planZeroRuns(plan, dst, length, blockSize, blocks, mode.copy);
		}
		return;
	}
	if (!mode.copy && dst !== null && src.compare(dst, 0, length, 0, length) === 0) {
		for (let i = 0; i < blocks; i++) {
			const start = i * blockSize;
			if (isZero(src, start, Math.min(length, start + blockSize))) {
				plan.blocksZero += 1;
			}
		}
		return;
	}
	let kind = 0; // 0 none, 1 write, 2 zero: the run being built
	for (let i = 0; i < blocks; i++) {
		const start = i * blockSize;
		const end = Math.min(length, start + blockSize);
		let next = 0;
		if (isZero(src, start, end)) {
			plan.blocksZero += 1;
			if (mode.copy ? mode.dstMayHaveData : dst !== null && !isZero(dst, start, end)) {
				next = 2;
			}
		} else if (mode.copy || dst === null || src.compare(dst, start, end, start, end) !== 0) {
			next = 1;
		}
		if (next === 1) {
			plan.blocksWrite += 1;
			plan.writeRuns = addBlock(plan.writeStart, plan.writeEnd, plan.writeRuns, i, kind === 1);
		} else if (next === 2) {
			plan.blocksToZero += 1;
			plan.zeroRuns = addBlock(plan.zeroStart, plan.zeroEnd, plan.zeroRuns, i, kind === 2);
		}
		kind = next;
	}
}

/** SRC is all zero in this batch: zero every DST block that is not (all of them with copy). */
function planZeroRuns(plan: BatchPlan, dst: Buffer | null, length: number, blockSize: number, blocks: number, copy: boolean): void {
	let open = false;
	for (let i = 0; i < blocks; i++) {
		const start = i * blockSize;
		const needs = copy || dst === null || !isZero(dst, start, Math.min(length, start + blockSize));
		if (needs) {
			plan.blocksToZero += 1;
			plan.zeroRuns = addBlock(plan.zeroStart, plan.zeroEnd, plan.zeroRuns, i, open);
		}
		open = needs;
	}
}

/** Adds block i to a run list: extends the last run when `continues`, else opens a new one; returns the run count. */
function addBlock(starts: Int32Array, ends: Int32Array, runs: number, i: number, continues: boolean): number {
	if (continues) {
		ends[runs - 1] = i + 1;
		return runs;
	}
	starts[runs] = i;
	ends[runs] = i + 1;
	return runs + 1;
}
