// Framing: [u32 BE length][u8 type][payload]; a pure encoder and an incremental decoder (doc/protocol.md).

/** Largest length field accepted: a 16 MiB data block plus headers. */
export const MAX_FRAME = 16 * 1024 * 1024 + 64 * 1024;
export const FRAME_HEADER = 5;

/** `bytes`: the whole frame as received, header included (for relaying without a copy). */
export type Frame = {readonly type: number; readonly payload: Buffer; readonly bytes?: Buffer};

/** A malformed byte stream: the session cannot continue. */
export class ProtocolError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'ProtocolError';
	}
}

/** One frame as bytes. */
export function encodeFrame(type: number, payload: Buffer | Uint8Array = Buffer.alloc(0)): Buffer {
	return encodeFrameParts(type, [payload]);
}

/** One frame whose payload is `parts` end to end: each part is copied once, straight into the frame. */
export function encodeFrameParts(type: number, parts: readonly Uint8Array[]): Buffer {
	let length = 0;
	for (const part of parts) {
		length += part.length;
	}
	if (length + 1 > MAX_FRAME) {
		throw new ProtocolError(`frame of ${length + 1} bytes exceeds the ${MAX_FRAME}-byte limit`);
	}
	const frame = Buffer.allocUnsafe(FRAME_HEADER + length);
	frame.writeUInt32BE(length + 1, 0);
	frame.writeUInt8(type, 4);
	let at = FRAME_HEADER;
	for (const part of parts) {
		frame.set(part, at);
		at += part.length;
	}
	return frame;
}

/** Feeds on chunks of any size; returns the whole frames they complete. Keeps the rest pending. */
export class FrameDecoder {
	private pending: Buffer[] = [];
	private pendingBytes = 0;

	constructor(private readonly maxFrame = MAX_FRAME) {}

	/** Bytes received but not yet part of a returned frame. */
	get buffered(): number {
		return this.pendingBytes;
	}

	/** Throws ProtocolError on a length of 0 or above the limit; after that the decoder is unusable. */
	push(chunk: Buffer): Frame[] {
		if (chunk.length > 0) {
			this.pending.push(chunk);
			this.pendingBytes += chunk.length;
		}
		const frames: Frame[] = [];
		while (this.pendingBytes >= 4) {
			const length = this.peekLength();
			if (length === 0 || length > this.maxFrame) {
				throw new ProtocolError(length === 0 ? 'frame with length 0' : `frame of ${length} bytes exceeds the ${this.maxFrame}-byte limit`);
			}
			if (this.pendingBytes < 4 + length) {
				break;
			}
			const bytes = this.take(4 + length);
			frames.push({type: bytes[4]!, payload: bytes.subarray(FRAME_HEADER), bytes});
		}
		return frames;
	}

	/** Call at end of stream: throws if it ended inside a frame. */
	end(): void {
		if (this.pendingBytes > 0) {
			throw new ProtocolError(`stream ended inside a frame (${this.pendingBytes} bytes pending)`);
		}
	}

	private peekLength(): number {
		const first = this.pending[0]!;
		if (first.length >= 4) {
			return first.readUInt32BE(0);
		}
		const head = Buffer.concat(this.pending, Math.min(this.pendingBytes, 4));
		return head.readUInt32BE(0);
	}

	private take(count: number): Buffer {
		const first = this.pending[0]!;
		let bytes: Buffer;
		if (first.length >= count) {
			bytes = first.subarray(0, count);
			if (first.length === count) {
				this.pending.shift();
			} else {
				this.pending[0] = first.subarray(count);
			}
		} else {
			const all = Buffer.concat(this.pending, this.pendingBytes);
			bytes = all.subarray(0, count);
			this.pending = all.length > count ? [all.subarray(count)] : [];
		}
		this.pendingBytes -= count;
		return bytes;
	}
}
