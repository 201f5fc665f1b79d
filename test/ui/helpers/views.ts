// Fixed reporter states for component and layout tests.
import {emptyCounters, type Counters, type Summary, type SyncStart} from '../../../source/engine/progress.js';
import type {TuiView, WorkerView} from '../../../source/ui/tui-model.js';

export const GiB = 1024 ** 3;

export const start: SyncStart = {
	src: '/var/lib/vz/images/100/vm-100-disk-0.raw',
	dst: 'root@pve2:/dev/pve/vm-100-disk-0',
	direction: 'push',
	size: 8 * GiB,
	blockSize: 4096,
	hash: 'blake3',
	workers: 2,
	dryRun: false,
	phase: 'sync',
};

export function worker(id: number, fraction: number, extra: Partial<WorkerView> = {}): WorkerView {
	const span = 4 * GiB;
	return {id, start: (id - 1) * span, end: id * span, bytesScanned: Math.round(span * fraction), blocksChanged: 17 * id, done: fraction >= 1, rate: 300 * 1024 ** 2, ...extra};
}

export function counters(extra: Partial<Counters> = {}): Counters {
	return {...emptyCounters(), ...extra};
}

export function view(extra: Partial<TuiView> = {}): TuiView {
	const workers = extra.workers ?? [worker(1, 0.5), worker(2, 0.25)];
	const scanned = workers.reduce((sum, w) => sum + w.bytesScanned, 0);
	return {
		start,
		workers,
		total: counters({bytesScanned: scanned, blocksChanged: 51, blocksZero: 1000, blocksPunched: 3, wireBytesSent: 5 * 1024 ** 2, wireBytesReceived: 2 * 1024 ** 2}),
		elapsed: 10,
		rate: scanned / 10,
		eta: 20,
		warnings: [],
		stopping: false,
		columns: 100,
		rows: 40,
		...extra,
	};
}

export function summary(extra: Partial<Summary> = {}): Summary {
	return {
		...counters({bytesScanned: 8 * GiB, blocksChanged: 51, blocksZero: 1000, blocksPunched: 3, bytesWritten: 48 * 4096, bytesPunched: 3 * 4096, wireBytesSent: 5 * 1024 ** 2, wireBytesReceived: 2 * 1024 ** 2, srcBytesRead: 6 * GiB, dstBytesRead: 12 * 1024 ** 2}),
		src: start.src,
		dst: start.dst,
		direction: 'push',
		size: 8 * GiB,
		blockSize: 4096,
		blocksTotal: 2 * 1024 ** 2,
		hash: 'blake3',
		workers: 2,
		dryRun: false,
		verified: null,
		dstExtraBytes: 0,
		seconds: 32,
		ok: true,
		...extra,
	};
}

/** Removes CSI sequences (colours, cursor moves, erases), leaving the text a terminal would show. */
export function plain(frame: string | undefined): string {
	// eslint-disable-next-line no-control-regex
	return (frame ?? '').replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '');
}
