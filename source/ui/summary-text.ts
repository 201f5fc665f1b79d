// The end-of-run summary as labelled rows; the plain reporter prints them as lines, the TUI lays them out.
import type {Summary} from '../engine/progress.js';
import {formatBytes, formatDuration, formatRate, formatRatio} from './format.js';

/** One labelled figure; `parts` are joined with ", " (the TUI may wrap between them). */
export type SummaryRow = {label: string; parts: string[]};

/** The first line: what happened, in a few words ("in sync", "interrupted; DST may be partially updated"). */
export function summaryStatus(summary: Summary): string {
	if (!summary.ok) {
		return summary.error ?? 'FAILED';
	}
	return summary.dryRun ? 'compared (dry run, nothing written)' : 'in sync';
}

/** basyn's --stat figures and more: size, blocks, bytes written, bytes read from each image, wire bytes and their ratio to the size, time, bandwidth (wire, and effective: image bytes compared per second). */
export function summaryRows(summary: Summary): SummaryRow[] {
	const wire = summary.wireBytesSent + summary.wireBytesReceived;
	const scanned = summary.blockSize > 0 ? Math.ceil(summary.bytesScanned / summary.blockSize) : 0;
	const changed = summary.dryRun ? 'differ' : 'changed';
	const rows: SummaryRow[] = [
		{label: 'size', parts: [`${formatBytes(summary.size)} (${summary.size} bytes)`, `block ${summary.blockSize}`, `${summary.workers} worker${summary.workers === 1 ? '' : 's'}`]},
		{label: 'blocks', parts: [`${summary.blocksTotal} total`, `${scanned} scanned`, `${summary.blocksChanged} ${changed}`, `${summary.blocksZero} zero`, `${summary.blocksPunched} ${summary.dryRun ? 'to punch' : 'punched'}`]},
		{label: summary.dryRun ? 'to write' : 'written', parts: [`${formatBytes(summary.bytesWritten)} (${summary.bytesWritten} bytes)`, `${summary.dryRun ? 'to punch' : 'punched'} ${formatBytes(summary.bytesPunched)}`]},
		{label: 'read', parts: [`SRC ${formatBytes(summary.srcBytesRead)} (${summary.srcBytesRead} bytes)`, `DST ${formatBytes(summary.dstBytesRead)} (${summary.dstBytesRead} bytes)`]},
		{label: 'wire sent', parts: [`${formatBytes(summary.wireBytesSent)} (${summary.wireBytesSent} bytes)`, `${formatRatio(summary.wireBytesSent, summary.size)} of size`]},
		{label: 'wire recv', parts: [`${formatBytes(summary.wireBytesReceived)} (${summary.wireBytesReceived} bytes)`, `${formatRatio(summary.wireBytesReceived, summary.size)} of size`]},
		{label: 'time', parts: [`${formatDuration(summary.seconds)} (${summary.seconds.toFixed(2)} s)`]},
		{label: 'bandwidth', parts: [
			`wire ${wire > 0 ? formatRate(wire, summary.seconds) : '0 B/s'}`, `effective ${formatRate(summary.bytesScanned, summary.seconds)}`,
			...(summary.bwlimit ? [`limit ${formatRate(summary.bwlimit, 1)} (--bwlimit)`] : []),
		]},
	];
	if (summary.dstExtraBytes > 0) {
		rows.push({label: 'note', parts: [`DST is ${formatBytes(summary.dstExtraBytes)} larger than SRC; only the first ${summary.size} bytes were synced`]});
	}
	if (summary.bitmap !== undefined) {
		rows.push({label: 'bitmap', parts: [summary.bitmap]});
	}
	if (summary.compression !== undefined && summary.compressionRatio !== undefined) {
		rows.push({label: 'compress', parts: [summary.compression, `ratio ${summary.compressionRatio.toFixed(2)}x`]});
	}
	if (summary.reconnects) {
		rows.push({label: 'link', parts: [`${summary.reconnects} reconnect${summary.reconnects === 1 ? '' : 's'} (--retries)`]});
	}
	if (summary.cache !== undefined) {
		rows.push({label: 'cache', parts: [summary.cache]});
	}
	if (summary.verified !== null) {
		rows.push({label: 'verify', parts: [summary.verified ? 'DST equals SRC' : 'DST DIFFERS from SRC']});
	}
	return rows;
}

/** Width of the label column. */
export const SUMMARY_LABEL_WIDTH = 11;

/** Lines of the summary, without trailing newlines. */
export function summaryLines(summary: Summary): string[] {
	const head = `${summary.dryRun ? 'dry run: ' : ''}${summary.src} -> ${summary.dst}: ${summaryStatus(summary)}`;
	return [head, ...summaryRows(summary).map(row => `${row.label.padEnd(SUMMARY_LABEL_WIDTH)}${row.parts.join(', ')}`)];
}
