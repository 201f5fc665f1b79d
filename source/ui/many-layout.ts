// Pure layout of the TUI of a run over many files: one row per file under way, the total row, names cut to the width.
import {formatBytes, formatDuration, formatPercent} from './format.js';
import type {Glyphs} from './glyphs.js';
import {renderBar} from './progress-bar.js';
import {BAR_MAX, BAR_MIN, formatRateValue} from './row-layout.js';
import {truncateMiddle} from './text-fit.js';

/** One file under way: its place under DSTDIR, bytes compared of its size, its recent rate. */
export type FileView = {readonly path: string; readonly size: number; readonly bytesScanned: number; readonly rate: number};

/** The whole run: files done (or refused, or unchanged) of all planned, bytes of the files done plus those under way. */
export type ManyTotalView = {readonly filesDone: number; readonly filesTotal: number; readonly bytesDone: number; readonly bytesTotal: number; readonly rate: number; readonly eta: number};

/** A row's cells that fit, joined by one space when drawn; the mark and a space come before them. */
export type ManyRowCells = {label: string; bar?: string; percent: string; bytes?: string; rate?: string};

const PERCENT_WIDTH = 6;
const RATE_WIDTH = 10;
/** A name is never cut below this, nor given more than this share of the row while cells need the room. */
const NAME_MIN = 8;
const NAME_SHARE = 0.4;

/** The width of the name column for these names: the longest one, within a share of the row. */
export function nameWidth(paths: readonly string[], columns: number): number {
	const budget = Math.max(0, columns - 1) - 2;
	const longest = Math.max('total'.length, ...paths.map(path => path.length));
	return Math.min(longest, Math.max(NAME_MIN, Math.floor(budget * NAME_SHARE)), Math.max(1, budget - 1 - PERCENT_WIDTH));
}

/** "1.0 GiB / 4.0 GiB". */
export function bytesText(done: number, total: number): string {
	return `${formatBytes(done)} / ${formatBytes(total)}`;
}

/** Fits name, bar, percent, bytes and rate into `columns - 3` characters: drops the rate, then the bytes, then shrinks the bar. */
export function fitManyRow(input: {label: string; fraction: number; bytes: string; rate: string}, labelWidth: number, columns: number, glyphs: Pick<Glyphs, 'bar'>): ManyRowCells {
	const budget = Math.max(0, columns - 1) - 2;
	const label = truncateMiddle(input.label, labelWidth).padEnd(Math.min(labelWidth, Math.max(0, budget - 1 - PERCENT_WIDTH)));
	let bytes: string | undefined = input.bytes;
	let rate: string | undefined = input.rate.padStart(RATE_WIDTH);
	const used = (): number => label.length + 1 + PERCENT_WIDTH + (bytes === undefined ? 0 : 1 + bytes.length) + (rate === undefined ? 0 : 1 + rate.length);
	if (budget - used() - 1 < 10) {
		rate = undefined;
	}
	if (budget - used() - 1 < 10) {
		bytes = undefined;
	}
	const room = budget - used() - 1;
	const barWidth = room >= BAR_MIN ? Math.min(BAR_MAX, room) : 0;
	return {
		label: label.length + 1 + PERCENT_WIDTH <= budget ? label : truncateMiddle(input.label, Math.max(0, budget - 1 - PERCENT_WIDTH)),
		...(barWidth > 0 ? {bar: renderBar(input.fraction, barWidth, glyphs)} : {}),
		percent: formatPercent(input.fraction, 1).padStart(PERCENT_WIDTH),
		...(bytes === undefined ? {} : {bytes}),
		...(rate === undefined ? {} : {rate}),
	};
}

/** A file's row: its name, how much of it was compared, its rate. */
export function fileRow(file: FileView, labelWidth: number, columns: number, glyphs: Pick<Glyphs, 'bar'>): ManyRowCells {
	return fitManyRow({
		label: file.path,
		fraction: file.size > 0 ? file.bytesScanned / file.size : 0,
		bytes: bytesText(file.bytesScanned, file.size),
		rate: formatRateValue(file.rate),
	}, labelWidth, columns, glyphs);
}

/** The total row's cells (bytes of all files), and the line under it: "3/12 files  ETA 0:42". */
export function manyTotalRow(total: ManyTotalView, labelWidth: number, columns: number, glyphs: Pick<Glyphs, 'bar'>): {cells: ManyRowCells; line: string} {
	const cells = fitManyRow({
		label: 'total',
		fraction: total.bytesTotal > 0 ? total.bytesDone / total.bytesTotal : total.filesTotal > 0 ? total.filesDone / total.filesTotal : 0,
		bytes: bytesText(total.bytesDone, total.bytesTotal),
		rate: formatRateValue(total.rate),
	}, labelWidth, columns, glyphs);
	const parts = [
		`${total.filesDone}/${total.filesTotal} file${total.filesTotal === 1 ? '' : 's'}`,
		...(cells.bytes === undefined ? [bytesText(total.bytesDone, total.bytesTotal)] : []),
		`ETA ${formatDuration(total.eta)}`,
	];
	const width = Math.max(1, columns - 1);
	const indent = width >= 60 ? 2 : 0;
	return {cells, line: truncateMiddle(' '.repeat(indent) + parts.join('  '), width)};
}

/** The cells joined as drawn (without the mark). */
export function manyRowText(cells: ManyRowCells): string {
	return [cells.label, cells.bar, cells.percent, cells.bytes, cells.rate].filter(cell => cell !== undefined).join(' ');
}

/** Rows that fit: the files under way beyond `max` are counted in one "… N more" line. */
export function visibleFiles<T>(files: readonly T[], max: number): {shown: T[]; more: number} {
	if (files.length <= max) {
		return {shown: [...files], more: 0};
	}
	const keep = Math.max(0, max - 1);
	return {shown: files.slice(0, keep), more: files.length - keep};
}
