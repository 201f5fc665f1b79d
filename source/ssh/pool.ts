// Several SSH connections to one host when one would carry too many channels: OpenSSH's sshd allows
// MaxSessions (10 by default) at once on a connection, and every worker's agent is a channel.

/** What the pool needs of a connection: `lost` once it died (a dead one is dropped, the next reserve() connects anew). */
export type Closable = {close(): void; readonly lost?: string | undefined};

/** OpenSSH's default MaxSessions is 10: stay below it, with room for a probe command. */
export const CHANNELS_PER_CONNECTION = 8;

type Slot<C> = {connection: Promise<C>; resolved?: C; channels: number};

/** Connections to one host, each carrying at most `perConnection` channels at once; more are opened on demand. */
export class ConnectionPool<C extends Closable> {
	private readonly slots: Array<Slot<C>> = [];

	constructor(first: C, private readonly connectMore: () => Promise<C>, private readonly perConnection = CHANNELS_PER_CONNECTION) {
		this.slots.push({connection: Promise.resolve(first), resolved: first, channels: 0});
	}

	/** How many connections are open or opening. */
	get size(): number {
		return this.slots.length;
	}

	/** A connection with a free channel, reserved for the caller until release(); opens one when all are full. */
	async reserve(): Promise<C> {
		for (let index = this.slots.length - 1; index >= 0; index--) {
			const dead = this.slots[index]!.resolved;
			if (dead?.lost !== undefined) {
				this.slots.splice(index, 1);
				dead.close();
			}
		}
		let slot = this.slots.find(candidate => candidate.channels < this.perConnection);
		if (!slot) {
			const opening: Slot<C> = {connection: this.connectMore(), channels: 0};
			opening.connection.then(connection => {
				opening.resolved = connection;
			}, () => {});
			this.slots.push(opening);
			slot = opening;
		}
		slot.channels += 1;
		try {
			return await slot.connection;
		} catch (error) {
			// Every caller waiting on that connection lands here: only the first removes its slot.
			const index = this.slots.indexOf(slot);
			if (index >= 0) {
				this.slots.splice(index, 1);
			}
			throw error;
		}
	}

	/** Gives back the channel reserve() handed out on `connection`. */
	release(connection: C): void {
		const slot = this.slots.find(candidate => candidate.resolved === connection);
		if (slot && slot.channels > 0) {
			slot.channels -= 1;
		}
	}

	/** Closes every connection (those still opening, once they are up). */
	closeAll(): void {
		for (const slot of this.slots.splice(0)) {
			slot.connection.then(connection => connection.close(), () => {});
		}
	}
}
