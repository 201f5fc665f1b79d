// The agent inside a worker thread: the local role of a remote sync hashes off the main thread, one thread per worker.
import {parentPort} from 'node:worker_threads';
import {FrameDecoder} from '../protocol/frame.js';
import {WriteBatcher} from './batcher.js';
import {AgentCore} from './agent-core.js';

/** Message that ends the conversation in either direction (after the last frames). */
export const THREAD_END = 'end';

/** Serves one AgentCore on parentPort: Uint8Array frames in and out, THREAD_END when done. */
export function runThreadAgent(): void {
	const port = parentPort;
	if (!port) {
		throw new Error('runThreadAgent() must run in a worker thread');
	}
	const decoder = new FrameDecoder();
	const batcher = new WriteBatcher(bytes => port.postMessage(bytes));
	let finished = false;
	const core = new AgentCore(
		bytes => batcher.push(bytes),
		() => {
			finished = true;
			batcher.flush();
			port.postMessage(THREAD_END);
			port.close();
		},
	);
	port.on('message', (message: Uint8Array | string) => {
		if (finished) {
			return;
		}
		if (message === THREAD_END) {
			core.end();
			return;
		}
		if (typeof message !== 'string') {
			for (const frame of decoder.push(Buffer.from(message.buffer, message.byteOffset, message.byteLength))) {
				core.push(frame);
			}
		}
	});
}
