// Runs over many files: -r trees locally, pushed, pulled and relayed over the test sshd; several SRCs into DSTDIR/;
// --delete next to a symlink leading out of DSTDIR; one failing file among many; a file gone between listing and sync.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawn, spawnSync} from 'node:child_process';
import {chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {allocated, changeBlocks, jsonOutput, makeImage, runCli, sameContent} from '../helpers/remote-images.js';
import {CLI_PATH} from '../helpers/cli.js';
import {skip} from '../helpers/skip.js';

const test = suite('trees and several files');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

/** The regular files of every tree below. */
const FILES = ['disk-0.img', 'with space/é ü.img', 'vm-100/sub/deep/disk-1.img', 'empty.img', 'vm-100/tiny.bin'];

/** A SRC tree: sparse images (names with spaces and unicode, nested directories), an empty file, a symlink and a fifo. */
function makeTree(root: string): void {
	mkdirSync(join(root, 'with space'), {recursive: true});
	mkdirSync(join(root, 'vm-100/sub/deep'), {recursive: true});
	mkdirSync(join(root, 'empty-dir'), {recursive: true});
	makeImage(join(root, 'disk-0.img'), 8 * MiB + 4096);
	makeImage(join(root, 'with space/é ü.img'), 3 * MiB);
	makeImage(join(root, 'vm-100/sub/deep/disk-1.img'), 5 * MiB, {holeEvery: 3});
	writeFileSync(join(root, 'empty.img'), '');
	writeFileSync(join(root, 'vm-100/tiny.bin'), 'tiny');
	symlinkSync('/etc/passwd', join(root, 'passwd-link'));
	spawnSync('mkfifo', [join(root, 'vm-100/pipe')]);
}

function assertSameTree(src: string, dst: string): void {
	for (const file of FILES) {
		assert.ok(existsSync(join(dst, file)), `${file} missing in DST`);
		assert.ok(sameContent(join(src, file), join(dst, file)), `${file} differs`);
		assert.ok(allocated(join(dst, file)) <= allocated(join(src, file)) + 64 * 1024, `${file}: ${allocated(join(dst, file))} bytes allocated, SRC ${allocated(join(src, file))}`);
	}
	assert.ok(statSync(join(dst, 'empty-dir')).isDirectory(), 'an empty directory is made');
	assert.not.ok(existsSync(join(dst, 'passwd-link')), 'a symlink is not followed nor copied');
	assert.not.ok(existsSync(join(dst, 'vm-100/pipe')), 'a fifo is skipped');
}

type Files = Array<{path: string; ok: boolean; size: number; blocksChanged: number; unchanged?: boolean; error?: string}>;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-trees-'));
	makeTree(join(dir, 'src'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

for (const [name, from, to] of [
	['locally', (p: string) => p, (p: string) => p],
	['pushed', (p: string) => p, (p: string) => `pve:${p}`],
	['pulled', (p: string) => `pve:${p}`, (p: string) => p],
	['relayed', (p: string) => `pve:${p}`, (p: string) => `pve2:${p}`],
] as const) {
	test(`should sync a tree ${name}: every regular file at its path, holes kept, specials skipped with a warning; unchanged then costs nothing`, async () => {
		const src = join(dir, 'src');
		const dst = join(dir, `dst-${name}`);
		const first = await runCli(['-r', `${from(src)}/`, `${to(dst)}/`, '--json', '--stat'], sshd.env);
		assert.is(first.status, 0, first.stderr);
		assertSameTree(src, dst);
		assert.match(first.stderr, 'passwd-link: skipped: a symlink (not followed)');
		assert.match(first.stderr, 'vm-100/pipe: skipped: a fifo');
		const files = first.json?.['files'] as Files;
		assert.equal(files.map(file => file.path).sort(), [...FILES].sort());
		assert.ok(files.every(file => file.ok));
		const micro = (path: string): bigint => statSync(path, {bigint: true}).mtimeNs / 1000n;
		const off = micro(join(dst, 'disk-0.img')) - micro(join(src, 'disk-0.img'));
		assert.ok(off >= -1n && off <= 1n, `mtime follows SRC (within a microsecond: futimes takes a double): off by ${off} µs`);
		assert.is(statSync(join(dst, 'vm-100/tiny.bin')).mode & 0o777, statSync(join(src, 'vm-100/tiny.bin')).mode & 0o777);
		// One block changed in one file: only that file is compared again (the others are as the first run left them).
		await new Promise(resolve => setTimeout(resolve, 2100));
		changeBlocks(join(src, 'disk-0.img'), 0.001);
		const second = await runCli(['-r', `${from(src)}/`, `${to(dst)}/`, '--json'], sshd.env);
		assert.is(second.status, 0, second.stderr);
		assertSameTree(src, dst);
		const again = second.json?.['files'] as Files;
		assert.ok(again.find(file => file.path === 'disk-0.img')!.blocksChanged > 0);
		assert.ok(again.filter(file => file.path !== 'disk-0.img').every(file => file.unchanged === true || file.blocksChanged === 0));
	});
}

test('should put a SRCDIR without a trailing slash under its own name, and several SRCs (local and remote) into DSTDIR/', async () => {
	const src = join(dir, 'src');
	const named = join(dir, 'dst-named');
	const result = await runCli(['-r', `pve:${src}`, `${named}/`, '-q'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(join(src, 'disk-0.img'), join(named, 'src/disk-0.img')));
	const into = join(dir, 'dst-into');
	mkdirSync(into);
	const several = await runCli([join(src, 'disk-0.img'), `pve:${join(src, 'with space/é ü.img')}`, into, '--truncate', '--json'], sshd.env);
	assert.is(several.status, 0, several.stderr);
	assert.ok(sameContent(join(src, 'disk-0.img'), join(into, 'disk-0.img')));
	assert.ok(sameContent(join(src, 'with space/é ü.img'), join(into, 'é ü.img')));
	assert.equal((several.json?.['files'] as Files).map(file => file.path).sort(), ['disk-0.img', 'é ü.img']);
	// Without --truncate a DST file that does not exist is refused (exit 1), the others still synced.
	const missing = join(dir, 'dst-missing');
	mkdirSync(missing);
	writeFileSync(join(missing, 'empty.img'), '');
	const refused = await runCli([join(src, 'disk-0.img'), join(src, 'empty.img'), `${missing}/`, '--json'], sshd.env);
	assert.is(refused.status, 1, refused.stderr);
	assert.not.ok(existsSync(join(missing, 'disk-0.img')));
	assert.match(String(refused.json?.['error']), 'disk-0.img');
});

test('should --delete DST files SRC lacks, keeping a symlink out of DSTDIR, its target and excluded files', async () => {
	const src = join(dir, 'src');
	const dst = join(dir, 'dst-delete');
	const outside = join(dir, 'outside.img');
	writeFileSync(outside, 'precious');
	mkdirSync(join(dst, 'vm-100'), {recursive: true});
	writeFileSync(join(dst, 'gone.img'), 'old');
	writeFileSync(join(dst, 'vm-100/gone-too.img'), 'old');
	writeFileSync(join(dst, 'keep.tmp'), 'excluded');
	symlinkSync(outside, join(dst, 'link-out.img'));
	symlinkSync(dir, join(dst, 'dir-link'));
	const dry = await runCli(['-r', `${src}/`, `pve:${dst}/`, '--delete', '--exclude', '*.tmp', '--dry-run'], sshd.env);
	assert.is(dry.status, 0, dry.stderr);
	assert.match(dry.stderr, 'gone.img: would be deleted');
	assert.match(dry.stderr, 'vm-100/sub/deep/disk-1.img: would be created, 5.0 MiB');
	assert.ok(existsSync(join(dst, 'gone.img')), 'a dry run deletes nothing');
	assert.not.ok(existsSync(join(dst, 'disk-0.img')), 'a dry run writes nothing');
	const result = await runCli(['-r', `${src}/`, `pve:${dst}/`, '--delete', '--exclude', '*.tmp', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.not.ok(existsSync(join(dst, 'gone.img')));
	assert.not.ok(existsSync(join(dst, 'vm-100/gone-too.img')));
	assert.ok(lstatSync(join(dst, 'link-out.img')).isSymbolicLink(), 'the symlink survives');
	assert.ok(lstatSync(join(dst, 'dir-link')).isSymbolicLink());
	assert.is(readFileSync(outside, 'utf8'), 'precious', 'its target too');
	assert.is(readFileSync(join(dst, 'keep.tmp'), 'utf8'), 'excluded');
	assert.equal((result.json?.['deleted'] as string[]).sort(), ['gone.img', 'vm-100/gone-too.img']);
	assertSameTree(src, dst);
});

test('should refuse to write through a DST symlink: the file under it fails, the others are synced', async () => {
	const src = join(dir, 'src');
	const dst = join(dir, 'dst-through');
	const elsewhere = join(dir, 'elsewhere');
	mkdirSync(elsewhere);
	mkdirSync(dst);
	symlinkSync(elsewhere, join(dst, 'with space'));
	const result = await runCli(['-r', `${src}/`, `${dst}/`, '--json'], sshd.env);
	assert.is(result.status, 1, result.stderr);
	assert.not.ok(existsSync(join(elsewhere, 'é ü.img')), 'nothing written through the symlink');
	const files = result.json?.['files'] as Files;
	assert.not.ok(files.find(file => file.path === 'with space/é ü.img')!.ok);
	assert.ok(sameContent(join(src, 'disk-0.img'), join(dst, 'disk-0.img')));
});

test('should sync the others when one DST file cannot be written, exit with the worst status and name the file', async context => {
	if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) {
		return skip(context, 'needs root and setpriv to run as nobody');
	}
	const base = mkdtempSync(join(tmpdir(), 'rbs-trees-nobody-'));
	chmodSync(base, 0o755);
	const src = join(base, 'src');
	const dst = join(base, 'dst');
	mkdirSync(src);
	mkdirSync(dst);
	for (let index = 0; index < 6; index++) {
		makeImage(join(src, `disk-${index}.img`), MiB);
	}
	writeFileSync(join(dst, 'disk-3.img'), 'root owns this');
	chmodSync(join(dst, 'disk-3.img'), 0o444);
	for (const path of [src, dst, ...[0, 1, 2, 4, 5].map(index => join(src, `disk-${index}.img`)), join(src, 'disk-3.img')]) {
		chownSync(path, 65534, 65534);
	}
	try {
		const result = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI_PATH, '-r', `${src}/`, `${dst}/`, '--json'], {encoding: 'utf8', env: {...process.env, HOME: base}});
		assert.is(result.status, 1, result.stderr);
		const summary = jsonOutput(result.stdout)!;
		assert.match(String(summary['error']), 'disk-3.img');
		const files = summary['files'] as Files;
		assert.equal(files.filter(file => !file.ok).map(file => file.path), ['disk-3.img']);
		for (const index of [0, 1, 2, 4, 5]) {
			assert.ok(sameContent(join(src, `disk-${index}.img`), join(dst, `disk-${index}.img`)), `disk-${index}.img`);
		}
		assert.is(readFileSync(join(dst, 'disk-3.img'), 'utf8'), 'root owns this');
	} finally {
		rmSync(base, {recursive: true, force: true});
	}
});

test('should take a file that vanished between the listing and its turn as skipped, not failed', async () => {
	const src = join(dir, 'vanish-src');
	const dst = join(dir, 'vanish-dst');
	mkdirSync(src);
	makeImage(join(src, 'big.img'), 96 * MiB, {zeroEvery: 0, holeEvery: 0});
	writeFileSync(join(src, 'small.img'), 'going');
	const running = runCli(['-r', '-w', '1', `${src}/`, `pve:${dst}/`, '--json'], sshd.env, {timeoutMs: 120_000});
	// The biggest file goes first, alone (-w 1): once its DST exists, the listing is over and small.img still waits.
	for (let tries = 0; tries < 600 && !existsSync(join(dst, 'big.img')); tries++) {
		await new Promise(resolve => setTimeout(resolve, 50));
	}
	unlinkSync(join(src, 'small.img'));
	const result = await running;
	assert.is(result.status, 0, result.stderr);
	assert.ok(sameContent(join(src, 'big.img'), join(dst, 'big.img')));
	const files = result.json!['files'] as Array<{path: string; ok: boolean; skipped?: string}>;
	const small = files.find(file => file.path === 'small.img')!;
	assert.ok(small.ok);
	assert.match(String(small.skipped), 'vanished');
	assert.not.ok(existsSync(join(dst, 'small.img')));
});

test('should start the agents of a run over many files once: the first files\' side by side, reused by every file after', async () => {
	// pveextra's rblocksync: this build's, each agent start logged.
	const log = join(dir, 'agent-starts');
	rmSync(log, {force: true});
	const agent = join(sshd.extraBin, 'rblocksync');
	writeFileSync(agent, `#!/bin/sh\n[ "$1" = --agent ] && echo start >> '${log}'\nexec '${process.execPath}' '${CLI_PATH}' "$@"\n`);
	chmodSync(agent, 0o755);
	const src = join(dir, 'reuse-src');
	const dst = join(dir, 'reuse-dst');
	mkdirSync(join(src, 'sub'), {recursive: true});
	const names = ['a.img', 'b.img', 'c.img', 'sub/d.img', 'sub/e.img', 'sub/f.img', 'sub/g.img', 'h.img'];
	names.forEach((name, index) => makeImage(join(src, name), MiB + index * 4096));
	try {
		const result = await runCli(['-r', '-w', '2', `${src}/`, `pveextra:${dst}/`, '--json'], sshd.env, {timeoutMs: 120_000});
		assert.is(result.status, 0, result.stderr);
		for (const name of names) {
			assert.ok(sameContent(join(src, name), join(dst, name)), name);
		}
		// The tree agent, then two files at a time (-w 2) with a preparing agent and a worker each: 5, however many files.
		const starts = readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
		assert.ok(starts <= 5, `${starts} agents started for ${names.length} files`);
	} finally {
		rmSync(agent, {force: true});
	}
});

test('should refuse, in one line and before any change, an agent from before runs over many files (no LIST, FSOP or RESET)', async () => {
	// An installed rblocksync of this protocol whose HELLO lacks the tree capability (bit 8) and which, as such agents
	// did, ends with ERROR at any frame but OPEN: pveextra finds it first on PATH.
	const frames = join(dir, 'old-agent-frames');
	const script = [
		'const s = b => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), Buffer.from(b)]);',
		'const frame = (type, payload) => { const head = Buffer.alloc(5); head.writeUInt32BE(payload.length + 1); head[4] = type; return Buffer.concat([head, payload]); };',
		'let input = Buffer.alloc(0); let greeted = false;',
		'process.stdin.on("data", chunk => { input = Buffer.concat([input, chunk]);',
		'  while (input.length >= 5 && input.length >= 4 + input.readUInt32BE(0)) { const type = input[4]; input = input.subarray(4 + input.readUInt32BE(0));',
		'    if (!greeted && type === 1) { greeted = true; process.stdout.write(frame(1, Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 31]), s("0.0.9"), s("blake3,sha256")]))); }',
		`    else if (type !== 2) { require("fs").appendFileSync(${JSON.stringify(frames)}, type + "\\n"); process.stdout.write(frame(4, Buffer.concat([Buffer.from([3]), s("expected OPEN, got frame " + type)])), () => process.exit(1)); } } });`,
	].join(' ');
	const agent = join(sshd.extraBin, 'rblocksync');
	writeFileSync(agent, `#!/bin/sh\nif [ "$1" = --agent-protocol ]; then echo 1; exit 0; fi\nexec node -e '${script}'\n`);
	chmodSync(agent, 0o755);
	rmSync(frames, {force: true});
	const dst = join(dir, 'old-agent-dst');
	const line = 'rblocksync: ssh pveextra: the rblocksync there (0.0.9) is too old for runs over many files (no LIST, FSOP or RESET): upgrade it, or sync one file per run';
	try {
		for (const args of [['-r', `${join(dir, 'src')}/`, `pveextra:${dst}/`], [join(dir, 'src', 'disk-0.img'), join(dir, 'src', 'empty.img'), `pveextra:${dst}/`, '--truncate']]) {
			const result = await runCli([...args, '--json'], sshd.env, {timeoutMs: 60_000});
			assert.is(result.status, 1, result.stderr);
			assert.ok(result.stderr.split('\n').includes(line), result.stderr);
			assert.is(result.json?.['ok'], false);
			assert.not.ok(existsSync(dst), 'DST made');
		}
		// Refused from its HELLO: no LIST (7) or FSOP (10) was sent to it (a RESET, 12, goes with HELLO to an agent started for a file).
		const sent = existsSync(frames) ? readFileSync(frames, 'utf8').split('\n').filter(Boolean) : [];
		assert.equal(sent.filter(type => type !== '12'), [], sent.join(' '));
	} finally {
		rmSync(agent, {force: true});
	}
});

test('should --watch a local tree: a write is synced once quiet for the debounce, Ctrl-C ends with 130', async () => {
	const src = join(dir, 'watch-src');
	const dst = join(dir, 'watch-dst');
	mkdirSync(join(src, 'sub'), {recursive: true});
	makeImage(join(src, 'sub/disk.img'), 2 * MiB);
	const child = spawn(process.execPath, [CLI_PATH, '-r', '--watch', '--debounce', '0.5', `${src}/`, `${dst}/`], {env: sshd.env, stdio: ['ignore', 'pipe', 'pipe']});
	let stderr = '';
	child.stderr.on('data', (chunk: Buffer) => {
		stderr += chunk.toString();
	});
	const until = async (done: () => boolean, ms: number): Promise<boolean> => {
		for (const end = Date.now() + ms; Date.now() < end;) {
			if (done()) {
				return true;
			}
			await new Promise(resolve => setTimeout(resolve, 50));
		}
		return done();
	};
	assert.ok(await until(() => stderr.includes('watching'), 30_000), stderr);
	assert.ok(sameContent(join(src, 'sub/disk.img'), join(dst, 'sub/disk.img')));
	changeBlocks(join(src, 'sub/disk.img'), 0.01);
	writeFileSync(join(src, 'sub/new.bin'), 'new file');
	const written = Date.now();
	assert.ok(await until(() => existsSync(join(dst, 'sub/new.bin')) && sameContent(join(src, 'sub/disk.img'), join(dst, 'sub/disk.img')), 20_000), stderr);
	const took = Date.now() - written;
	assert.ok(took >= 400, `synced after ${took} ms: before the writes were quiet for the debounce`);
	assert.is(readFileSync(join(dst, 'sub/new.bin'), 'utf8'), 'new file');
	child.kill('SIGINT');
	const status = await new Promise<number | null>(resolve => child.on('close', resolve));
	assert.is(status, 130, stderr);
});

test('should know where fs.watch is recursive (not on Linux before Node 20)', async () => {
	const {recursiveWatchWorks} = await import('../../source/watch.js');
	assert.not.ok(recursiveWatchWorks('linux', '18.19.0'));
	assert.ok(recursiveWatchWorks('linux', '20.11.1'));
	assert.ok(recursiveWatchWorks('darwin', '18.19.0'));
});

test.run();
