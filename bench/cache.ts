// DEST's digest cache: a repeat sync with 1% of 4 KiB blocks changed, without the cache (DST read in full) and with it
// (DST not read), against blocksync-fast's digest mode and rsync, over SSH to a private sshd on loopback (push and pull), and locally (no cache there
// yet: a local run compares bytes). Also an unchanged pair with the cache (SRC's quick check). Env: BENCH_SIZE_MIB (default
// 1024), BENCH_REPEAT (alternating rounds, default 3; medians), PEERS (default /tmp/peers), BENCH_DIR,
// BENCH_COLD=1 drops the page cache before every timed run (root only): what reading DST really costs.
// Each timed case starts from the same DST bytes; for "cache" the cache was built by a sync onto that very DST first.
import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {setTimeout as sleep} from 'node:timers/promises';
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

type Run = {seconds: number; wire: number; cache: string; srcRead: number | undefined; dstRead: number | undefined};
type Result = {label: string; tool: string; runs: Run[]};

const cold = process.env['BENCH_COLD'] === '1';
const repeat = Number(process.env['BENCH_REPEAT'] ?? 3);
const peers = process.env['PEERS'] ?? '/tmp/peers';
const blocksyncFast = path.join(peers, 'bin', 'blocksync-fast');
const haveBlocksyncFast = fs.existsSync(blocksyncFast);

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
	// Most peers do not flush DST before they exit: the sync after each run is not timed, but it is paid before the next.
	execFileSync('sync');
	return {seconds, stdout: result.stdout};
}

function rblocksync(args: string[]): Run {
	const {seconds, stdout} = timed(process.execPath, [path.join(root, 'dist/cli.js'), '--json', ...args]);
	const summary = JSON.parse(stdout) as {wireBytesSent: number; wireBytesReceived: number; cache?: string; srcBytesRead?: number; dstBytesRead?: number};
	return {seconds, wire: summary.wireBytesSent + summary.wireBytesReceived, cache: summary.cache ?? '-', srcRead: summary.srcBytesRead, dstRead: summary.dstBytesRead};
}

function rsync(from: string, to: string): Run {
	const {seconds, stdout} = timed('rsync', ['--inplace', '--no-whole-file', '--stats', '--rsync-path=/usr/bin/rsync', '-e', ssh.join(' '), from, to]);
	const sent = Number(/Total bytes sent: ([\d,]+)/.exec(stdout)?.[1]?.replace(/,/g, '') ?? Number.NaN);
	const received = Number(/Total bytes received: ([\d,]+)/.exec(stdout)?.[1]?.replace(/,/g, '') ?? Number.NaN);
	return {seconds, wire: sent + received, cache: '-', srcRead: undefined, dstRead: undefined};
}

/** blocksync-fast's digest mode: the digests of DST kept in a file on SRC's side, the delta piped over ssh (DST not read). */
function blocksyncFastDigest(direction: 'push' | 'pull', digest: string): Run {
	const make = `${blocksyncFast} -s '${src}' -f '${digest}' --make-delta`;
	const apply = `${blocksyncFast} -d '${dst}' --apply-delta`;
	const remote = (command: string): string => `${ssh.join(' ')} pve "${command}"`;
	const pipeline = direction === 'push' ? `${make} | ${remote(apply)}` : `${remote(make)} | ${apply}`;
	const {seconds} = timed('bash', ['-c', `set -o pipefail; ${pipeline}`]);
	return {seconds, wire: Number.NaN, cache: 'digest file', srcRead: undefined, dstRead: undefined};
}

function median(values: number[]): number {
	const sorted = values.filter(value => !Number.isNaN(value)).sort((a, b) => a - b);
	if (sorted.length === 0) {
		return Number.NaN;
	}
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** DST as `base` holds it, written in place (same inode), its page cache warm as SRC's. */
function reset(base: string): void {
	execFileSync('cp', ['--sparse=always', base, dst]);
	execFileSync('sync');
	execFileSync('sh', ['-c', `cat '${dst}' > /dev/null`]);
}

const results: Result[] = [];
function record(label: string, tool: string, run: Run): void {
	let result = results.find(r => r.label === label && r.tool === tool);
	if (!result) {
		result = {label, tool, runs: []};
		results.push(result);
	}
	result.runs.push(run);
	console.error(`${label}, ${tool}: ${run.seconds.toFixed(2)} s, DST read ${run.dstRead ?? '-'}, ${run.cache}`);
}

try {
	makeImagePair(src, changed, size, 4096);
	execFileSync('sh', ['-c', `cat '${src}' '${changed}' > /dev/null`]);
	rblocksync(['-q', src, `pve:${dst}`, '--truncate', '--no-cache']); // the agent's upload, out of the timings
	const digest = path.join(dir, 'bsf.digest');
	const directions: Array<['push' | 'pull', (extra: string[], from?: string) => Run, () => Run]> = [
		['push', (extra, from = src) => rblocksync([...extra, from, `pve:${dst}`]), () => rsync(src, `pve:${dst}`)],
		['pull', (extra, from = src) => rblocksync([...extra, `pve:${from}`, dst]), () => rsync(`pve:${src}`, dst)],
	];
	// Alternating: every tool once per round, the rounds repeated; medians reported.
	for (let round = 0; round < repeat; round++) {
		for (const [direction, sync, rsyncIt] of directions) {
			const label = `1% changed, ${direction}`;
			reset(changed);
			record(label, 'rblocksync --no-cache', sync(['--no-cache']));
			reset(changed);
			sync([], changed); // builds the cache of DST as it is (nothing to change)
			record(label, 'rblocksync (cache)', sync([]));
			// SRC's quick check needs SRC written 2 s before the run that records its stamp.
			await sleep(2200);
			sync([]); // records SRC's stamp
			record(`unchanged, ${direction}`, 'rblocksync (cache)', sync([]));
			if (haveBlocksyncFast) {
				reset(changed);
				execFileSync(blocksyncFast, ['-s', changed, '-f', digest, '--make-digest'], {stdio: 'ignore'});
				record(label, 'blocksync-fast -f', blocksyncFastDigest(direction, digest));
			}
			reset(changed);
			record(label, 'rsync', rsyncIt());
		}
		reset(changed);
		record('1% changed, local', 'rblocksync', rblocksync([src, dst]));
		reset(changed);
		record('1% changed, local', 'rsync', {...timed('rsync', ['--inplace', '--no-whole-file', src, dst]), wire: 0, cache: '-', srcRead: undefined, dstRead: undefined});
		if (spawnSync('cmp', ['-s', src, dst]).status !== 0) {
			throw new Error('DST differs from SRC');
		}
	}
} finally {
	await sshd.stop();
	if (!process.env['BENCH_DIR']) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}

console.log(`\nimage ${sizeMiB} MiB, 1% of 4 KiB blocks changed, ssh to 127.0.0.1, ${cold ? 'cold' : 'warm'} page cache, ${os.cpus().length} CPUs, median of ${repeat} alternating rounds`);
console.log('case                 tool                    seconds  vs no cache   wire bytes  SRC read    DST read  cache');
const mib = (bytes: number): string => Number.isNaN(bytes) ? '-' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
for (const r of results) {
	const seconds = median(r.runs.map(run => run.seconds));
	const peer = results.find(x => x.label === r.label.replace('unchanged', '1% changed') && x.tool === 'rblocksync --no-cache');
	const ratio = peer ? seconds / median(peer.runs.map(run => run.seconds)) : Number.NaN;
	const wire = median(r.runs.map(run => run.wire));
	const srcRead = median(r.runs.map(run => run.srcRead ?? Number.NaN));
	const dstRead = median(r.runs.map(run => run.dstRead ?? Number.NaN));
	console.log(`${r.label.padEnd(20)} ${r.tool.padEnd(22)} ${seconds.toFixed(2).padStart(8)}  ${Number.isNaN(ratio) ? '       -' : `${ratio.toFixed(2)}x`.padStart(8)}  ${(Number.isNaN(wire) ? '-' : String(wire)).padStart(11)}  ${mib(srcRead).padStart(9)}  ${mib(dstRead).padStart(9)}  ${r.runs[0]!.cache}`);
	console.log(`${''.padEnd(43)} runs: ${r.runs.map(run => run.seconds.toFixed(2)).join(' ')}`);
}
console.log(`(vs no cache: time relative to rblocksync --no-cache in the same direction; ${haveBlocksyncFast ? 'blocksync-fast -f: its digest file on SRC\'s side, the delta piped over ssh' : `blocksync-fast is not built (bash /work/shared/peers/build.sh)`})`);
