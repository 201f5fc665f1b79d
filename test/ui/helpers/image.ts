// Generated test images: random data (one random chunk repeated with a per-chunk stamp, so it is fast to write), a zero run, a tail hole.
import {randomFillSync} from 'node:crypto';
import {closeSync, ftruncateSync, openSync, writeSync} from 'node:fs';

const CHUNK = 16 * 1024 * 1024;

/** Writes `size` bytes (a multiple of 16 MiB): data, then 1/16 zeros written out, then a 1/8 hole at the end. */
export function writeImage(path: string, size: number): void {
	const chunk = randomFillSync(Buffer.alloc(CHUNK));
	const zeros = Buffer.alloc(CHUNK);
	const chunks = size / CHUNK;
	const zeroFrom = Math.floor(chunks * (13 / 16));
	const holeFrom = Math.floor(chunks * (14 / 16));
	const fd = openSync(path, 'w');
	try {
		for (let i = 0; i < holeFrom; i++) {
			if (i >= zeroFrom) {
				writeSync(fd, zeros, 0, CHUNK, i * CHUNK);
				continue;
			}
			// A different first block per chunk, so no two chunks are the same.
			chunk.writeUInt32LE(i, 0);
			writeSync(fd, chunk, 0, CHUNK, i * CHUNK);
		}
		ftruncateSync(fd, size);
	} finally {
		closeSync(fd);
	}
}
