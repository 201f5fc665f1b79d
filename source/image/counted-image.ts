// An image whose reads are counted: the bytes a role asked of its disk, NBD export or memory (srcBytesRead, dstBytesRead).
import type {Image, ImageKind, Range} from './image.js';

/**
 * Delegates to `inner`, adding up the bytes of every read inside the image's size (bytes past it read as zeros, unread);
 * for an inner image that counts its storage's reads (storageBytesRead), those made since this one was made instead.
 */
export class CountedImage implements Image {
	private asked = 0;
	private readonly storageBase: number | undefined;
	readonly changedRanges?: (start: number, end: number) => Range[];
	readonly readAhead?: (ranges: readonly Range[]) => void;

	constructor(readonly inner: Image) {
		this.storageBase = inner.storageBytesRead;
		if (inner.changedRanges) {
			this.changedRanges = (start, end) => inner.changedRanges!(start, end);
		}
		if (inner.readAhead) {
			// The hint only: what is fetched ahead is counted when it is read.
			this.readAhead = ranges => inner.readAhead!(ranges);
		}
	}

	get bytesRead(): number {
		return this.storageBase === undefined ? this.asked : this.inner.storageBytesRead! - this.storageBase;
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
		this.asked += Math.max(0, Math.min(length, this.inner.size - position));
	}

	dataRanges(start: number, end: number): Range[] | undefined {
		return this.inner.dataRanges(start, end);
	}

	close(): void {
		this.inner.close();
	}
}
