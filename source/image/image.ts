// The engine reads and writes images only through these interfaces, never through paths.

import type {Range} from '../blocks/blocks.js';

export type {Range};

export type ImageKind = 'file' | 'block' | 'memory';

/** A readable image. Synchronous on purpose: each engine worker is its own thread. */
export interface Image {
	readonly name: string;
	readonly kind: ImageKind;
	/** Bytes of image content (for DST: what it holds now, which --truncate may change). */
	readonly size: number;
	/** Fills buffer[offset, offset+length) from `position`; bytes past `size` read as zeros, an end of file before `size` throws. */
	read(buffer: Buffer, offset: number, length: number, position: number): void;
	/**
	 * The ranges inside [start, end) that may hold data, ascending and disjoint; everything else
	 * reads as zeros. Returns undefined when the image cannot tell (then all of it is data).
	 */
	dataRanges(start: number, end: number): Range[] | undefined;
	/**
	 * The ranges inside [start, end) that changed since the last completed pass, ascending and disjoint, by a
	 * dirty bitmap (an NBD export's qemu:dirty-bitmap context); absent when the image keeps no such record.
	 */
	changedRanges?(start: number, end: number): Range[];
	/**
	 * A hint: the ranges this reader will read next, ascending (SOURCE: its data chunks). An image whose every read
	 * costs a round trip (an NBD export) may then fetch ahead, never outside these ranges. A new call replaces it.
	 */
	readAhead?(ranges: readonly Range[]): void;
	/**
	 * Bytes read from the storage behind the image so far, for one that serves some reads from memory (an NBD export
	 * keeps what it fetched ahead): counted images (srcBytesRead, dstBytesRead) report these, not the bytes asked.
	 */
	readonly storageBytesRead?: number;
	close(): void;
}

/** An image the engine may change. */
export interface WritableImage extends Image {
	write(buffer: Buffer, offset: number, length: number, position: number): void;
	/** Makes [position, position+length) read as zeros: punches a hole in a file, zeroes a device range. */
	zero(position: number, length: number): void;
	/** Data and size reach stable storage (fdatasync). */
	sync(): void;
}
