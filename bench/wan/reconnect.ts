// --retries benchmark: a first copy through the delay proxy (bench/wan/delay-proxy.ts) in front of the private test
// sshd, whole and with every connection cut once at half of SRC's data: rblocksync reconnecting and resuming at DEST's
// checkpoints, rblocksync --retries 0 (today: the run fails, and is run again), and rsync --inplace (cut, then run
// again), beside the uncut runs of both (rblocksync with and without checkpoints: their cost). Rounds alternate the
// tools (A B C ... A B C), `sync` after each run; the table shows medians, wire bytes are the proxy's (both ways).
// A push's DST loses its lock with the link (compared again from the start after the reconnect); a pull's DST is here
// and keeps it (resumed at DEST's checkpoints): BENCH_DIRECTION (push or pull).
// Env: BENCH_SIZE_MIB (128), BENCH_RTT (ms, 20), BENCH_RATE (Mbit/s, 100; 0: unlimited), BENCH_REPEAT (3),
// BENCH_DIR (default a temp dir, removed after). Run: npx tsx bench/wan/reconnect.ts
import {execFileSync, spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {performance} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';
import {startSshd} from '../../test/helpers/sshd.js';
import {makeImage} from '../../test/helpers/remote-images.js';
import {startDelayProxy} from './delay-proxy.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sizeMiB = Number(process.env['BENCH_SIZE_MIB'] ?? 128);
const rtt = Number(process.env['BENCH_RTT'] ?? 20);
const rateMbit = Number(process.env['BENCH_RATE'] ?? 100);
const repeat = Math.max(1, Number(process.env['BENCH_REPEAT'] ?? 3));
const pull = process.env['BENCH_DIRECTION'] === 'pull';
const ownDir = process.env['BENCH_DIR'] === undefined;
const dir = process.env['BENCH_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-reconnect-'));
const src = path.join(dir, 'src.img');
const dst = path.join(dir, 'dst.img');

const sshd = await startSshd();
const proxy = await startDelayProxy({host: '127.0.0.1', port: sshd.port}, {rttMs: rtt, rate: rateMbit > 0 ? rateMbit * 1e6 / 8 : 0});
const [, keyType, key] = sshd.hostKeyLine.split(' ');
fs.appendFileSync(path.join(sshd.home, '.ssh/config'), `\nHost wan\n\tHostName 127.0.0.1\n\tPort ${proxy.port}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tIdentitiesOnly yes\n`);
fs.appendFileSync(path.join(sshd.home, '.ssh/known_hosts'), `[127.0.0.1]:${proxy.port} ${keyType} ${key}\n`);
const env: NodeJS.ProcessEnv = {...sshd.env, RBLOCKSYNC_REMOTE_AGENT: 'upload'};
const ssh = ['ssh', '-F', path.join(sshd.home, '.ssh/config'), '-i', path.join(sshd.home, '.ssh/id_installed'), '-o', `UserKnownHostsFile=${path.join(sshd.home, '.ssh/known_hosts')}`, '-o', 'BatchMode=yes'];

makeImage(src, sizeMiB * 1024 * 1024);
const data = (() => {
	const bytes = fs.readFileSync(src);
	let count = 0;
	for (let at = 0; at < bytes.length; at += 4096) {
		count += bytes.subarray(at, at + 4096).some(byte => byte !== 0) ? 4096 : 0;
	}
	return count;
})();

/** Runs a command to its end; with `cutAt`, every connection is cut once the proxy carried that many bytes of data. */
const carried = (): number => (pull ? proxy.bytes.down : proxy.bytes.up);
async function run(command: string, args: string[], cutAt?: number): Promise<number | null> {
	const up0 = carried();
	const child = spawn(command, args, {env, stdio: ['ignore', 'ignore', 'pipe']});
	let stderr = '';
	child.stderr!.on('data', (chunk: Buffer) => {
		stderr += chunk.toString();
	});
	let ended = false;
	const status = new Promise<number | null>(resolve => child.on('close', code => {
		ended = true;
		resolve(code);
	}));
	if (cutAt !== undefined) {
		while (!ended && carried() - up0 < cutAt) {
			await new Promise(resolve => setTimeout(resolve, 5));
		}
		if (ended) {
			throw new Error(`${command} ended before the cut: ${stderr}`);
		}
		proxy.cutAll();
	}
	const code = await status;
	if (cutAt === undefined && code !== 0) {
		throw new Error(`${command} ${args.join(' ')} failed (${String(code)}): ${stderr}`);
	}
	return code;
}

const rblocksync = (args: string[], cutAt?: number): Promise<number | null> => run(process.execPath, [path.join(root, 'dist/cli.js'), '-q', ...(pull ? [`wan:${src}`, dst] : [src, `wan:${dst}`]), '--truncate', ...args], cutAt);
const rsync = (cutAt?: number): Promise<number | null> => run('rsync', ['--inplace', '--no-whole-file', '--rsync-path=/usr/bin/rsync', '-e', ssh.join(' '), ...(pull ? [`wan:${src}`, dst] : [src, `wan:${dst}`])], cutAt);
const half = Math.round(data / 2);

type Tool = {name: string; run: () => Promise<void>};
const tools: Tool[] = [
	{name: 'rblocksync (checkpoints)', run: async () => void await rblocksync([])},
	{name: 'rblocksync --retries 0', run: async () => void await rblocksync(['--retries', '0'])},
	{name: 'rblocksync, cut, resumed', run: async () => {
		const code = await rblocksync([], half);
		if (code !== 0) {
			throw new Error(`rblocksync did not survive the cut: ${String(code)}`);
		}
	}},
	{name: 'rblocksync -r0, cut, rerun', run: async () => {
		if (await rblocksync(['--retries', '0'], half) === 0) {
			throw new Error('rblocksync --retries 0 survived a cut');
		}
		await rblocksync([]);
	}},
	{name: 'rsync', run: async () => void await rsync()},
	{name: 'rsync, cut, rerun', run: async () => {
		await rsync(half);
		await rsync();
	}},
];

const results = new Map<string, Array<{seconds: number; wire: number}>>();
try {
	for (let round = 0; round < repeat; round++) {
		for (const tool of tools) {
			fs.rmSync(dst, {force: true});
			execFileSync('sync');
			const wire0 = proxy.bytes.up + proxy.bytes.down;
			const started = performance.now();
			await tool.run();
			const seconds = (performance.now() - started) / 1000;
			if (!fs.readFileSync(dst).equals(fs.readFileSync(src))) {
				throw new Error(`${tool.name}: DST differs from SRC`);
			}
			execFileSync('sync');
			const runs = results.get(tool.name) ?? [];
			runs.push({seconds, wire: proxy.bytes.up + proxy.bytes.down - wire0});
			results.set(tool.name, runs);
		}
	}
} finally {
	await proxy.stop();
	await sshd.stop();
	if (ownDir) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}

const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const baseline = median(results.get('rsync')!.map(run => run.seconds));
console.log(`${pull ? 'pull' : 'push'}: first copy of ${sizeMiB} MiB (${(data / 2 ** 20).toFixed(1)} MiB of data) at RTT ${rtt} ms, ${rateMbit || 'unlimited'} Mbit/s; cut at ${(half / 2 ** 20).toFixed(1)} MiB ${pull ? 'down' : 'up'}; median of ${repeat}; load ${os.loadavg().map(load => load.toFixed(1)).join(' ')}`);
console.log('tool                         seconds  vs rsync  wire MiB  wire/data');
for (const [name, runs] of results) {
	const seconds = median(runs.map(run => run.seconds));
	const wire = median(runs.map(run => run.wire));
	console.log(`${name.padEnd(28)} ${seconds.toFixed(2).padStart(7)}  ${(baseline / seconds).toFixed(2).padStart(8)}  ${(wire / 2 ** 20).toFixed(1).padStart(8)}  ${(wire / data).toFixed(3).padStart(9)}`);
}
console.log('(vs rsync: rsync\'s uncut time over this one; >1 is faster)');
