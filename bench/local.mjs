// Times rblocksync, rsync --inplace --no-whole-file and cp --sparse=always on the same image pair,
// for a DST that is unchanged and one with 1% of its blocks changed, and prints ratios to rsync.
// Env: BENCH_SIZE_MIB (default 2048), BENCH_DIR (default a temp dir), BENCH_COLD=1 drops the page
// cache before every timed run (root only), BENCH_BASE=DIR adds another checkout's build. Images: random
// data, 25% zero blocks, 10% holes.
import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {makeImagePair} from './images.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 2048);
const cold = process.env.BENCH_COLD === '1';
const dir = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-'));
const BLOCK = 4096;
const size = sizeMiB * 1024 * 1024;
const src = path.join(dir, 'src.img');
const changed = path.join(dir, 'changed.img');
const dst = path.join(dir, 'dst.img');


function dropCaches() {
	if (cold) {
		execFileSync('sync');
		fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
	}
}

function time(command, args) {
	dropCaches();
	const start = process.hrtime.bigint();
	const result = spawnSync(command, args, {stdio: ['ignore', 'pipe', 'pipe']});
	const seconds = Number(process.hrtime.bigint() - start) / 1e9;
	if (result.status !== 0) {
		throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
	}
	return seconds;
}

function sameBytes(a, b) {
	return spawnSync('cmp', ['-s', a, b]).status === 0;
}

const tools = {
	rblocksync: () => time(process.execPath, [path.join(root, 'dist/cli.js'), '-q', src, dst]),
	rsync: () => time('rsync', ['--inplace', '--no-whole-file', src, dst]),
	'cp --sparse=always': () => time('cp', ['--sparse=always', src, dst]),
};
// BENCH_BASE=/path/to/other/checkout: also time that build's rblocksync (before/after a change, same run).
if (process.env.BENCH_BASE) {
	tools['rblocksync (base)'] = () => time(process.execPath, [path.join(process.env.BENCH_BASE, 'dist/cli.js'), '-q', src, dst]);
}

makeImagePair(src, changed, size, BLOCK);
// Warm-up so every tool meets the same page cache (unless BENCH_COLD).
const readBoth = time('sh', ['-c', `cat '${src}' '${changed}' > /dev/null`]);
const results = [];
for (const [label, base] of [['no change', src], ['1% changed', changed]]) {
	for (const [tool, runTool] of Object.entries(tools)) {
		execFileSync('cp', ['--sparse=always', base, dst]);
		execFileSync('sync'); // the copy's writeback must not land inside the next timing
		const seconds = runTool();
		if (!sameBytes(src, dst)) {
			throw new Error(`${tool} (${label}) left DST different from SRC`);
		}
		const allocated = fs.statSync(dst).blocks * 512;
		results.push({label, tool, seconds, allocated});
	}
}
console.log(`\nimage ${sizeMiB} MiB, ${cold ? 'cold' : 'warm'} page cache, ${os.cpus().length} CPUs; reading both images with cat: ${readBoth.toFixed(2)} s`);
console.log('case         tool                 seconds  vs rsync  DST allocated');
for (const r of results) {
	const rsync = results.find(x => x.label === r.label && x.tool === 'rsync');
	const ratio = rsync ? rsync.seconds / r.seconds : Number.NaN;
	console.log(`${r.label.padEnd(12)} ${r.tool.padEnd(20)} ${r.seconds.toFixed(2).padStart(7)}  ${`${ratio.toFixed(1)}x`.padStart(8)}  ${(r.allocated / 1024 / 1024).toFixed(0)} MiB`);
}
console.log('(vs rsync: how many times faster than rsync in the same case)');
if (!process.env.BENCH_DIR) {
	fs.rmSync(dir, {recursive: true, force: true});
}
