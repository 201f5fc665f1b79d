// A hostile agent for the fault tests: the real AgentCore and codec on stdin/stdout, whose own frames are bent
// on cue. RBLOCKSYNC_FAKE names the misbehaviour (MODES below); test/faults/fake-host.ts installs it as the
// `rblocksync` of a test sshd host. HELLO, OPEN and OPENED are the real ones unless the mode says otherwise;
// `narrow:MODE` is an agent without the wide session (its HELLO lacks Capability.wideSession, as an older rblocksync's).
import {randomBytes} from 'node:crypto';
import {AgentCore} from '../../source/agent/agent-core.js';
import {encodeFrame, FrameDecoder} from '../../source/protocol/frame.js';
import {Capability, decode, encode, type Message, openFlags, PROTOCOL_VERSION, Role} from '../../source/protocol/messages.js';

/** The worker this agent serves, from the OPEN it was sent. */
type Session = {role: 'source' | 'dest'; start: number; end: number; srcSize: number; prepare: boolean};
/** What the agent writes instead of one of its own frames: frames (or raw bytes), then maybe an exit. */
type Bent = {bytes: Buffer[]; exit?: number};
/** `first`: the first frame of a worker's session (after its OPENED). */
type Mode = (message: Message, session: Session, first: boolean) => Bent | undefined;

const same = (message: Message): Buffer => encode(message);
const filler = Buffer.alloc(4096, 0xee);

/** Misbehaviours by name. A SOURCE's ones act in pulls and relays, a DEST's in pushes and relays. */
export const MODES: Record<string, Mode> = {
	// SOURCE: frames outside what it was given.
	'data-past-end': (m, s, first) => (first && s.role === 'source' && s.end === s.srcSize
		? {bytes: [encode({type: 'data', offset: s.srcSize, data: filler}), same(m)]} : undefined),
	'data-outside-range': (m, s, first) => (first && s.role === 'source' && s.start > 0
		? {bytes: [encode({type: 'data', offset: s.start - filler.length, data: filler}), same(m)]} : undefined),
	'zero-past-end': (m, s, first) => (first && s.role === 'source' ? {bytes: [encode({type: 'zero', offset: 2 ** 40, length: 1024 * 1024}), same(m)]} : undefined),
	'data-unannounced': (m, s, first) => (first && s.role === 'source' ? {bytes: [encode({type: 'data', offset: s.start, data: filler}), same(m)]} : undefined),
	// SOURCE: chunk order, CHUNK_END and masks.
	'chunk-twice': (m, s) => (s.role === 'source' && (m.type === 'chunk' || m.type === 'chunkSubs') && m.offset === s.start ? {bytes: [same(m), same(m)]} : undefined),
	// SOURCE in a wide session: a CHUNK_SUBS with one sub-chunk digest too few.
	'chunk-subs-count': m => (m.type === 'chunkSubs' ? {bytes: [encode({...m, subs: m.subs.subarray(8)})]} : undefined),
	'chunk-end-twice': m => (m.type === 'chunkEnd' ? {bytes: [same(m), same(m)]} : undefined),
	'no-chunk-end': m => (m.type === 'chunkEnd' ? {bytes: []} : undefined),
	'want-mask': m => (m.type === 'want' ? {bytes: [encode({...m, mask: 0xffffffff})]} : undefined),
	// SOURCE: bytes that are no frames, frames of no type or of the other direction, a cut frame.
	garbage: (m, s, first) => (first ? {bytes: [Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(60)]} : undefined),
	'unknown-type': (m, s, first) => (first ? {bytes: [encodeFrame(0x7f, Buffer.alloc(8)), same(m)]} : undefined),
	'wrong-direction': (m, s, first) => (first && s.role === 'source' ? {bytes: [encode({type: 'credit', granted: 1000}), same(m)]} : undefined),
	truncated: (m, s, first) => (first ? {bytes: [encode({type: 'data', offset: s.start, data: filler}).subarray(0, 100)], exit: 0} : undefined),
	// Either role: the handshake, or the process, fails.
	'protocol-2': m => (m.type === 'hello' ? {bytes: [encode({...m, protocol: PROTOCOL_VERSION + 1})]} : undefined),
	'early-exit': (m, s) => (m.type === 'opened' && !s.prepare ? {bytes: [same(m)], exit: 3} : undefined),
	// DEST: digest counts, chunks it was not sent, credit and DONE out of turn.
	'subs-count': m => (m.type === 'subs' ? {bytes: [encode({...m, digests: m.digests.subarray(0, 24)})]} : undefined),
	'blocks-count': m => (m.type === 'blocks' ? {bytes: [encode({...m, digests: m.digests.subarray(8)})]} : undefined),
	// DEST in a wide session: unasked BLOCKS with a mask past the chunk's sub-chunks.
	'blocks-mask': m => (m.type === 'blocks' ? {bytes: [encode({...m, mask: 0x10000 | m.mask})]} : undefined),
	'full-outside': (m, s) => (m.type === 'subs' || m.type === 'full' || m.type === 'blocks' ? {bytes: [encode({type: 'full', offset: s.end})]} : undefined),
	'credit-flood': m => (m.type === 'credit' ? {bytes: [encode({type: 'credit', granted: 0xffffffff})]} : undefined),
	'done-early': (m, s, first) => (first && s.role === 'dest' ? {bytes: [encode({type: 'done', counters: [0, 0, 0, 0, 0, 0, 0, 0]}), same(m)]} : undefined),
};

const spec = process.env['RBLOCKSYNC_FAKE'] ?? '';
const narrow = spec.startsWith('narrow:');
const mode = MODES[spec.replace(/^narrow:/, '')];
if (process.argv.includes('--agent-protocol')) {
	process.stdout.write(`${PROTOCOL_VERSION}\n`);
} else if (!mode) {
	process.stderr.write(`fake agent: RBLOCKSYNC_FAKE must be one of ${Object.keys(MODES).join(', ')}\n`);
	process.exitCode = 2;
} else {
	serve(mode);
}

function serve(bend: Mode): void {
	let session: Session = {role: 'source', start: 0, end: 0, srcSize: 0, prepare: true};
	let inSession = false;
	let ended = false;
	const write = (bytes: Buffer): void => {
		if (!ended) {
			process.stdout.write(bytes);
		}
	};
	const core = new AgentCore(bytes => {
		if (ended) {
			return;
		}
		const message = decode({type: bytes[4]!, payload: bytes.subarray(5)});
		const first = inSession && message.type !== 'warn';
		if (message.type === 'opened') {
			inSession = !session.prepare;
		} else if (first) {
			inSession = false;
		}
		if (narrow && message.type === 'hello') {
			bytes = encode({...message, caps: message.caps & ~Capability.wideSession});
		}
		const bent = bend(message, session, first) ?? {bytes: [bytes]};
		bent.bytes.forEach(write);
		if (bent.exit !== undefined) {
			ended = true;
			process.stdout.write(Buffer.alloc(0), () => process.exit(bent.exit));
		}
	}, () => {
		ended = true;
		process.stdout.end();
	});
	const decoder = new FrameDecoder();
	process.stdin.on('data', (chunk: Buffer) => {
		for (const frame of decoder.push(chunk)) {
			const message = decode(frame);
			if (message.type === 'open') {
				session = {role: message.role === Role.source ? 'source' : 'dest', start: message.start, end: message.end, srcSize: message.srcSize, prepare: openFlags(message.flags).prepare};
			}
			core.push(frame);
		}
	});
	process.stdin.on('end', () => core.end());
}
