// Zero detection without allocation: memcmp against a shared zero buffer.

let zeros = Buffer.alloc(1024 * 1024);

/** A zero-filled buffer of at least `length` bytes, shared; never write into it. */
export function zeroBuffer(length: number): Buffer {
	if (zeros.length < length) {
		zeros = Buffer.alloc(length);
	}
	return zeros;
}

/** Whether buffer[start, end) is all zero bytes. */
export function isZero(buffer: Buffer, start: number, end: number): boolean {
	const z = zeroBuffer(Math.min(end - start, 1024 * 1024));
	for (let at = start; at < end; at += z.length) {
		const stop = Math.min(end, at + z.length);
		if (buffer.compare(z, 0, stop - at, at, stop) !== 0) {
			return false;
		}
	}
	return true;
}

/** Length of the all-zero prefix of buffer[start, end) in whole `unit`s (the sparse-writing primitive). */
export function zeroPrefixUnits(buffer: Buffer, start: number, end: number, unit: number): number {
	let units = 0;
	for (let at = start; at < end; at += unit) {
		if (!isZero(buffer, at, Math.min(end, at + unit))) {
			break;
		}
		units += 1;
	}
	return units;
}
