// The end-of-run summary as plain text lines (used by the plain reporter and --stat).
import type {Summary} from '../engine/progress.js';
import {formatBytes, formatDuration, formatRate} from './format.js';

/** Lines of the summary, without trailing newlines. */
export function summaryLines(summary: Summary): string[] {
	const wire = summary.wireBytesSent + summary.wireBytesReceived;
	const lines = [
		`${summary.dryRun ? 'dry run: ' : ''}${summary.src} -> ${summary.dst}: ${summary.ok ? (summary.dryRun ? 'compared' : 'in sync') : 'FAILED'}`,
		`size ${formatBytes(summary.size)} (${summary.size} bytes), block ${summary.blockSize}, ${summary.workers} worker${summary.workers === 1 ? '' : 's'}`,
		`blocks: ${summary.blocksTotal} total, ${summary.blocksChanged} ${summary.dryRun ? 'differ' : 'changed'}, ${summary.blocksZero} zero, ${summary.blocksPunched} ${summary.dryRun ? 'to punch' : 'punched'}`,
		`written ${formatBytes(summary.bytesWritten)}, punched ${formatBytes(summary.bytesPunched)}`,
	];
	if (wire > 0) {
		const ratio = summary.size > 0 ? ((wire / summary.size) * 100).toFixed(3) : '0';
		lines.push(`wire: sent ${formatBytes(summary.wireBytesSent)}, received ${formatBytes(summary.wireBytesReceived)} (${ratio}% of the image)`);
	}
	lines.push(`time ${formatDuration(summary.seconds)} (${summary.seconds.toFixed(2)} s), effective ${formatRate(summary.size, summary.seconds)}${wire > 0 ? `, wire ${formatRate(wire, summary.seconds)}` : ''}`);
	if (summary.dstExtraBytes > 0) {
		lines.push(`DST is ${formatBytes(summary.dstExtraBytes)} larger than SRC; only the first ${summary.size} bytes were synced`);
	}
	if (summary.verified !== null) {
		lines.push(summary.verified ? 'verify: DST equals SRC' : 'verify: DST DIFFERS from SRC');
	}
	return lines;
}
