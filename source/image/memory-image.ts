// An in-memory sparse image: pages of 4 KiB are allocated by writes and freed by zero(). For tests.
import type {Range, WritableImage} from './image.js';

const PAGE = 4096;

export class MemoryImage implements WritableImage {
	readonly kind = 'memory' as const;
	readonly name: string;
	private data: Buffer;
	private allocated: Uint8Array;

	constructor(name: string, size: number) {
		this.name = name;
		this.data = Buffer.alloc(size);
		this.allocated = new Uint8Array(Math.ceil(size / PAGE));
	}

	/** An image holding a copy of `content`, every page allocated except all-zero ones when `sparse`. */
	static from(name: string, content: Buffer, sparse = true): MemoryImage {
		const image = new MemoryImage(name, content.length);
		content.copy(image.data);
		for (let page = 0; page < image.allocated.length; page++) {
			const slice = content.subarray(page * PAGE, (page + 1) * PAGE);
			image.allocated[page] = sparse && slice.every(byte => byte === 0) ? 0 : 1;
		}
		return image;
	}

	get size(): number {
		return this.data.length;
	}

	/** The current content (a view: do not keep it across writes). */
	get content(): Buffer {
		return this.data;
	}

	/** Allocated bytes, like st_blocks * 512 of a sparse file. */
	get allocatedBytes(): number {
		return this.allocated.reduce((sum, page) => sum + page, 0) * PAGE;
	}

	read(buffer: Buffer, offset: number, length: number, position: number): void {
		const available = Math.max(0, Math.min(length, this.data.length - position));
		this.data.copy(buffer, offset, position, position + available);
		buffer.fill(0, offset + available, offset + length);
	}

	write(buffer: Buffer, offset: number, length: number, position: number): void {
		if (position + length > this.data.length) {
			throw Object.assign(new Error(`write past the end of ${this.name}`), {code: 'ENOSPC'});
		}
		buffer.copy(this.data, position, offset, offset + length);
		this.allocated.fill(1, Math.floor(position / PAGE), Math.ceil((position + length) / PAGE));
	}

	zero(position: number, length: number): void {
		const end = Math.min(this.data.length, position + length);
		this.data.fill(0, position, end);
		// Like fallocate(PUNCH_HOLE): whole pages inside the range are freed, partial ones stay allocated.
		this.allocated.fill(0, Math.ceil(position / PAGE), Math.floor(end / PAGE));
	}

	dataRanges(start: number, end: number): Range[] {
		const ranges: Range[] = [];
		for (let page = Math.floor(start / PAGE); page * PAGE < Math.min(end, this.data.length); page++) {
			if (!this.allocated[page]) {
				continue;
			}
			const from = Math.max(start, page * PAGE);
			const to = Math.min(end, this.data.length, (page + 1) * PAGE);
			const last = ranges[ranges.length - 1];
			if (last && last.end === from) {
				last.end = to;
			} else {
				ranges.push({start: from, end: to});
			}
		}
		return ranges;
	}

	/** Resizes like ftruncate: growth reads as a hole. */
	truncate(size: number): void {
		const data = Buffer.alloc(size);
		this.data.copy(data, 0, 0, Math.min(size, this.data.length));
		const allocated = new Uint8Array(Math.ceil(size / PAGE));
		allocated.set(this.allocated.subarray(0, allocated.length));
		this.data = data;
		this.allocated = allocated;
	}

	sync(): void {}

	close(): void {}
}
