// What a range sync counts, and sums of them. Pure.

/** Counters of one worker, or of the whole run when summed. All byte counts are image bytes. */
export type Counters = {
	/** Logical image bytes compared so far (holes skipped, and ranges the digest cache answered for, count as compared). */
	bytesScanned: number;
	/** Blocks whose DST content had to change: written plus punched/zeroed. */
	blocksChanged: number;
	/** SRC blocks that are zero (holes included). */
	blocksZero: number;
	/** Blocks made zero on DST by punching or zeroing. */
	blocksPunched: number;
	bytesWritten: number;
	bytesPunched: number;
	wireBytesSent: number;
	wireBytesReceived: number;
	/** Bytes actually read from SRC (holes skipped unread are not counted). */
	srcBytesRead: number;
	/** Bytes actually read from DST (holes, ranges the digest cache answered for, and --copy's unread DST are not counted). */
	dstBytesRead: number;
};

export function emptyCounters(): Counters {
	return {
		bytesScanned: 0,
		blocksChanged: 0,
		blocksZero: 0,
		blocksPunched: 0,
		bytesWritten: 0,
		bytesPunched: 0,
		wireBytesSent: 0,
		wireBytesReceived: 0,
		srcBytesRead: 0,
		dstBytesRead: 0,
	};
}

/** Adds b into a, in place; returns a. */
export function addCounters(a: Counters, b: Counters): Counters {
	a.bytesScanned += b.bytesScanned;
	a.blocksChanged += b.blocksChanged;
	a.blocksZero += b.blocksZero;
	a.blocksPunched += b.blocksPunched;
	a.bytesWritten += b.bytesWritten;
	a.bytesPunched += b.bytesPunched;
	a.wireBytesSent += b.wireBytesSent;
	a.wireBytesReceived += b.wireBytesReceived;
	a.srcBytesRead += b.srcBytesRead;
	a.dstBytesRead += b.dstBytesRead;
	return a;
}

export function totalOf(workers: readonly Counters[]): Counters {
	const total = emptyCounters();
	for (const worker of workers) {
		addCounters(total, worker);
	}
	return total;
}
