// Pushes a tree of BENCH_FILES sparse images (default 200, sizes from 1 MiB to BENCH_MAX_MIB, default 256, spread
// geometrically; BENCH_DATA of each, default 5%, random data in 64 KiB extents, the rest holes) over a private sshd on
// 127.0.0.1 (test/helpers/sshd.ts), after 1% of the files changed (16 random blocks each): `rblocksync -r` vs
// `rsync -a --inplace --no-whole-file` vs a bash loop of one `rblocksync SRC DST --truncate` per file. Each tool keeps
// its own DST tree, first filled by that tool itself (so each starts from its own previous run: rsync's mtimes,
// rblocksync's digest caches). BENCH_REPEAT rounds (default 1; a new change each round, the tools in alternating
// order, `sync` after each run), medians; every DST is compared with SRC (cmp) and the changed files' allocation checked.
// BENCH_CLI: the cli.js to time (default this checkout's dist/cli.js).
import {execFileSync, spawnSync} from 'node:child_process';
import {randomFillSync} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {startSshd} from '../test/helpers/sshd.js';
import {prng} from './images.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = process.env['BENCH_CLI'] ?? path.join(root, 'dist/cli.js');
const count = Number(process.env['BENCH_FILES'] ?? 200);
const maxMiB = Number(process.env['BENCH_MAX_MIB'] ?? 256);
const dataShare = Number(process.env['BENCH_DATA'] ?? 0.05);
const repeat = Number(process.env['BENCH_REPEAT'] ?? 1);
const dir = process.env['BENCH_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-tree-'));
const MiB = 1024 * 1024;
const BLOCK = 4096;
const src = path.join(dir, 'src');
const dsts = {tree: path.join(dir, 'dst-tree'), rsync: path.join(dir, 'dst-rsync'), loop: path.join(dir, 'dst-loop')};

/** The files: vm-NNN/disk-K.img in a few directories, sizes from 1 MiB to maxMiB. */
function makeTree(): string[] {
	fs.rmSync(src, {recursive: true, force: true});
	const names: string[] = [];
	const random = prng(7);
	const extent = Buffer.alloc(64 * 1024);
	for (let index = 0; index < count; index++) {
		const mib = Math.max(1, Math.round(maxMiB ** (index / Math.max(1, count - 1))));
		const size = mib * MiB;
		const name = `vm-${String(100 + Math.floor(index / 4))}/disk-${index % 4}.img`;
		fs.mkdirSync(path.join(src, path.dirname(name)), {recursive: true});
		const fd = fs.openSync(path.join(src, name), 'w');
		fs.ftruncateSync(fd, size);
		const extents = Math.max(1, Math.round((size * dataShare) / extent.length));
		for (let e = 0; e < extents; e++) {
			randomFillSync(extent);
			fs.writeSync(fd, extent, 0, extent.length, Math.floor(random() * (size / extent.length)) * extent.length);
		}
		fs.closeSync(fd);
		names.push(name);
	}
	return names;
}

/** 1% of the files (at least one), spread over the sizes: 16 random blocks each rewritten. */
function change(names: readonly string[], round: number): string[] {
	const random = prng(100 + round);
	const changed = Math.max(1, Math.round(names.length / 100));
	const picked: string[] = [];
	for (let k = 0; k < changed; k++) {
		const name = names[Math.floor(((k + 0.5) * names.length) / changed)]!;
		const fd = fs.openSync(path.join(src, name), 'r+');
		const blocks = fs.fstatSync(fd).size / BLOCK;
		const block = Buffer.alloc(BLOCK);
		for (let b = 0; b < 16; b++) {
			randomFillSync(block);
			fs.writeSync(fd, block, 0, BLOCK, Math.floor(random() * blocks) * BLOCK);
		}
		fs.closeSync(fd);
		picked.push(name);
	}
	return picked;
}

const sshd = await startSshd();
const env = {...sshd.env, RBLOCKSYNC_REMOTE_AGENT: 'upload'};
const ssh = ['ssh', '-F', path.join(sshd.home, '.ssh/config'), '-i', path.join(sshd.home, '.ssh/id_installed'), '-o', `UserKnownHostsFile=${path.join(sshd.home, '.ssh/known_hosts')}`, '-o', 'BatchMode=yes'].join(' ');

function timed(command: string, args: string[]): number {
	const start = process.hrtime.bigint();
	const result = spawnSync(command, args, {env, encoding: 'utf8', maxBuffer: 1 << 28});
	const seconds = Number(process.hrtime.bigint() - start) / 1e9;
	if (result.status !== 0) {
		throw new Error(`${command} ${args.slice(0, 6).join(' ')} ... failed (${String(result.status)}): ${result.stderr.slice(-2000)}`);
	}
	execFileSync('sync');
	return seconds;
}

const tools: Record<keyof typeof dsts, () => number> = {
	tree: () => timed(process.execPath, [cli, '-q', '-r', `${src}/`, `pve:${dsts.tree}/`]),
	rsync: () => timed('rsync', ['-a', '--inplace', '--no-whole-file', '--rsync-path=/usr/bin/rsync', '-e', ssh, `${src}/`, `pve:${dsts.rsync}/`]),
	loop: () => timed('bash', ['-c', `cd '${src}' && find . -type f | sort | while IFS= read -r f; do mkdir -p "${dsts.loop}/$(dirname "$f")" && ${process.execPath} ${cli} -q "$f" "pve:${dsts.loop}/$f" --truncate || exit 1; done`]),
};

function check(names: readonly string[], changed: readonly string[]): void {
	for (const [tool, dst] of Object.entries(dsts)) {
		for (const name of names) {
			if (spawnSync('cmp', ['-s', path.join(src, name), path.join(dst, name)]).status !== 0) {
				throw new Error(`${tool}: ${name} differs from SRC`);
			}
		}
		for (const name of changed) {
			const allocated = fs.statSync(path.join(dst, name)).blocks * 512;
			const srcAllocated = fs.statSync(path.join(src, name)).blocks * 512;
			if (tool === 'rsync') {
				// rsync's first copy and --inplace write holes as data (it has no --sparse with --inplace before 3.1.3's mode): noted, not checked.
				continue;
			}
			if (allocated > srcAllocated + 1024 * 1024) {
				throw new Error(`${tool}: ${name} lost its holes (${allocated} bytes allocated, SRC ${srcAllocated})`);
			}
		}
	}
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
try {
	console.log(`making ${count} files (1 MiB to ${maxMiB} MiB, ${dataShare * 100}% data) in ${src} ...`);
	const names = makeTree();
	// Images are not synced the instant they are written: a SRC changed within 2 s of its listing is not recorded (tree/record.ts).
	await new Promise(resolve => setTimeout(resolve, 3000));
	const apparent = names.reduce((sum, name) => sum + fs.statSync(path.join(src, name)).size, 0);
	console.log(`${names.length} files, ${(apparent / 1024 ** 3).toFixed(1)} GiB apparent; first copies (untimed) ...`);
	for (const dst of Object.values(dsts)) {
		fs.rmSync(dst, {recursive: true, force: true});
	}
	// BENCH_FIRST=cp: rsync's and the loop's trees are first filled by `cp -a --sparse=always` (same sizes and mtimes as
	// their own first copy; the loop's files then lack a digest cache, so its timed run also reads DST's data).
	const copyFirst = process.env['BENCH_FIRST'] === 'cp';
	const firsts = Object.fromEntries(Object.entries(tools).map(([tool, runTool]) => [tool, copyFirst && tool !== 'tree'
		? timed('cp', ['-a', '--sparse=always', `${src}/.`, dsts[tool as keyof typeof dsts]])
		: runTool()]));
	console.log(`first copies: ${Object.entries(firsts).map(([tool, s]) => `${tool} ${s.toFixed(1)} s`).join(', ')}`);
	const times: Record<string, number[]> = {tree: [], rsync: [], loop: []};
	for (let round = 0; round < repeat; round++) {
		const changed = change(names, round);
		const order = (Object.keys(tools) as Array<keyof typeof tools>);
		for (const tool of round % 2 === 0 ? order : [...order].reverse()) {
			const seconds = tools[tool]();
			times[tool]!.push(seconds);
			console.log(`round ${round + 1}: ${tool} ${seconds.toFixed(2)} s`);
		}
		check(names, changed);
	}
	const tree = median(times['tree']!);
	const rsync = median(times['rsync']!);
	const loop = median(times['loop']!);
	console.log(`\n${count} files, 1% changed, push over SSH (median of ${repeat}):`);
	console.log(`  rblocksync -r      ${tree.toFixed(2)} s`);
	console.log(`  rsync -a --inplace ${rsync.toFixed(2)} s   (rblocksync -r: ${(rsync / tree).toFixed(2)}x faster)`);
	console.log(`  single-file loop   ${loop.toFixed(2)} s   (rblocksync -r: ${(tree / loop).toFixed(3)} of it)`);
} finally {
	await sshd.stop();
	if (!process.env['BENCH_DIR']) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}
