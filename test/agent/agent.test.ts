import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {Duplex} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {AgentCore} from '../../source/agent/agent-core.js';
import {FrameDecoder} from '../../source/protocol/frame.js';
import {decode, encode, type Message, OpenFlag, PROTOCOL_VERSION, Role} from '../../source/protocol/messages.js';
import {InProcessLink, type Link, StreamLink} from '../../source/remote/link.js';
import {openLink, relaySession} from '../../source/remote/session.js';
import {VERSION} from '../../source/version.js';

const test = suite('agent');
const dir = mkdtempSync(join(tmpdir(), 'rbs-agent-'));
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

function core(): {core: AgentCore; replies: Message[]; finished: boolean[]} {
	const replies: Message[] = [];
	const finished: boolean[] = [];
	const decoder = new FrameDecoder();
	const agent = new AgentCore(bytes => decoder.push(bytes).forEach(f => replies.push(decode(f))), ok => finished.push(ok));
	return {core: agent, replies, finished};
}

function frame(message: Message) {
	return new FrameDecoder().push(encode(message))[0]!;
}

test('should refuse another protocol version, naming both versions', () => {
	const {core: agent, replies, finished} = core();
	agent.push(frame({type: 'hello', protocol: PROTOCOL_VERSION + 1, caps: 0, program: '9.9.9', hashes: 'blake3'}));
	assert.equal(replies, [{type: 'error', kind: 1, message: `the other side speaks protocol ${PROTOCOL_VERSION + 1} (rblocksync 9.9.9); this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}`}]);
	assert.equal(finished, [false]);
});

test('should answer HELLO, then refuse a missing SRC as a precondition error', async () => {
	const {core: agent, replies, finished} = core();
	agent.push(frame({type: 'hello', protocol: PROTOCOL_VERSION, caps: 0, program: VERSION, hashes: 'blake3'}));
	agent.push(frame({type: 'open', role: Role.source, flags: 0, blockSize: 4096, compress: 0, srcSize: 0, start: 0, end: 0, hash: 'blake3', path: join(dir, 'missing'), srcIdentity: ''}));
	await new Promise(resolve => setTimeout(resolve, 50));
	assert.is(replies[0]?.type, 'hello');
	assert.equal(replies[1], {type: 'error', kind: 1, message: `SRC ${join(dir, 'missing')}: no such file or directory`});
	assert.equal(finished, [false]);
});

test('should refuse garbage before HELLO without crashing', () => {
	const {core: agent, replies, finished} = core();
	agent.push({type: 0x7f, payload: Buffer.alloc(3)});
	assert.is(replies[0]?.type, 'error');
	assert.equal(finished, [false]);
});

test('should report another protocol version on the driver side as a usage error', async () => {
	const fake: Link = {
		label: 'pve', remote: true, bytesIn: 0, bytesOut: 0, greeted: undefined, ended: false, endReason: undefined,
		send() {
			setImmediate(() => this.onFrame(new FrameDecoder().push(encode({type: 'hello', protocol: 99, caps: 0, program: '7.0.0', hashes: ''}))[0]!));
		},
		onFrame() {},
		onClose() {},
		close() {},
	};
	const open: Message = {type: 'open', role: Role.dest, flags: 0, blockSize: 4096, compress: 0, srcSize: 1, start: 0, end: 1, hash: 'blake3', path: '/x', srcIdentity: ''};
	try {
		await openLink(fake, open, () => {});
		assert.unreachable();
	} catch (error) {
		assert.is((error as Error).message, `ssh pve: the other side speaks protocol 99 (rblocksync 7.0.0); this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}`);
		assert.is((error as {exitCode?: number}).exitCode, 1);
	}
});

test('should sync through a child-process agent (dist/cli.js --agent) as DEST and an in-process SOURCE', async () => {
	const src = join(dir, 'src.img');
	const dst = join(dir, 'dst.img');
	const content = randomBytes(3 * 1024 * 1024 + 5);
	content.fill(0, 100_000, 900_000);
	writeFileSync(src, content);
	writeFileSync(dst, randomBytes(content.length));
	const child = spawn(process.execPath, [cli, '--agent'], {stdio: ['pipe', 'pipe', 'inherit']});
	const remote = new StreamLink('child', Duplex.from({readable: child.stdout, writable: child.stdin}));
	const local = new InProcessLink();
	const base = {blockSize: 4096, compress: 0, srcSize: content.length, start: 0, end: content.length, hash: 'blake3', srcIdentity: ''};
	const [s, d] = await Promise.all([
		openLink(local, {type: 'open', role: Role.source, flags: 0, ...base, path: src}, () => {}),
		openLink(remote, {type: 'open', role: Role.dest, flags: OpenFlag.force, ...base, path: dst}, () => {}),
	]);
	const counters = await relaySession(local, remote, {source: s.held, dest: d.held}, {stats() {}, warn() {}}, () => new Error('aborted'));
	const code = await new Promise(resolve => child.once('exit', resolve));
	assert.is(code, 0);
	assert.ok(readFileSync(dst).equals(content));
	assert.is(counters.bytesScanned, content.length);
	assert.ok(counters.blocksPunched > 0);
});

test('should answer a second prepare OPEN for SRC with its OPENED while SRC is unchanged, and an I/O ERROR naming it once written', async () => {
	const src = join(dir, 'checked.img');
	writeFileSync(src, randomBytes(65_536));
	const {core: agent, replies, finished} = core();
	const settle = async (): Promise<unknown> => new Promise(resolve => setTimeout(resolve, 50));
	const open: Message = {type: 'open', role: Role.source, flags: OpenFlag.prepare, blockSize: 4096, compress: 0, srcSize: 0, start: 0, end: 0, hash: 'blake3', path: src, srcIdentity: ''};
	agent.push(frame({type: 'hello', protocol: PROTOCOL_VERSION, caps: 0, program: VERSION, hashes: 'blake3'}));
	agent.push(frame(open));
	await settle();
	agent.push(frame(open));
	await settle();
	assert.is(replies[1]?.type, 'opened');
	assert.equal(replies[2], replies[1]);
	writeFileSync(src, randomBytes(65_536)); // Same size, same inode: only mtime and ctime move.
	agent.push(frame(open));
	await settle();
	assert.equal(replies[3], {type: 'error', kind: 2, message: `${src}: SRC changed during the sync; DST is not a consistent copy: sync from a snapshot, or run again`});
	assert.equal(finished, [false]);
});

test.after(() => rmSync(dir, {recursive: true, force: true}));

test.run();
