// The stall timer of one relayed session: a role that stops sending (a stopped process, a wedged disk) while
// its link stays up would otherwise hold the run forever; keepalives only catch a dead link.
import type {Frame} from '../protocol/frame.js';
import {TYPE_CODE} from '../protocol/messages.js';

export type Peer = 'SOURCE' | 'DEST';

/**
 * Calls `onStall` once when neither role sent a frame for `ms`, naming the role the session waits for. That is
 * read from the frames going by (doc/protocol.md), not from who spoke last (SOURCE's DATA needs no answer):
 * SOURCE owes the rest of a chunk DEST asked about (SUBS, BLOCKS, FULL until its CHUNK_END), and the next chunk
 * while it has credit; DEST owes BLOCKS for a WANT, CREDIT once SOURCE has used its credit, and DONE once
 * SOURCE_END came and nothing is owed to it, and CREDIT too while two or more chunks SOURCE sent are not yet
 * acknowledged (a --compress=auto SOURCE may wait for it with credit left). When both owe something, the one quiet
 * longer is named.
 * A check that comes late (this process's event loop was blocked, e.g. by an in-process role's fdatasync)
 * starts the silence over instead of counting it.
 */
export class StallWatch {
	private readonly last: Record<Peer, number>;
	/** Chunks (by offset) whose next frame is SOURCE's: asked with SUBS or FULL, or answered with BLOCKS. */
	private readonly sourceOwes = new Set<number>();
	/** Chunks whose BLOCKS DEST owes (SOURCE sent WANT). */
	private readonly destOwes = new Set<number>();
	/** Data chunks SOURCE started (each takes a credit: CHUNK, or in copy mode a CHUNK_END nobody asked for). */
	private sent = 0;
	private granted = 0;
	/** DEST's first CREDIT: later ones grant it past the chunks DEST completed. */
	private window: number | undefined;
	private sourceEnded = false;
	private lastCheck: number;
	private readonly interval: number;
	private readonly timer: ReturnType<typeof setInterval>;

	constructor(private readonly ms: number, private readonly onStall: (peer: Peer) => void, private readonly clock: () => number = () => performance.now()) {
		const now = clock();
		this.last = {SOURCE: now, DEST: now};
		this.lastCheck = now;
		this.interval = Math.max(10, Math.min(1000, ms / 4));
		this.timer = setInterval(() => this.check(), this.interval);
	}

	/** A frame arrived from `peer`. */
	saw(peer: Peer, frame: Pick<Frame, 'type' | 'payload'>): void {
		this.last[peer] = this.clock();
		const offset = offsetOf(frame.payload);
		switch (frame.type) {
			case TYPE_CODE.subs:
			case TYPE_CODE.full:
			case TYPE_CODE.blocks:
				this.destOwes.delete(offset);
				this.sourceOwes.add(offset);
				break;
			case TYPE_CODE.want:
				this.sourceOwes.delete(offset);
				this.destOwes.add(offset);
				break;
			case TYPE_CODE.chunk:
			case TYPE_CODE.chunkSubs:
				this.sent += 1;
				break;
			case TYPE_CODE.chunkEnd:
				if (!this.sourceOwes.delete(offset)) {
					this.sent += 1;
				}
				break;
			case TYPE_CODE.credit:
				this.granted = Math.max(this.granted, frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) : 0);
				this.window ??= this.granted;
				break;
			case TYPE_CODE.sourceEnd:
				this.sourceEnded = true;
				break;
			default:
				break;
		}
	}

	/** The session ended: no more checks. */
	stop(): void {
		clearInterval(this.timer);
	}

	/** Runs the check now (the timer calls it; tests too). */
	check(): void {
		const now = this.clock();
		if (now - this.lastCheck > 3 * this.interval + 1000) {
			this.last.SOURCE = now;
			this.last.DEST = now;
		}
		this.lastCheck = now;
		if (now - Math.max(this.last.SOURCE, this.last.DEST) >= this.ms) {
			this.stop();
			this.onStall(this.holder());
		}
	}

	/** The role the session waits for. */
	private holder(): Peer {
		const source = this.sourceOwes.size > 0 || (!this.sourceEnded && this.sent < this.granted);
		const unacknowledged = this.window === undefined ? 0 : this.sent - (this.granted - this.window);
		const dest = this.destOwes.size > 0 || (this.sourceOwes.size === 0 && (this.sourceEnded || this.sent >= this.granted || unacknowledged >= 2));
		if (source !== dest) {
			return source ? 'SOURCE' : 'DEST';
		}
		return this.last.DEST < this.last.SOURCE ? 'DEST' : 'SOURCE';
	}
}

/** The u64 offset most session frames start with (-1 when the payload is too short: the session's rules refuse it). */
function offsetOf(payload: Buffer): number {
	return payload.length >= 8 ? payload.readUInt32BE(0) * 2 ** 32 + payload.readUInt32BE(4) : -1;
}
