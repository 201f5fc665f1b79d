// A larger receive window for an SSH channel: ssh2's is a fixed 2 MiB, refilled once it falls to 1 MiB, so a channel
// whose far end sends (a pull's SOURCE) moves at most 1-2 MiB per round trip: 12-25 MiB/s at 80 ms.
import type {ClientChannel} from 'ssh2';

/** The receive window kept open per channel: refilled to this once it falls to half (at 80 ms: 50-100 MiB/s). */
export const RECEIVE_WINDOW = 8 * 1024 * 1024;

/** The parts of ssh2's Channel (1.x) this reaches into; absent on another version, which is then left as it is. */
type Internals = {
	incoming?: {window: number};
	outgoing?: {id: number; state: string};
	_client?: {_protocol?: {channelWindowAdjust?: (id: number, amount: number) => void}};
	push: (chunk: unknown, encoding?: BufferEncoding) => boolean;
};

/**
 * Keeps `bytes` of receive window open on the channel while its reader keeps up: each chunk ssh2 pushes into the
 * stream without reaching its high-water mark may refill the window (one WINDOW_ADJUST per half window); a paused or
 * slow reader (push returns false) gets none, so the far end stops within `bytes` as with ssh2's own window.
 * Returns whether the channel was widened (false on an ssh2 whose internals differ).
 */
export function widenReceiveWindow(channel: ClientChannel, bytes = RECEIVE_WINDOW): boolean {
	const internals = channel as unknown as Internals;
	const incoming = internals.incoming;
	const outgoing = internals.outgoing;
	const protocol = internals._client?._protocol;
	if (!incoming || !outgoing || typeof incoming.window !== 'number' || typeof protocol?.channelWindowAdjust !== 'function') {
		return false;
	}
	const refill = (): void => {
		if (outgoing.state === 'open' && incoming.window <= bytes / 2) {
			const amount = bytes - incoming.window;
			incoming.window += amount;
			protocol.channelWindowAdjust!(outgoing.id, amount);
		}
	};
	const push = internals.push.bind(channel);
	internals.push = (chunk, encoding) => {
		const flowing = push(chunk, encoding);
		if (flowing && chunk !== null) {
			refill();
		}
		return flowing;
	};
	refill();
	return true;
}
