// The remote side: speaks the protocol on stdin/stdout (see doc/protocol.md); diagnostics go to stderr.
import {FrameDecoder} from '../protocol/frame.js';
import {WriteBatcher} from './batcher.js';
import {AgentCore} from './agent-core.js';

/** Serves one session on stdin/stdout; resolves with the exit status once stdout is flushed. */
export async function runAgent(input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<number> {
	return new Promise(resolve => {
		const decoder = new FrameDecoder();
		let finished = false;
		const batcher = new WriteBatcher(bytes => output.write(bytes));
		const core = new AgentCore(
			bytes => batcher.push(bytes),
			ok => {
				finished = true;
				batcher.flush();
				input.removeAllListeners('data');
				input.pause();
				output.end(() => {
					(input as {destroy?: () => void}).destroy?.();
					resolve(ok ? 0 : 1);
				});
			},
		);
		input.on('data', (chunk: Buffer) => {
			let frames;
			try {
				frames = decoder.push(chunk);
			} catch (error) {
				process.stderr.write(`rblocksync agent: ${error instanceof Error ? error.message : String(error)}\n`);
				core.end();
				return;
			}
			for (const frame of frames) {
				if (finished) {
					return;
				}
				core.push(frame);
			}
		});
		input.on('end', () => {
			if (!finished) {
				core.end();
			}
		});
		if (input === process.stdin) {
			// Ended by a signal (the SSH session's hangup, a kill): close as at the end of stdin, so what the
			// images hold on this host goes with them (a running VM's export, a qemu-nbd, DST's lock).
			const onSignal = (): void => {
				if (!finished) {
					core.end();
				}
			};
			for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) {
				process.once(signal, onSignal);
			}
		}
	});
}
