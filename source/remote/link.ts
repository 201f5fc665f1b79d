// A Link carries frames between the driver and one role: an agent over an SSH channel, or an AgentCore in this process.
import {existsSync} from 'node:fs';
import type {Duplex} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {Worker} from 'node:worker_threads';
import {THREAD_END} from '../agent/thread-agent.js';
import {AgentCore} from '../agent/agent-core.js';
import type {RoleOpener} from '../delta/open-role.js';
import {type Frame, FrameDecoder} from '../protocol/frame.js';
import {WriteBatcher} from '../agent/batcher.js';

/** The driver's view of one role; the session relay sets the handlers. */
export interface Link {
	/** "pve" for a remote agent, "local" in-process: prefixes every message about this link. */
	readonly label: string;
	readonly remote: boolean;
	/** Bytes written to / read from the network (0 for in-process links). */
	readonly bytesOut: number;
	readonly bytesIn: number;
	/** Queues encoded frames for the role (a frame may come in pieces: --bwlimit slices). Never blocks: the protocol's credit window bounds what is queued. */
	send(bytes: Buffer): void;
	/** Stops and restarts reading from the role (--bwlimit: a remote SOURCE then stops sending); absent where nothing crosses the network. */
	pause?(): void;
	resume?(): void;
	/** Whether the link has ended (before anyone listened, possibly), and why when unexpectedly. */
	readonly ended: boolean;
	readonly endReason: string | undefined;
	/** Why the link failed when that error says it all (the agent could not be started: exit 1): openLink rejects with it. */
	readonly failure?: Error | undefined;
	/** The capabilities of the agent's HELLO, once it was greeted (one HELLO per link, then one OPEN per session). */
	greeted: number | undefined;
	/** Set by the session: each whole frame from the role, and the end of the link (reason when unexpected). */
	onFrame: (frame: Frame) => void;
	onClose: (reason: string | undefined) => void;
	close(): void;
	/** Whether close() was called or the link ended (links kept for reuse are checked). */
	readonly isClosed?: boolean;
	/** A role in a thread of this process: resolves once that thread ended (its image flushed and closed), or gave up waiting. */
	threadEnded?(): Promise<void>;
}

/** What every Link shares: the session's handlers, and a close reported exactly once. */
abstract class LinkBase {
	greeted: number | undefined = undefined;
	onFrame: (frame: Frame) => void = () => {};
	onClose: (reason: string | undefined) => void = () => {};
	protected closed = false;
	endReason: string | undefined;

	get ended(): boolean {
		return this.closed;
	}

	get isClosed(): boolean {
		return this.closed;
	}

	/** Marks the link closed and tells the session (reason when unexpected); later calls do nothing. */
	protected finish(reason: string | undefined): void {
		if (!this.closed) {
			this.closed = true;
			this.endReason = reason;
			this.onClose(reason);
		}
	}

	/** Hands frames to the session in order, stopping as soon as the link is closed. */
	protected deliver(frames: readonly Frame[]): void {
		for (const frame of frames) {
			if (this.closed) {
				return;
			}
			this.onFrame(frame);
		}
	}
}

/** A role inside this process: frames cross through a setImmediate queue, never by recursion. */
export class InProcessLink extends LinkBase implements Link {
	readonly label = 'local';
	readonly remote = false;
	readonly bytesOut = 0;
	readonly bytesIn = 0;
	private readonly core: AgentCore;
	private readonly toCore = new FrameDecoder();
	private readonly fromCore = new FrameDecoder();

	/** `opener`: how the role opens its image (default: this host's files and devices). */
	constructor(opener?: RoleOpener) {
		super();
		this.core = new AgentCore(
			bytes => {
				const frames = this.fromCore.push(bytes);
				setImmediate(() => this.deliver(frames));
			},
			() => setImmediate(() => this.finish(undefined)),
			undefined,
			opener,
		);
	}

	send(bytes: Buffer): void {
		const frames = this.toCore.push(bytes);
		setImmediate(() => frames.forEach(frame => !this.closed && this.core.push(frame)));
	}

	close(): void {
		if (!this.closed) {
			this.core.end();
			this.finish(undefined);
		}
	}
}

/**
 * The agent entry a worker thread loads: dist/agent/entry.js, or beside a bundle rblocksync-thread.mjs (split like
 * the CLI: what a role does not use is not loaded), else rblocksync-agent.mjs.
 */
function threadEntry(): URL | undefined {
	return ['../agent/entry.js', './rblocksync-thread.mjs', './rblocksync-agent.mjs'].map(path => new URL(path, import.meta.url))
		.find(url => existsSync(fileURLToPath(url)));
}

/** How long the process waits, at its end, for a closed thread to close its image. */
const THREAD_EXIT_MS = 10_000;

/** A role in a worker thread of this process (local hashing in parallel); falls back to InProcessLink. */
export class ThreadLink extends LinkBase implements Link {
	readonly label = 'local';
	readonly remote = false;
	readonly bytesOut = 0;
	readonly bytesIn = 0;
	private readonly decoder = new FrameDecoder();
	private readonly batcher: WriteBatcher;
	private readonly exit: Promise<void>;
	private giveUp: (() => void) | undefined;
	/** Whether any frame was sent to the thread. */
	private used = false;

	/** A thread, unless `inProcess` (or no thread entry can be found). */
	static create(inProcess = false): Link {
		const entry = inProcess ? undefined : threadEntry();
		return entry ? new ThreadLink(new Worker(entry)) : new InProcessLink();
	}

	private constructor(private readonly worker: Worker) {
		super();
		this.batcher = new WriteBatcher(bytes => this.worker.postMessage(bytes));
		worker.on('message', (message: Uint8Array | string) => {
			if (message === THREAD_END) {
				this.finish(undefined);
			} else if (typeof message !== 'string' && !this.closed) {
				this.deliver(this.decoder.push(Buffer.from(message.buffer, message.byteOffset, message.byteLength)));
			}
		});
		worker.on('error', error => this.finish(`local worker thread failed: ${error.message}`));
		worker.on('exit', code => this.finish(code === 0 ? undefined : `local worker thread exited with status ${code}`));
		this.exit = new Promise(resolve => {
			worker.once('exit', () => resolve());
			this.giveUp = resolve;
		});
	}

	threadEnded(): Promise<void> {
		return this.exit;
	}

	send(bytes: Buffer): void {
		if (!this.closed) {
			this.used = true;
			this.batcher.push(bytes);
		}
	}

	close(): void {
		if (!this.closed && !this.used) {
			// Never sent a frame (a link opened ahead that the run did not need): no image is open there, nothing to
			// flush; ended at once rather than after its start-up.
			this.finish(undefined);
			void this.worker.terminate();
			return;
		}
		if (!this.closed) {
			this.batcher.flush();
			this.worker.postMessage(THREAD_END);
			this.finish(undefined);
			// The thread ends once AgentCore closed its image, which may take a moment (a running VM's export is
			// removed over QMP): the process waits for it, but not for a thread stuck there (THREAD_EXIT_MS).
			const timer = setTimeout(() => {
				this.worker.unref();
				this.giveUp?.();
			}, THREAD_EXIT_MS);
			this.worker.once('exit', () => clearTimeout(timer));
		}
	}
}

/**
 * How a link started with the one-exec start command (remote/deploy.ts) goes on when that command found no agent
 * to run and printed the probe instead: the probe's output in, the channel of an agent that does run out (after an
 * upload, say), or an error that fails the link as it is (exit 1: no node, no bundle).
 */
export type StartFallback = (probe: string) => Promise<Duplex>;

/** The first byte of the start command's probe output ("rbs-..."): never the first byte of a frame (a length < 2^25). */
const PROBE_FIRST_BYTE = 0x72;

/** An agent at the other end of a byte stream (an SSH exec channel, or a child process in tests). */
export class StreamLink extends LinkBase implements Link {
	readonly remote = true;
	bytesOut = 0;
	bytesIn = 0;
	/** Why the link failed when the error is the whole story (a fallback's refusal): openLink rethrows it as it is. */
	failure: Error | undefined;
	private decoder = new FrameDecoder();
	private exitReason: string | undefined;
	private readonly batcher: WriteBatcher;
	private stream: Duplex;
	/** What was sent before the agent's first byte, for the agent a fallback starts; undefined once the agent answered. */
	private replay: Buffer[] | undefined;
	/** The start command's probe output while it arrives; undefined when none. */
	private probe: string | undefined;
	private generation = 0;

	/**
	 * lostReason: asked when the stream closes, for a reason the connection knows (keepalive timeout).
	 * fallback: the stream runs the start command, which may print the probe instead of starting the agent.
	 */
	constructor(readonly label: string, stream: Duplex, private readonly lostReason: () => string | undefined = () => undefined, private readonly fallback?: StartFallback) {
		super();
		this.stream = stream;
		this.replay = fallback ? [] : undefined;
		this.batcher = new WriteBatcher(bytes => {
			this.replay?.push(bytes);
			if (!this.closed && this.probe === undefined) {
				this.stream.write(bytes);
			}
		});
		this.attach(stream);
	}

	private attach(stream: Duplex): void {
		const generation = ++this.generation;
		const current = (): boolean => generation === this.generation;
		stream.on('data', (chunk: Buffer) => {
			if (!current()) {
				return;
			}
			if (this.probe !== undefined) {
				this.probe += chunk.toString('utf8');
				return;
			}
			if (this.replay && this.fallback && this.bytesIn === 0 && chunk[0] === PROBE_FIRST_BYTE) {
				this.probe = chunk.toString('utf8');
				return;
			}
			this.replay = undefined;
			this.bytesIn += chunk.length;
			let frames: Frame[];
			try {
				frames = this.decoder.push(chunk);
			} catch (error) {
				this.finish(`protocol error: ${error instanceof Error ? error.message : String(error)}`);
				return;
			}
			this.deliver(frames);
		});
		stream.on('error', (error: Error) => current() && this.probe === undefined && this.finish(error.message));
		stream.on('close', () => {
			if (!current()) {
				return;
			}
			if (this.probe !== undefined && !this.closed) {
				void this.restart(this.probe);
				return;
			}
			this.finish(this.exitReason ?? this.lostReason() ?? (this.decoder.buffered > 0 ? `protocol error: the stream ended inside a frame (${this.decoder.buffered} bytes pending)` : undefined));
		});
	}

	/** The start command printed the probe: the fallback starts the agent on a new stream, which gets everything sent so far. */
	private async restart(probe: string): Promise<void> {
		let stream: Duplex;
		try {
			stream = await this.fallback!(probe);
		} catch (error) {
			this.failure = error instanceof Error ? error : new Error(String(error));
			this.finish(this.failure.message);
			return;
		}
		if (this.closed) {
			stream.destroy();
			return;
		}
		this.probe = undefined;
		this.exitReason = undefined;
		this.decoder = new FrameDecoder();
		this.stream = stream;
		this.attach(stream);
		for (const bytes of this.replay ?? []) {
			this.bytesOut += bytes.length;
			stream.write(bytes);
		}
	}

	/** Records how the remote process ended (SSH exit-status / exit-signal), for the close reason. */
	exited(code: number | null, signal?: string): void {
		if (signal) {
			this.exitReason = `the agent was killed by signal ${signal.replace(/^SIG/, '')}`;
		} else if (code !== null && code !== 0) {
			this.exitReason = `the agent exited with status ${code}`;
		}
	}

	send(bytes: Buffer): void {
		if (!this.closed) {
			this.bytesOut += bytes.length;
			this.batcher.push(bytes);
		}
	}

	pause(): void {
		this.stream.pause();
	}

	resume(): void {
		this.stream.resume();
	}

	close(): void {
		if (!this.closed) {
			this.batcher.flush();
			this.stream.end();
			this.stream.destroy();
			this.finish(undefined);
		}
	}
}
