// A wide session (doc/protocol.md: CHUNK_SUBS, BLOCKS unasked, a window of 512) runs only where both preparing agents'
// HELLO offered Capability.wideSession: an agent without the bit (an older rblocksync) gets a narrow session, and the
// driver never sends OPEN's session string to either side. Run through RemoteBackend over in-process agents.
import {randomBytes} from 'node:crypto';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import type {Frame} from '../../source/protocol/frame.js';
import type {Reporter} from '../../source/engine/progress.js';
import type {Link} from '../../source/remote/link.js';
import {MiB} from '../helpers/images.js';
import {memoryOpener} from '../helpers/memory-role.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = async <T>(module: string): Promise<T> => import(pathToFileURL(path.join(root, 'dist', module)).href) as Promise<T>;
const {runSync} = await dist<typeof import('../../source/engine/run-sync.js')>('engine/run-sync.js');
const {RemoteBackend} = await dist<typeof import('../../source/remote/remote-backend.js')>('remote/remote-backend.js');
const {InProcessLink} = await dist<typeof import('../../source/remote/link.js')>('remote/link.js');
const {UsageError} = await dist<typeof import('../../source/errors.js')>('errors.js');
const {MemoryImage} = await dist<typeof import('../../source/image/memory-image.js')>('image/memory-image.js');
const {Capability, decode, TYPE_CODE} = await dist<typeof import('../../source/protocol/messages.js')>('protocol/messages.js');

const test = suite('wide session negotiation');
const flags = {truncate: false, dryRun: false, copy: false, blockSize: 4096, workers: 2, cache: false};
const defaults = {};

type Seen = {fromAgent: Map<number, number>; sessions: Array<string | undefined>};

/** An in-process agent whose HELLO says it lacks `strip` (an older rblocksync), counting the frames it sends and OPEN's session string. */
function linkFor(opener: ReturnType<typeof memoryOpener>, strip: number, seen: Seen): Link {
	class Watched extends InProcessLink {
		protected override deliver(frames: readonly Frame[]): void {
			super.deliver(frames.map(frame => {
				seen.fromAgent.set(frame.type, (seen.fromAgent.get(frame.type) ?? 0) + 1);
				if (frame.type !== TYPE_CODE.hello) {
					return frame;
				}
				const payload = Buffer.from(frame.payload);
				payload.writeUInt32BE((payload.readUInt32BE(2) & ~strip) >>> 0, 2);
				return {type: frame.type, payload};
			}));
		}

		override send(bytes: Buffer): void {
			if (bytes[4] === TYPE_CODE.open) {
				const open = decode({type: bytes[4], payload: bytes.subarray(5, 4 + bytes.readUInt32BE(0))});
				seen.sessions.push(open.type === 'open' ? open.session : 'not an OPEN');
			}
			super.send(bytes);
		}
	}
	return new Watched(opener);
}

async function run(stripSource: number, stripDest: number): Promise<{seen: {source: Seen; dest: Seen}; same: boolean; changed: number}> {
	const src = randomBytes(24 * MiB);
	const dst = Buffer.from(src);
	// One block in 100 changed.
	let changed = 0;
	for (let block = 7; block < dst.length / 4096; block += 100) {
		dst[block * 4096 + 17]! ^= 0x55;
		changed += 1;
	}
	const images = new Map([['src', MemoryImage.from('src', src)], ['dst', MemoryImage.from('dst', dst)]]);
	const opener = memoryOpener(images, UsageError);
	const seen = {source: {fromAgent: new Map(), sessions: []} as Seen, dest: {fromAgent: new Map(), sessions: []} as Seen};
	const backend = new RemoteBackend({
		...defaults, ...flags, cacheDir: '/nonexistent', compress: {mode: 'off', level: 0}, force: false, port: undefined, identity: undefined, acceptNewHostKey: false,
		trace: false, localThreads: true, uploadAgent: true, keepaliveMs: 15_000, hash: 'blake3',
		src: {kind: 'local', path: 'src'}, dst: {kind: 'local', path: 'dst'}, srcName: 'src', dstName: 'dst',
	}, (endpoint): Link => endpoint.path === 'src' ? linkFor(opener, stripSource, seen.source) : linkFor(opener, stripDest, seen.dest));
	const reporter: Reporter = {start() {}, progress() {}, warn() {}, finish() {}};
	await runSync(backend, {...flags, verify: false, hash: 'blake3'}, reporter, new AbortController().signal);
	return {seen, same: images.get('dst')!.content.equals(src), changed};
}

test('should run wide when both agents offer it: CHUNK_SUBS and BLOCKS unasked, no CHUNK, SUBS or WANT', async () => {
	const {seen, same} = await run(0, 0);
	assert.ok(same, 'DST differs from SRC');
	// The preparing agents' OPEN has no session string, the workers' says wide.
	assert.ok(seen.source.sessions.includes('wide') && seen.dest.sessions.includes('wide'), JSON.stringify(seen.source.sessions));
	assert.is(seen.source.sessions[0], undefined);
	assert.ok((seen.source.fromAgent.get(TYPE_CODE.chunkSubs) ?? 0) >= 24, JSON.stringify([...seen.source.fromAgent, ...seen.dest.fromAgent]));
	assert.is(seen.source.fromAgent.get(TYPE_CODE.chunk), undefined);
	assert.is(seen.source.fromAgent.get(TYPE_CODE.want), undefined);
	assert.is(seen.dest.fromAgent.get(TYPE_CODE.subs), undefined);
	assert.ok((seen.dest.fromAgent.get(TYPE_CODE.blocks) ?? 0) >= 24);
});

for (const side of ['DEST', 'SOURCE'] as const) {
	test(`should keep the narrow session when ${side}'s agent lacks the bit (an older rblocksync), and still sync`, async () => {
		const strip = Capability.wideSession;
		const {seen, same} = await run(side === 'SOURCE' ? strip : 0, side === 'DEST' ? strip : 0);
		assert.ok(same, 'DST differs from SRC');
		// Neither side was told to run wide: the older one would refuse OPEN's extra string, the newer one would send CHUNK_SUBS.
		assert.ok([...seen.source.sessions, ...seen.dest.sessions].every(session => session === undefined), JSON.stringify(seen));
		assert.is(seen.source.fromAgent.get(TYPE_CODE.chunkSubs), undefined);
		assert.ok((seen.source.fromAgent.get(TYPE_CODE.chunk) ?? 0) >= 24);
		assert.ok((seen.source.fromAgent.get(TYPE_CODE.want) ?? 0) >= 24);
		assert.ok((seen.dest.fromAgent.get(TYPE_CODE.subs) ?? 0) >= 24);
	});
}

test.run();
