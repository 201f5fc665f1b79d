// A Link carries frames between the driver and one role: an agent over an SSH channel, or an AgentCore in this process.
import type {Duplex} from 'node:stream';
import {AgentCore} from '../agent/agent-core.js';
import {type Frame, FrameDecoder} from '../protocol/frame.js';
import {WriteBatcher} from './batcher.js';

export interface Link {
	/** "pve" for a remote agent, "local" in-process: prefixes every message about this link. */
	readonly label: string;
	readonly remote: boolean;
	/** Bytes written to / read from the network (0 for in-process links). */
	readonly bytesOut: number;
	readonly bytesIn: number;
	/** Queues one encoded frame for the role. Never blocks: the protocol's credit window bounds what is queued. */
	send(bytes: Buffer): void;
	/** Set by the session: each whole frame from the role, and the end of the link (reason when unexpected). */
	onFrame: (frame: Frame) => void;
	onClose: (reason: string | undefined) => void;
	close(): void;
}

/** A role inside this process: frames cross through a setImmediate queue, never by recursion. */
export class InProcessLink implements Link {
	readonly label = 'local';
	readonly remote = false;
	readonly bytesOut = 0;
	readonly bytesIn = 0;
	onFrame: (frame: Frame) => void = () => {};
	onClose: (reason: string | undefined) => void = () => {};
	private readonly core: AgentCore;
	private readonly toCore = new FrameDecoder();
	private readonly fromCore = new FrameDecoder();
	private closed = false;

	constructor() {
		this.core = new AgentCore(
			bytes => {
				const frames = this.fromCore.push(bytes);
				setImmediate(() => frames.forEach(frame => !this.closed && this.onFrame(frame)));
			},
			() => setImmediate(() => this.finish(undefined)),
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

	private finish(reason: string | undefined): void {
		if (!this.closed) {
			this.closed = true;
			this.onClose(reason);
		}
	}
}

/** An agent at the other end of a byte stream (an SSH exec channel, or a child process in tests). */
export class StreamLink implements Link {
	readonly remote = true;
	bytesOut = 0;
	bytesIn = 0;
	onFrame: (frame: Frame) => void = () => {};
	onClose: (reason: string | undefined) => void = () => {};
	private readonly decoder = new FrameDecoder();
	private closed = false;
	private exitReason: string | undefined;
	private readonly batcher: WriteBatcher;

	/** lostReason: asked when the stream closes, for a reason the connection knows (keepalive timeout). */
	constructor(readonly label: string, private readonly stream: Duplex, private readonly lostReason: () => string | undefined = () => undefined) {
		this.batcher = new WriteBatcher(bytes => {
			if (!this.closed) {
				this.stream.write(bytes);
			}
		});
		stream.on('data', (chunk: Buffer) => {
			this.bytesIn += chunk.length;
			let frames: Frame[];
			try {
				frames = this.decoder.push(chunk);
			} catch (error) {
				this.finish(`protocol error: ${error instanceof Error ? error.message : String(error)}`);
				return;
			}
			for (const frame of frames) {
				if (this.closed) {
					return;
				}
				this.onFrame(frame);
			}
		});
		stream.on('error', (error: Error) => this.finish(error.message));
		stream.on('close', () => this.finish(this.exitReason ?? this.lostReason() ?? (this.decoder.buffered > 0 ? 'the stream ended inside a frame' : undefined)));
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

	close(): void {
		if (!this.closed) {
			this.batcher.flush();
			this.stream.end();
			this.stream.destroy();
			this.finish(undefined);
		}
	}

	private finish(reason: string | undefined): void {
		if (!this.closed) {
			this.closed = true;
			this.onClose(reason);
		}
	}
}
