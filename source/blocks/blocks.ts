// Pure block maths: worker ranges, alignment, range-set operations. No I/O.

/** A half-open byte range [start, end). */
export type Range = {start: number; end: number};

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

/** The ranges each worker owns: [0, size) split on batch boundaries (what every backend and the orchestrator agree on). */
export function workerRanges(size: number, workers: number, blockSize: number): Range[] {
	return splitRanges(size, workers, batchBytesFor(blockSize));
}

/** Overlap test for ascending, non-overlapping queries against a sorted disjoint range list, in amortised O(1). */
export function rangeCursor(ranges: readonly Range[]): (start: number, end: number) => boolean {
	let i = 0;
	return (start, end) => {
		while (i < ranges.length && ranges[i]!.end <= start) {
			i += 1;
		}
		const r = ranges[i];
		return r !== undefined && r.start < end;
	};
}

/** Index of the first of the sorted, disjoint ranges that ends after `offset` (binary search). */
export function firstRangeEndingAfter(ranges: readonly Range[], offset: number): number {
	let low = 0;
	let high = ranges.length;
	while (low < high) {
		const middle = (low + high) >>> 1;
		if (ranges[middle]!.end <= offset) {
			low = middle + 1;
		} else {
			high = middle;
		}
	}
	return low;
}
