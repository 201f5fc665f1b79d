// An image whose reads are counted: the bytes a role asked of its disk, NBD export or memory (srcBytesRead, dstBytesRead).
import type {Image, ImageKind, Range} from './image.js';

/** Delegates to `inner`, adding up the bytes of every read inside the image's size (bytes past it read as zeros, unread). */
export class CountedImage implements Image {
	bytesRead = 0;
	readonly changedRanges?: (start: number, end: number) => Range[];
	readonly readAhead?: (ranges: readonly Range[]) => void;

	constructor(readonly inner: Image) {
		if (inner.changedRanges) {
			this.changedRanges = (start, end) => inner.changedRanges!(start, end);
		}
		if (inner.readAhead) {
			// The hint only: what is fetched ahead is counted when it is read.
			this.readAhead = ranges => inner.readAhead!(ranges);
		}
	}

	get name(): string {
		return this.inner.name;
	}

	get kind(): ImageKind {
		return this.inner.kind;
	}

	get size(): number {
		return this.inner.size;
	}

	read(buffer: Buffer, offset: number, length: number, position: number): void {
		this.inner.read(buffer, offset, length, position);
		this.bytesRead += Math.max(0, Math.min(length, this.inner.size - position));
	}

	dataRanges(start: number, end: number): Range[] | undefined {
		return this.inner.dataRanges(start, end);
	}

	close(): void {
		this.inner.close();
	}
}
