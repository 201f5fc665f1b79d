// A user-space TCP proxy that makes a loopback connection look like a WAN link (this kernel has no netem/tbf):
// each direction is delayed by RTT/2, kept in order, and limited to a rate by a token bucket (GCRA form).
// The bench in bench/wan/run.ts puts it in front of the test sshd; test/bench/delay-proxy.test.ts checks it.
import {createServer, connect, type Server, type Socket} from 'node:net';
import {performance} from 'node:perf_hooks';

export type LinkShape = {
	/** Round-trip time added, in milliseconds: each direction is delayed by half of it. */
	readonly rttMs: number;
	/** Bytes per second in each direction; 0 or Infinity: unlimited. */
	readonly rate: number;
	/** What the bucket lets through at once after an idle spell (default 64 KiB, at most 5 ms at 100 Mbit/s). */
	readonly burstBytes?: number;
	/**
	 * Bytes a direction holds (in the delay line and the rate queue) before it stops reading its sender, so TCP
	 * pushes back on it (default 16 MiB). It bounds memory, not the link: the senders' SSH windows bound it first.
	 */
	readonly maxQueuedBytes?: number;
};

export type DelayProxy = {
	readonly port: number;
	/** Bytes delivered so far, client to target and target to client, over every connection. */
	readonly bytes: {up: number; down: number};
	/** Connections accepted so far. */
	readonly connections: number;
	/** Resets every open connection (both sides), as a dropped link would. */
	cutAll(): void;
	stop(): Promise<void>;
};

type Item = {readonly chunk: Buffer; readonly due: number};

/**
 * One direction of one connection: what `from` sends reaches `to` no earlier than RTT/2 after it arrived, in
 * order, and at no more than `rate` bytes a second on average (a burst of `burstBytes` after an idle spell).
 * A clean end is passed on after the data before it; a reset or an error tears both sockets down at once.
 */
function pipeDirection(from: Socket, to: Socket, shape: LinkShape, count: (bytes: number) => void, notBefore = 0): void {
	const delay = shape.rttMs / 2;
	const rate = shape.rate > 0 && Number.isFinite(shape.rate) ? shape.rate / 1000 : 0; // bytes per ms
	const tau = rate ? (shape.burstBytes ?? 64 * 1024) / rate : 0;
	const maxQueued = shape.maxQueuedBytes ?? 16 * 1024 * 1024;
	const queue: Item[] = [];
	let head = 0;
	let queued = 0;
	let tat = 0; // GCRA's theoretical arrival time: when the bucket would be full again
	let ended = false;
	let timer: NodeJS.Timeout | undefined;
	let waitingForDrain = false;

	const flush = (): void => {
		timer = undefined;
		const now = performance.now();
		while (head < queue.length && !waitingForDrain) {
			const item = queue[head]!;
			if (item.due > now) {
				break;
			}
			head += 1;
			queued -= item.chunk.length;
			count(item.chunk.length);
			if (!to.write(item.chunk)) {
				waitingForDrain = true;
				to.once('drain', () => {
					waitingForDrain = false;
					flush();
				});
			}
		}
		if (head > 1024 && head * 2 > queue.length) {
			queue.splice(0, head);
			head = 0;
		}
		if (queued < maxQueued / 2 && from.isPaused()) {
			from.resume();
		}
		if (head < queue.length) {
			if (!waitingForDrain) {
				timer = setTimeout(flush, Math.max(0, queue[head]!.due - performance.now()));
			}
		} else if (ended && !to.destroyed) {
			to.end();
		}
	};

	from.on('data', (chunk: Buffer) => {
		const now = Math.max(performance.now(), notBefore);
		let leaves = now;
		if (rate) {
			tat = Math.max(now, tat) + chunk.length / rate;
			leaves = Math.max(now, tat - tau);
		}
		const due = leaves + delay;
		if (head === queue.length && !waitingForDrain && due <= performance.now()) {
			// Nothing waiting and nothing to wait for (RTT 0, the bucket not empty): straight through.
			count(chunk.length);
			if (!to.write(chunk)) {
				waitingForDrain = true;
				to.once('drain', () => {
					waitingForDrain = false;
					flush();
				});
			}
			return;
		}
		queue.push({chunk, due});
		queued += chunk.length;
		if (queued >= maxQueued) {
			from.pause();
		}
		if (!timer && !waitingForDrain && head === queue.length - 1) {
			timer = setTimeout(flush, Math.max(0, due - performance.now()));
		}
	});
	from.on('end', () => {
		ended = true;
		if (!timer && !waitingForDrain) {
			flush();
		}
	});
	from.on('close', () => {
		if (!ended) {
			// A reset, not an end: the link is gone, so is what was still on it.
			clearTimeout(timer);
			to.destroy();
		}
	});
}

/** Listens on 127.0.0.1 (port 0: any free port) and forwards every connection to target through `shape`. */
export async function startDelayProxy(target: {host: string; port: number}, shape: LinkShape, listenPort = 0): Promise<DelayProxy> {
	const sockets = new Set<Socket>();
	const bytes = {up: 0, down: 0};
	let connections = 0;
	const server: Server = createServer({allowHalfOpen: true, noDelay: true, pauseOnConnect: true}, client => {
		connections += 1;
		const accepted = performance.now();
		sockets.add(client);
		client.on('error', () => client.destroy());
		client.on('close', () => sockets.delete(client));
		// TCP's handshake, which the kernel here answers at once: the SYN reaches the target RTT/2 later, and what
		// the client sends goes out once the SYN-ACK would have come back (one RTT after connecting), as on a real link.
		const open = (): void => {
			if (client.destroyed) {
				return;
			}
			const upstream = connect({host: target.host, port: target.port, allowHalfOpen: true, noDelay: true});
			sockets.add(upstream);
			upstream.on('error', () => upstream.destroy());
			upstream.on('close', () => sockets.delete(upstream));
			pipeDirection(client, upstream, shape, n => {
				bytes.up += n;
			}, accepted + shape.rttMs);
			pipeDirection(upstream, client, shape, n => {
				bytes.down += n;
			});
			upstream.once('connect', () => client.resume());
		};
		if (shape.rttMs > 0) {
			setTimeout(open, shape.rttMs / 2);
		} else {
			open();
		}
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(listenPort, '127.0.0.1', () => resolve());
	});
	const address = server.address();
	if (typeof address !== 'object' || !address) {
		throw new Error('the delay proxy has no address');
	}
	return {
		port: address.port,
		bytes,
		get connections() {
			return connections;
		},
		cutAll() {
			for (const socket of sockets) {
				socket.resetAndDestroy();
			}
		},
		async stop() {
			for (const socket of sockets) {
				socket.destroy();
			}
			await new Promise<void>(resolve => server.close(() => resolve()));
		},
	};
}
