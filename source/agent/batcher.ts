// Coalesces small frames into large writes: one SSH packet or pipe write per ~256 KiB instead of one per frame.

/** Flush threshold: large enough to fill SSH packets, small enough to keep latency low. */
export const BATCH_BYTES = 256 * 1024;

/** Collects buffers and hands them to `write` concatenated, when full or on the next turn of the event loop. */
export class WriteBatcher {
	private parts: Buffer[] = [];
	private bytes = 0;
	private scheduled = false;

	constructor(private readonly write: (bytes: Buffer) => void) {}

	push(bytes: Buffer): void {
		this.parts.push(bytes);
		this.bytes += bytes.length;
		if (this.bytes >= BATCH_BYTES) {
			this.flush();
		} else if (!this.scheduled) {
			this.scheduled = true;
			setImmediate(() => {
				this.scheduled = false;
				this.flush();
			});
		}
	}

	/** Writes whatever is pending now. */
	flush(): void {
		if (this.bytes > 0) {
			const parts = this.parts;
			this.parts = [];
			this.bytes = 0;
			this.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
		}
	}
}
