// Pure layout of the TUI's lines for a given width: which cells fit, how wide the bar is, where text is cut.
import type {Counters, SyncStart} from '../engine/progress.js';
import {formatBytes, formatBytesShort, formatDuration, formatPercent, formatRate} from './format.js';
import type {Glyphs} from './glyphs.js';
import {renderBar} from './progress-bar.js';
import {flowTokens, truncateMiddle} from './text-fit.js';
import type {WorkerView} from './tui-model.js';

/** Bar widths: never wider than MAX, dropped below MIN. */
export const BAR_MAX = 40;
export const BAR_MIN = 4;
/** Below this the bar gives way before the optional cells do. */
const BAR_COMFORT = 10;
const PERCENT_WIDTH = 6;
const RATE_WIDTH = 10;

/** Widths shared by every row so columns line up. */
export type RowWidths = {label: number; range: number; changed: number};

/** What one worker or total row holds before fitting. */
export type RowInput = {label: string; range: string; fraction: number; rate: string; changed: string};

/** The cells of one row that fit; the mark (spinner or ✓) and a space come before them. */
export type RowCells = {label: string; range?: string; bar?: string; percent: string; rate?: string; changed?: string};

/** "worker 3": the label the issue and the e2e test look for. */
export function workerLabel(id: number): string {
	return `worker ${id}`;
}

/** The worker's byte range in compact units: "1.5G-3G". */
export function workerRange(worker: Pick<WorkerView, 'start' | 'end'>): string {
	return `${formatBytesShort(worker.start)}-${formatBytesShort(worker.end)}`;
}

/** "17 changed". */
export function changedText(blocks: number): string {
	return `${blocks} changed`;
}

/** Column widths over all workers (and the total row's label). */
export function rowWidths(workers: readonly WorkerView[], totalChanged: number): RowWidths {
	let label = 'total'.length;
	let range = 0;
	let changed = changedText(totalChanged).length;
	for (const worker of workers) {
		label = Math.max(label, workerLabel(worker.id).length);
		range = Math.max(range, workerRange(worker).length);
		changed = Math.max(changed, changedText(worker.blocksChanged).length);
	}
	return {label, range, changed};
}

/** Fits a row into `columns - 1` characters (the last column is left alone): drops range, changed, rate, then shrinks the bar. */
export function fitRow(input: RowInput, widths: RowWidths, columns: number, glyphs: Pick<Glyphs, 'bar'>): RowCells {
	const budget = Math.max(0, columns - 1) - 2; // mark and space
	const optional: Array<'range' | 'changed' | 'rate'> = ['range', 'changed', 'rate'];
	const widthOf = {range: widths.range, changed: widths.changed, rate: RATE_WIDTH};
	const padded = input.label.padEnd(widths.label);
	const label = padded.length + 1 + PERCENT_WIDTH <= budget ? padded : truncateMiddle(input.label, Math.max(0, budget - 1 - PERCENT_WIDTH));
	let shown = new Set(optional);
	const fixed = (): number => label.length + 1 + PERCENT_WIDTH + [...shown].reduce((sum, key) => sum + 1 + widthOf[key], 0);
	for (const key of optional) {
		if (budget - fixed() - 1 >= BAR_COMFORT) {
			break;
		}
		shown.delete(key);
	}
	const room = budget - fixed() - 1;
	const barWidth = room >= BAR_MIN ? Math.min(BAR_MAX, room) : 0;
	if (budget - label.length - 1 < PERCENT_WIDTH) {
		shown = new Set();
	}
	return {
		label,
		range: shown.has('range') ? input.range.padEnd(widths.range) : undefined,
		bar: barWidth > 0 ? renderBar(input.fraction, barWidth, glyphs) : undefined,
		percent: formatPercent(input.fraction, 1).padStart(PERCENT_WIDTH),
		rate: shown.has('rate') ? input.rate.padStart(RATE_WIDTH) : undefined,
		changed: shown.has('changed') ? input.changed.padStart(widths.changed) : undefined,
	};
}

/** The cells of a row joined as they are drawn (without the mark). */
export function rowText(cells: RowCells): string {
	return [cells.label, cells.range, cells.bar, cells.percent, cells.rate, cells.changed].filter(c => c !== undefined).join(' ');
}

/** A worker's row cells; a worker's fraction is the part of its own range it has scanned. */
export function workerRow(worker: WorkerView, widths: RowWidths, columns: number, glyphs: Pick<Glyphs, 'bar'>): RowCells {
	const length = worker.end - worker.start;
	return fitRow({
		label: workerLabel(worker.id),
		range: workerRange(worker),
		fraction: length > 0 ? worker.bytesScanned / length : 1,
		rate: formatRateValue(worker.rate),
		changed: changedText(worker.blocksChanged),
	}, widths, columns, glyphs);
}

/** The total row: the same cells as a worker row, then the other counters flowed over extra lines. */
export function totalRows(view: {start: Pick<SyncStart, 'size'>; total: Counters; elapsed: number; rate: number; eta: number; finished: boolean}, widths: RowWidths, columns: number, glyphs: Pick<Glyphs, 'bar'>): {cells: RowCells; lines: string[]} {
	const {size} = view.start;
	const cells = fitRow({
		label: 'total',
		range: '',
		fraction: size > 0 ? view.total.bytesScanned / size : 1,
		rate: formatRateValue(view.rate),
		changed: changedText(view.total.blocksChanged),
	}, widths, columns, glyphs);
	const tokens = [
		`${formatBytes(view.total.bytesScanned)} / ${formatBytes(size)}`,
		...(cells.changed === undefined ? [changedText(view.total.blocksChanged)] : []),
		`${view.total.blocksZero} zero`,
		`${view.total.blocksPunched} punched`,
		`sent ${formatBytes(view.total.wireBytesSent)}`,
		`received ${formatBytes(view.total.wireBytesReceived)}`,
		...(cells.rate === undefined ? [formatRateValue(view.rate)] : []),
		`elapsed ${formatDuration(view.elapsed)}`,
		...(view.finished ? [] : [`ETA ${formatDuration(view.eta)}`]),
	];
	// Indent under the bar column when there is room, so the extra lines read as part of the total row.
	const indent = columns - 1 >= 60 ? 2 + widths.label + 1 : 0;
	const lines = flowTokens(tokens, Math.max(1, columns - 1 - indent)).map(line => ' '.repeat(indent) + line);
	return {cells, lines};
}

/** The header: what is synced where, then the run's parameters. */
export function headerLines(start: SyncStart, columns: number, glyphs: Pick<Glyphs, 'arrow'>): string[] {
	const width = Math.max(1, columns - 1);
	const verb = start.phase === 'verify' ? 'verifying' : start.dryRun ? 'comparing' : 'syncing';
	const arrow = ` ${glyphs.arrow} `;
	const room = width - verb.length - 1 - arrow.length;
	let src = start.src;
	let dst = start.dst;
	if (src.length + dst.length > room) {
		// Give each side half the room, or what the other leaves unused.
		const half = Math.floor(room / 2);
		const srcRoom = dst.length < half ? room - dst.length : Math.max(1, src.length < half ? src.length : half);
		src = truncateMiddle(src, srcRoom);
		dst = truncateMiddle(dst, Math.max(1, room - src.length));
	}
	const first = `${verb} ${src}${arrow}${dst}`;
	const params = [
		formatBytes(start.size),
		`block ${formatBytes(start.blockSize)}`,
		start.hash,
		`${start.workers} worker${start.workers === 1 ? '' : 's'}`,
		start.direction,
		...(start.bwlimit ? [`limit ${formatRate(start.bwlimit, 1)}`] : []),
		...(start.dryRun ? ['dry run'] : []),
	];
	return [first.length > width ? truncateMiddle(first, width) : first, ...flowTokens(params, width)];
}

/** "312 MiB/s", or "-" before anything was measured. */
export function formatRateValue(bytesPerSecond: number): string {
	return bytesPerSecond > 0 ? formatRate(bytesPerSecond, 1) : '-';
}
