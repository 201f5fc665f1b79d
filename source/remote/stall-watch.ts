// The stall timer of one relayed session: a role that stops sending (a stopped process, a wedged disk) while
// its link stays up would otherwise hold the run forever; keepalives only catch a dead link.
import {TYPE_CODE} from '../protocol/messages.js';

export type Peer = 'SOURCE' | 'DEST';

/**
 * Calls `onStall` once when neither role sent a frame for `ms`. Each role answers the other within moments
 * (credits, digests, data), so when both are quiet the one quiet longest holds the session; once SOURCE has
 * sent SOURCE_END it owes nothing, and only DEST's DONE is awaited. A check that comes late (this process's
 * event loop was blocked, e.g. by an in-process role's fdatasync) starts the silence over instead of counting it.
 */
export class StallWatch {
	private readonly last: Record<Peer, number>;
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

	/** A frame of `type` arrived from `peer`. */
	saw(peer: Peer, type: number): void {
		this.last[peer] = this.clock();
		if (peer === 'SOURCE' && type === TYPE_CODE.sourceEnd) {
			this.sourceEnded = true;
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
			this.onStall(this.sourceEnded || this.last.DEST < this.last.SOURCE ? 'DEST' : 'SOURCE');
		}
	}
}
