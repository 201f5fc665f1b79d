// Bytes received in chunks, taken from the front in whole messages: a copy only when a message spans chunks.

/** Pending bytes as one list, taken from the front. */
export class ByteQueue {
	private chunks: Buffer[] = [];
	length = 0;

	push(chunk: Buffer): void {
		if (chunk.length > 0) {
			this.chunks.push(chunk);
			this.length += chunk.length;
		}
	}

	/** The first `count` bytes without consuming them (a copy only when they span chunks). */
	peek(count: number): Buffer {
		const first = this.chunks[0]!;
		return first.length >= count ? first.subarray(0, count) : Buffer.concat(this.chunks, count).subarray(0, count);
	}

	take(count: number): Buffer {
		const first = this.chunks[0];
		if (count === 0) {
			return Buffer.alloc(0);
		}
		let bytes: Buffer;
		if (first!.length >= count) {
			bytes = first!.subarray(0, count);
			if (first!.length === count) {
				this.chunks.shift();
			} else {
				this.chunks[0] = first!.subarray(count);
			}
		} else {
			const all = Buffer.concat(this.chunks, this.length);
			bytes = all.subarray(0, count);
			this.chunks = all.length > count ? [all.subarray(count)] : [];
		}
		this.length -= count;
		return bytes;
	}

	/** Everything pending, consumed. */
	rest(): Buffer {
		return this.take(this.length);
	}
}
