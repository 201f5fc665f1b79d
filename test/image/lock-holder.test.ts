import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawn, spawnSync} from 'node:child_process';
import {closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {holderToken, openOnHolder, parseHolder} from '../../source/image/lock-holder.js';
import {nativeOps} from '../../source/native/native.js';

const test = suite('lock holder');
const dir = mkdtempSync(join(tmpdir(), 'rbs-lock-holder-'));
const module = fileURLToPath(new URL('../../source/image/lock-holder.ts', import.meta.url));
const warn = (): void => {};

test.after(() => rmSync(dir, {recursive: true, force: true}));

function image(name: string): string {
	const path = join(dir, name);
	writeFileSync(path, Buffer.alloc(8192, 1));
	return path;
}

/** Whether another process (util-linux flock) can take an exclusive lock on `path` right now. */
function lockable(path: string): boolean {
	return spawnSync('flock', ['-n', '-x', path, 'true']).status === 0;
}

/** A process that has ended: its pid names nobody (until reused). */
async function deadPid(): Promise<number> {
	const child = spawn('true');
	await new Promise(resolve => child.on('exit', resolve));
	return child.pid!;
}

test('should name this process and an fd, and refuse a token from another host', () => {
	const token = holderToken('c3d6a1e0-7f2b', 7);
	assert.is(token, `c3d6a1e0-7f2b:${process.pid}:7`);
	assert.equal(parseHolder(token, 'c3d6a1e0-7f2b'), {bootId: 'c3d6a1e0-7f2b', pid: process.pid, fd: 7});
	assert.throws(() => parseHolder(token, 'ffff'), /the agent holding DST's lock \(c3d6a1e0-7f2b:\d+:7\) is not on this host/);
	assert.throws(() => parseHolder('x', undefined), /is not on this host/);
});

test('should keep the holder\'s lock while a worker writes through its description, after the holder closed it', () => {
	const native = nativeOps();
	assert.ok(native, 'the native helper is needed');
	const path = image('shared.img');
	const held = openSync(path, 'r+');
	native.lock(held, true);
	const worker = openOnHolder(path, 'file', 8192, {bootId: '', pid: process.pid, fd: held}, warn);
	closeSync(held);
	assert.not.ok(lockable(path), 'the lock ended with the holder\'s fd');
	worker.writable.write(Buffer.alloc(4096, 2), 0, 4096, 4096);
	worker.image.close();
	assert.ok(lockable(path));
	assert.ok(readFileSync(path).subarray(4096).equals(Buffer.alloc(4096, 2)));
});

test('should fail a worker whose holder is gone, or whose fd is not DST any more', async () => {
	const path = image('gone.img');
	const pid = await deadPid();
	assert.throws(() => openOnHolder(path, 'file', 8192, {bootId: '', pid, fd: 3}, warn), new RegExp(`^the agent holding DST's lock \\(pid ${pid}\\) ended$`));
	const other = openSync(image('other.img'), 'r+');
	try {
		assert.throws(() => openOnHolder(path, 'file', 8192, {bootId: '', pid: process.pid, fd: other}, warn), /the agent holding DST's lock \(pid \d+\) ended/);
	} finally {
		closeSync(other);
	}
});

test('should, where the description cannot be shared, refuse every write once the holder has ended', () => {
	// Without the native helper (as where pidfd_getfd is refused) the worker opens DST itself and checks the holder.
	const path = image('fallback.img');
	const script = `
		import {spawn} from 'node:child_process';
		const {openOnHolder} = await import(${JSON.stringify(module)});
		const holder = spawn('sleep', ['30']);
		const worker = openOnHolder(${JSON.stringify(path)}, 'file', 8192, {bootId: '', pid: holder.pid, fd: 0}, () => {});
		worker.writable.write(Buffer.alloc(4096, 3), 0, 4096, 0);
		holder.kill('SIGKILL');
		await new Promise(resolve => holder.on('exit', resolve));
		try {
			worker.writable.write(Buffer.alloc(4096, 4), 0, 4096, 4096);
			console.log('wrote');
		} catch (error) {
			console.log(error.message.replace(/\\d+/, 'N'));
		}`;
	const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {env: {...process.env, RBLOCKSYNC_NO_NATIVE: '1'}, encoding: 'utf8'});
	assert.is(result.stdout, 'the agent holding DST\'s lock (pid N) ended\n', result.stderr);
	const bytes = readFileSync(path);
	assert.ok(bytes.subarray(0, 4096).equals(Buffer.alloc(4096, 3)));
	assert.ok(bytes.subarray(4096).equals(Buffer.alloc(4096, 1)));
});

test.run();
