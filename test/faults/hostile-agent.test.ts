// No peer is trusted with DST: a fake agent (fake-agent.ts) on the test sshd, as SOURCE (pull), as DEST (push)
// and in a relay, breaks the protocol on cue. Each run ends with its exit status and one line naming the host
// and the frame, in bounded time; DST holds only what it held or SRC's bytes, never past SRC's range.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {changeBlocks, makeImage, runCli} from '../helpers/remote-images.js';
import {loopDeviceProblem, withLoopDevice} from '../helpers/loop-device.js';
import {skip, type TestContext} from '../helpers/skip.js';
import {VERSION} from '../../source/version.js';
import {addFakeHost, type FakeHost} from './fake-host.js';

const test = suite('hostile agent');
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
/** Each run must end well within this (seconds): nothing waits on a peer that broke the rules. */
const WITHIN = 20;
let sshd: Sshd;
let fake: FakeHost;
let dir: string;
let src: string;
let srcBytes: Buffer;
const times: string[] = [];

test.before(async () => {
	sshd = await startSshd();
	fake = addFakeHost(sshd);
	dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rbs-hostile-'));
	src = join(dir, 'src.img');
	makeImage(src, SIZE);
	srcBytes = readFileSync(src);
});

test.after(async () => {
	if (process.env['RBLOCKSYNC_FAULT_TIMES']) {
		process.stdout.write(`\n${times.join('\n')}\n`);
	}
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

/** A DST of SRC's size: random bytes, SRC's own, or SRC with some blocks changed. */
function dst(name: string, content: 'random' | 'src' | 'changed' = 'random'): string {
	const path = join(dir, name);
	if (content === 'random') {
		writeFileSync(path, randomBytes(SIZE));
	} else {
		copyFileSync(src, path);
		if (content === 'changed') {
			changeBlocks(path, 0.01);
		}
	}
	return path;
}

/** Runs the CLI with the fake agent in `mode`; checks the status, the one line and the time. */
async function run(mode: string, args: readonly string[], status: number, line: string | RegExp): Promise<void> {
	fake.use(mode);
	const started = performance.now();
	const result = await runCli([...args, '-q'], sshd.env, {timeoutMs: WITHIN * 1000 + 5000});
	const seconds = (performance.now() - started) / 1000;
	times.push(`| ${mode} | ${args.map(a => a.replace(dir, '')).join(' ')} | ${String(result.status)} | ${result.stderr.trim()} | ${seconds.toFixed(2)} s |`);
	assert.is(result.status, status, result.stderr);
	assert.is(result.stderr.split('\n').filter(Boolean).length, 1, result.stderr);
	if (typeof line === 'string') {
		assert.is(result.stderr, `rblocksync: ${line}\n`);
	} else {
		assert.match(result.stderr, line);
	}
	assert.ok(seconds < WITHIN, `ended after ${seconds.toFixed(2)} s`);
}

/** Every 4 KiB block of DST is what it held or SRC's, and DST kept its size: nothing else was written. */
function onlyBeforeOrSrc(path: string, before: Buffer): void {
	const after = readFileSync(path);
	assert.is(after.length, before.length, `${path} changed size`);
	for (let at = 0; at < after.length; at += 4096) {
		const block = after.subarray(at, at + 4096);
		assert.ok(block.equals(before.subarray(at, at + 4096)) || block.equals(srcBytes.subarray(at, at + 4096)), `block at ${at} is neither`);
	}
}

const outside = (offset: number, length: number, start: number, end: number): string =>
	`ssh pvefake: protocol error: DATA at offset ${offset} length ${length} is outside this worker's range [${start}, ${end}); DST may be partially updated`;

// As SOURCE (pull): frames outside the range it was given.

test('should refuse DATA past SRC end onto a new file DST: its size stays SRC size, nothing written', async () => {
	const path = join(dir, 'new-past-end.img');
	await run('data-past-end', [`pvefake:${src}`, path, '--truncate', '-w', '1'], 2, outside(SIZE, 4096, 0, SIZE));
	assert.is(statSync(path).size, SIZE);
	assert.ok(readFileSync(path).every(byte => byte === 0));
});

test('should refuse DATA past SRC end onto a larger block device: the bytes past SRC size stay as they were', async (context: TestContext) => {
	const problem = await loopDeviceProblem();
	if (problem) {
		return skip(context, `no loop device: ${problem}`);
	}
	const backing = join(dir, 'device.img');
	writeFileSync(backing, Buffer.alloc(SIZE + 4 * MiB, 0x5a));
	const before = readFileSync(backing);
	await withLoopDevice(backing, device => run('data-past-end', [`pvefake:${src}`, device, '-w', '1'], 2, outside(SIZE, 4096, 0, SIZE)));
	assert.ok(readFileSync(backing).equals(before), 'the device was written');
});

test('should refuse DATA in another worker range (-w 2)', async () => {
	const path = dst('other-worker.img', 'src');
	const before = readFileSync(path);
	await run('data-outside-range', [`pvefake:${src}`, path, '-w', '2'], 2, outside(4 * MiB - 4096, 4096, 4 * MiB, SIZE));
	assert.ok(readFileSync(path).equals(before));
});

test('should refuse ZERO far past the end of a file DST', async () => {
	const path = dst('zero-far.img');
	const before = readFileSync(path);
	await run('zero-past-end', [`pvefake:${src}`, path, '-w', '1'], 2,
		`ssh pvefake: protocol error: ZERO at offset ${2 ** 40} length ${MiB} is outside this worker's range [0, ${SIZE}); DST may be partially updated`);
	assert.ok(readFileSync(path).equals(before));
});

// As SOURCE: chunk order, CHUNK_END, masks.

test('should refuse DATA for a chunk not in progress, and a CHUNK twice, writing nothing', async () => {
	for (const [mode, what] of [['data-unannounced', 'DATA at offset 0 length 4096 is not inside a chunk in progress'],
		['chunk-twice', `CHUNK_SUBS at offset 0 out of order: the next chunk is at offset ${MiB}`],
		['narrow:chunk-twice', `CHUNK at offset 0 out of order: the next chunk is at offset ${MiB}`],
		['chunk-subs-count', 'CHUNK_SUBS at offset 0 has 15 sub-chunk digests; that chunk has 16 sub-chunks']] as const) {
		const path = dst(`${mode.replace(':', '-')}.img`);
		const before = readFileSync(path);
		await run(mode, [`pvefake:${src}`, path, '-w', '1'], 2, `ssh pvefake: protocol error: ${what}; DST may be partially updated`);
		assert.ok(readFileSync(path).equals(before), mode);
	}
});

test('should refuse a second CHUNK_END, a missing one, and a WANT mask past the chunk', async () => {
	const cases = [
		['chunk-end-twice', 'new', /^rblocksync: ssh pvefake: protocol error: CHUNK_END at offset 0 for a chunk that is not in progress \(never announced, or already ended\); DST may be partially updated\n$/],
		['no-chunk-end', 'new', /^rblocksync: ssh pvefake: protocol error: (DATA|ZERO) at offset \d+ length \d+ comes before the CHUNK_END of the chunk at offset 0; DST may be partially updated\n$/],
		['narrow:want-mask', 'changed', /^rblocksync: ssh pvefake: protocol error: WANT at offset 0 has mask 0xffffffff; that chunk has 16 sub-chunks; DST may be partially updated\n$/],
	] as const;
	for (const [mode, kind, line] of cases) {
		const path = kind === 'new' ? join(dir, `${mode}.img`) : dst(`${mode.replace(':', '-')}.img`, kind);
		const before = kind === 'new' ? Buffer.alloc(SIZE) : readFileSync(path);
		await run(mode, [`pvefake:${src}`, path, '-w', '1', '--truncate'], 2, line);
		onlyBeforeOrSrc(path, before);
	}
});

// As SOURCE: bytes that are no frame, frames of no type or of the wrong direction, a cut frame, the handshake, an exit.

test('should end on garbage, unknown or misdirected frames, a truncated frame, or an agent that exits', async () => {
	const cases = [
		['garbage', 2, 'ssh pvefake: protocol error: frame of 4294967295 bytes exceeds the 16842752-byte limit; DST may be partially updated'],
		['unknown-type', 2, 'ssh pvefake: protocol error: unknown frame type 0x7f from SOURCE; DST may be partially updated'],
		['wrong-direction', 2, 'ssh pvefake: protocol error: unexpected CREDIT frame from SOURCE; DST may be partially updated'],
		['truncated', 2, 'ssh pvefake: protocol error: the stream ended inside a frame (100 bytes pending); DST may be partially updated'],
		['early-exit', 2, 'ssh pvefake: the agent exited with status 3 before the sync finished; DST may be partially updated'],
	] as const;
	for (const [mode, status, line] of cases) {
		const path = dst(`${mode}.img`);
		const before = readFileSync(path);
		await run(mode, [`pvefake:${src}`, path, '-w', '1'], status, line);
		assert.ok(readFileSync(path).equals(before), mode);
	}
});

test('should refuse an agent of another protocol with exit 1, creating nothing', async () => {
	const path = join(dir, 'protocol-2.img');
	await run('protocol-2', [`pvefake:${src}`, path, '--truncate'], 1,
		`ssh pvefake: the other side speaks protocol 2 (rblocksync ${VERSION}); this rblocksync ${VERSION} speaks protocol 1`);
	assert.not.ok(existsSync(path));
});

// As DEST (push): SOURCE checks what DEST asks; the relay checks DONE.

test('should refuse a DEST with wrong digest counts, a FULL outside its range, a credit flood, an early DONE', async () => {
	const cases = [
		['narrow:subs-count', 'random', 'SUBS at offset 0 has 3 sub-chunk digests; that chunk has 16 sub-chunks'],
		['blocks-count', 'changed', /BLOCKS at offset 0 has \d+ block digests; mask 0x[0-9a-f]+ covers \d+ blocks; DST may be partially updated\n$/],
		['narrow:blocks-count', 'changed', /BLOCKS at offset 0 has \d+ block digests; mask 0x[0-9a-f]+ covers \d+ blocks; DST may be partially updated\n$/],
		['blocks-mask', 'changed', /BLOCKS at offset 0 has mask 0x1[0-9a-f]{4}; that chunk has 16 sub-chunks; DST may be partially updated\n$/],
		['full-outside', 'random', `FULL at offset ${SIZE} is not a chunk of this worker's range [0, ${SIZE})`],
		['credit-flood', 'random', 'CREDIT of 4294967295 chunks, more than the window of 512 past the 0 chunks sent'],
		['narrow:credit-flood', 'random', 'CREDIT of 4294967295 chunks, more than the window of 32 past the 0 chunks sent'],
		['done-early', 'random', 'DONE before SOURCE_END'],
	] as const;
	for (const [mode, kind, what] of cases) {
		const path = dst(`push-${mode.replace(':', '-')}.img`, kind);
		await run(mode, [src, `pvefake:${path}`, '-w', '1'], 2,
			typeof what === 'string' ? `ssh pvefake: protocol error: ${what}; DST may be partially updated` : new RegExp(`^rblocksync: ssh pvefake: protocol error: ${what.source}`));
	}
});

// Relayed (remote to remote, both on the test sshd): the real agent on pve judges the fake one.

test('should name the fake host when a real agent refuses its frames in a relay', async () => {
	const path = join(dir, 'relay-dst.img');
	await run('data-past-end', [`pvefake:${src}`, `pve:${path}`, '--truncate', '-w', '1'], 2, outside(SIZE, 4096, 0, SIZE));
	assert.is(statSync(path).size, SIZE);
	assert.ok(readFileSync(path).every(byte => byte === 0));
	await run('wrong-direction', [`pvefake:${src}`, `pve:${path}`, '-w', '1'], 2,
		'ssh pvefake: protocol error: unexpected CREDIT frame from SOURCE; DST may be partially updated');
	const fakeDst = dst('relay-fake-dst.img');
	await run('narrow:subs-count', [`pve:${src}`, `pvefake:${fakeDst}`, '-w', '1'], 2,
		'ssh pvefake: protocol error: SUBS at offset 0 has 3 sub-chunk digests; that chunk has 16 sub-chunks; DST may be partially updated');
	// A wide relay: the real SOURCE on pve refuses the fake DEST's unasked BLOCKS.
	await run('blocks-mask', [`pve:${src}`, `pvefake:${dst('relay-fake-dst2.img', 'changed')}`, '-w', '1'], 2,
		/^rblocksync: ssh pvefake: protocol error: BLOCKS at offset 0 has mask 0x1[0-9a-f]{4}; that chunk has 16 sub-chunks; DST may be partially updated\n$/);
});

test.run();
