// DEST's digest cache: a repeat sync with 1% of 4 KiB blocks changed, without the cache (DST read in full) and with it
// (DST not read), against rsync, over SSH to a private sshd on loopback (push and pull), and locally (no cache there
// yet: a local run compares bytes). Also an unchanged pair with the cache. Env: BENCH_SIZE_MIB (default 1024), BENCH_DIR,
// BENCH_COLD=1 drops the page cache before every timed run (root only): what reading DST really costs.
// Each timed case starts from the same DST bytes; for "cache" the cache was built by a sync onto that very DST first.
import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {makeImagePair} from './images.mjs';
import {startSshd} from '../test/helpers/sshd.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const sizeMiB = Number(process.env['BENCH_SIZE_MIB'] ?? 1024);
const dir = process.env['BENCH_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-cache-'));
const size = sizeMiB * 1024 * 1024;
const src = path.join(dir, 'src.img');
const changed = path.join(dir, 'changed.img');
const dst = path.join(dir, 'dst.img');

const sshd = await startSshd();
const ssh = ['ssh', '-F', path.join(sshd.home, '.ssh/config'), '-i', path.join(sshd.home, '.ssh/id_installed'), '-o', `UserKnownHostsFile=${path.join(sshd.home, '.ssh/known_hosts')}`, '-o', 'BatchMode=yes'];
const env = {...sshd.env, RBLOCKSYNC_REMOTE_AGENT: 'upload'};

type Result = {label: string; tool: string; seconds: number; wire: number; cache: string};

const cold = process.env['BENCH_COLD'] === '1';

function timed(command: string, args: string[]): {seconds: number; stdout: string} {
	if (cold) {
		execFileSync('sync');
		fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
	}
	const start = process.hrtime.bigint();
	const result = spawnSync(command, args, {env, encoding: 'utf8', maxBuffer: 1 << 26});
	const seconds = Number(process.hrtime.bigint() - start) / 1e9;
	if (result.status !== 0) {
		throw new Error(`${command} ${args.join(' ')} failed (${String(result.status)}): ${result.stderr}`);
	}
	return {seconds, stdout: result.stdout};
}

function rblocksync(args: string[]): {seconds: number; wire: number; cache: string} {
	const {seconds, stdout} = timed(process.execPath, [path.join(root, 'dist/cli.js'), '--json', ...args]);
	const summary = JSON.parse(stdout) as {wireBytesSent: number; wireBytesReceived: number; cache?: string};
	return {seconds, wire: summary.wireBytesSent + summary.wireBytesReceived, cache: summary.cache ?? '-'};
}

function rsync(from: string, to: string): {seconds: number; wire: number; cache: string} {
	const {seconds, stdout} = timed('rsync', ['--inplace', '--no-whole-file', '--stats', '--rsync-path=/usr/bin/rsync', '-e', ssh.join(' '), from, to]);
	const sent = Number(/Total bytes sent: ([\d,]+)/.exec(stdout)?.[1]?.replace(/,/g, '') ?? Number.NaN);
	const received = Number(/Total bytes received: ([\d,]+)/.exec(stdout)?.[1]?.replace(/,/g, '') ?? Number.NaN);
	return {seconds, wire: sent + received, cache: '-'};
}

/** DST as `base` holds it, written in place (same inode), its page cache warm as SRC's. */
function reset(base: string): void {
	execFileSync('cp', ['--sparse=always', base, dst]);
	execFileSync('sync');
	execFileSync('sh', ['-c', `cat '${dst}' > /dev/null`]);
}

const results: Result[] = [];
try {
	makeImagePair(src, changed, size, 4096);
	execFileSync('sh', ['-c', `cat '${src}' '${changed}' > /dev/null`]);
	rblocksync(['-q', src, `pve:${dst}`, '--truncate', '--no-cache']); // the agent's upload, out of the timings
	const directions: Array<[string, (extra: string[], from?: string) => ReturnType<typeof rblocksync>, () => ReturnType<typeof rsync>]> = [
		['push', (extra, from = src) => rblocksync([...extra, from, `pve:${dst}`]), () => rsync(src, `pve:${dst}`)],
		['pull', (extra, from = src) => rblocksync([...extra, `pve:${from}`, dst]), () => rsync(`pve:${src}`, dst)],
	];
	for (const [direction, sync, rsyncIt] of directions) {
		reset(changed);
		results.push({label: `1% changed, ${direction}`, tool: 'rblocksync --no-cache', ...sync(['--no-cache'])});
		reset(changed);
		sync([], changed); // builds the cache of DST as it is (nothing to change)
		results.push({label: `1% changed, ${direction}`, tool: 'rblocksync (cache)', ...sync([])});
		results.push({label: `unchanged, ${direction}`, tool: 'rblocksync (cache)', ...sync([])});
		reset(changed);
		results.push({label: `1% changed, ${direction}`, tool: 'rsync', ...rsyncIt()});
	}
	reset(changed);
	results.push({label: '1% changed, local', tool: 'rblocksync', ...rblocksync([src, dst])});
	reset(changed);
	results.push({label: '1% changed, local', tool: 'rsync', ...timed('rsync', ['--inplace', '--no-whole-file', src, dst]), wire: 0, cache: '-'});
	if (spawnSync('cmp', ['-s', src, dst]).status !== 0) {
		throw new Error('DST differs from SRC');
	}
} finally {
	await sshd.stop();
	if (!process.env['BENCH_DIR']) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}

console.log(`\nimage ${sizeMiB} MiB, 1% of 4 KiB blocks changed, ssh to 127.0.0.1, ${cold ? 'cold' : 'warm'} page cache, ${os.cpus().length} CPUs`);
console.log('case                 tool                    seconds  vs no cache   wire bytes  cache');
for (const r of results) {
	const peer = results.find(x => x.label === r.label.replace('unchanged', '1% changed') && x.tool === 'rblocksync --no-cache');
	const ratio = peer ? r.seconds / peer.seconds : Number.NaN;
	console.log(`${r.label.padEnd(20)} ${r.tool.padEnd(22)} ${r.seconds.toFixed(2).padStart(8)}  ${Number.isNaN(ratio) ? '       -' : `${ratio.toFixed(2)}x`.padStart(8)}  ${String(r.wire).padStart(11)}  ${r.cache}`);
}
console.log('(vs no cache: time relative to rblocksync --no-cache in the same direction; blocksync-fast is not installed here)');
