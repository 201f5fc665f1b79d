// Pure block maths: worker ranges, alignment, range-set operations. No I/O.
import type {Range} from '../transport/image.js';

/** Bytes read per batch (both sides): large, aligned, a multiple of the block size. */
export const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

/** The batch size for a block size: at least one block, a whole number of blocks. */
export function batchBytesFor(blockSize: number, preferred = DEFAULT_BATCH_BYTES): number {
	return Math.max(blockSize, Math.floor(preferred / blockSize) * blockSize);
}

/** Number of blocks covering `size` bytes (the last one may be partial). */
export function blockCount(size: number, blockSize: number): number {
	return Math.ceil(size / blockSize);
}

export function alignDown(value: number, alignment: number): number {
	return value - (value % alignment);
}

export function alignUp(value: number, alignment: number): number {
	const rest = value % alignment;
	return rest === 0 ? value : value + alignment - rest;
}

/**
 * Splits [0, size) into at most `workers` contiguous ranges whose boundaries are multiples of
 * `alignment`, as even as that allows. Never returns an empty range; an empty image gives [].
 */
export function splitRanges(size: number, workers: number, alignment: number): Range[] {
	if (size <= 0) {
		return [];
	}
	const units = Math.ceil(size / alignment);
	const count = Math.max(1, Math.min(workers, units));
	const ranges: Range[] = [];
	let startUnit = 0;
	for (let i = 0; i < count; i++) {
		const endUnit = startUnit + Math.floor(units / count) + (i < units % count ? 1 : 0);
		ranges.push({start: startUnit * alignment, end: Math.min(size, endUnit * alignment)});
		startUnit = endUnit;
	}
	return ranges;
}

/** Union of two sorted disjoint range lists, widened to `alignment` and clipped to `within`. */
export function unionAligned(a: readonly Range[], b: readonly Range[], alignment: number, within: Range): Range[] {
	const all = [...a, ...b].sort((x, y) => x.start - y.start);
	const out: Range[] = [];
	for (const r of all) {
		const start = Math.max(within.start, alignDown(r.start, alignment));
		const end = Math.min(within.end, alignUp(r.end, alignment));
		if (start >= end) {
			continue;
		}
		const last = out[out.length - 1];
		if (last && start <= last.end) {
			last.end = Math.max(last.end, end);
		} else {
			out.push({start, end});
		}
	}
	return out;
}

/** Whether any range of the sorted list `ranges` overlaps [start, end). */
export function overlapsAny(ranges: readonly Range[], start: number, end: number): boolean {
	for (const r of ranges) {
		if (r.start >= end) {
			return false;
		}
		if (r.end > start) {
			return true;
		}
	}
	return false;
}

/** The part of `ranges` inside [start, end). */
export function clipRanges(ranges: readonly Range[], start: number, end: number): Range[] {
	const out: Range[] = [];
	for (const r of ranges) {
		const s = Math.max(r.start, start);
		const e = Math.min(r.end, end);
		if (s < e) {
			out.push({start: s, end: e});
		}
	}
	return out;
}
