// WAN benchmark: rblocksync push and pull (default workers and -w 1) against rsync, bdsync (when built into
// /tmp/peers/bin) and `ssh cat`, through a user-space delay proxy (bench/wan/delay-proxy.ts) in front of the
// private test sshd (test/helpers/sshd.ts), at several round-trip times and rates, for a 1% change and a first copy.
// Every tool reaches the sshd as the Host alias `wan` (the proxy's port), so the wire bytes are the proxy's count
// of TCP payload both ways (SSH framing and handshakes included), the same measure for every tool.
// It also times each rblocksync run's setup from its RBLOCKSYNC_TRACE=1 timeline (start to the first worker's
// session) and, from the growth between RTTs, how many sequential round trips it costs.
// Env: BENCH_SIZE_MIB (256), BENCH_RTTS (ms, "0,20,80"), BENCH_RATES (Mbit/s, 0 = unlimited, "0,100"),
// BENCH_CASES ("changed,first"; also "unchanged": DST already equal to SRC; also "text" and "random": first copies of a compressible image (lines of words, zstd -1
// ~3.5x) and of random data, rblocksync with --compress=auto (the default) and off beside rsync, rsync -z and ssh cat),
// BENCH_TOOLS (comma-separated substrings of tool names; default all),
// BENCH_REPEAT (1: runs of each tool, alternated A B A B; the tables show the median run, the setup table the median
// setup), BENCH_DIR (default a temp dir, removed after).
// Images: bench/images.mjs (random data, 25% zero blocks, 10% holes; CHANGED has 1% of its blocks rewritten).
import {execFileSync, spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {performance} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';
import {makeImagePair} from '../images.mjs';
import {startSshd} from '../../test/helpers/sshd.js';
import {type DelayProxy, startDelayProxy} from './delay-proxy.js';
import {makeImage} from '../../test/helpers/remote-images.js';
import {makeTextImage} from '../../test/helpers/text-image.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const list = (name: string, fallback: string): string[] => (process.env[name] ?? fallback).split(',').map(s => s.trim()).filter(Boolean);
const sizeMiB = Number(process.env['BENCH_SIZE_MIB'] ?? 256);
const rtts = list('BENCH_RTTS', '0,20,80').map(Number);
const rates = list('BENCH_RATES', '0,100').map(Number);
const caseNames = list('BENCH_CASES', 'changed,first');
const toolFilter = process.env['BENCH_TOOLS'] ? list('BENCH_TOOLS', '') : undefined;
const repeat = Math.max(1, Number(process.env['BENCH_REPEAT'] ?? 1));
const dir = process.env['BENCH_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-wan-'));
const BDSYNC = '/tmp/peers/bin/bdsync';
const size = sizeMiB * 1024 * 1024;
const src = path.join(dir, 'src.img');
const changed = path.join(dir, 'changed.img');
const dst = path.join(dir, 'dst.img');
const textSrc = path.join(dir, 'text.img');
const randomSrc = path.join(dir, 'random.img');

type TraceLine = {wall: number; trace: number; what: string};
type Outcome = {seconds: number; stdout: string; trace: TraceLine[]};
type Result = {label: string; rtt: number; rate: number; tool: string; seconds: number; wire: number; trace: TraceLine[]};

const sshd = await startSshd();
const env: NodeJS.ProcessEnv = {...sshd.env, RBLOCKSYNC_REMOTE_AGENT: 'upload', RBLOCKSYNC_TRACE: '1'};
const sshConfig = path.join(sshd.home, '.ssh/config');
// OpenSSH takes ~ from the password database, not HOME: the key and known_hosts are named.
const ssh = ['ssh', '-F', sshConfig, '-i', path.join(sshd.home, '.ssh/id_installed'), '-o', `UserKnownHostsFile=${path.join(sshd.home, '.ssh/known_hosts')}`, '-o', 'BatchMode=yes'];

/** Runs a command, timing it from spawn; stderr lines of RBLOCKSYNC_TRACE are kept with the time they arrived. */
async function run(command: string, args: string[], stdinFile?: string): Promise<Outcome> {
	const started = performance.now();
	const child = spawn(command, args, {env, stdio: [stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore', 'pipe', 'pipe']});
	let stdout = '';
	let stderr = '';
	let pending = '';
	const trace: TraceLine[] = [];
	child.stdout!.on('data', (chunk: Buffer) => {
		stdout += chunk.toString();
	});
	child.stderr!.on('data', (chunk: Buffer) => {
		const wall = (performance.now() - started) / 1000;
		pending += chunk.toString();
		const lines = pending.split('\n');
		pending = lines.pop() ?? '';
		for (const line of lines) {
			const match = /^rblocksync: trace (\d+\.\d+) (.*)$/.exec(line);
			if (match) {
				trace.push({wall, trace: Number(match[1]), what: match[2]!});
			} else {
				stderr += `${line}\n`;
			}
		}
	});
	const status = await new Promise<number | null>(resolve => child.on('close', resolve));
	const seconds = (performance.now() - started) / 1000;
	if (status !== 0) {
		throw new Error(`${command} ${args.join(' ')} failed (${String(status)}): ${stderr}${pending}`);
	}
	return {seconds, stdout, trace};
}

const rblocksync = async (args: string[]): Promise<Outcome> => run(process.execPath, [path.join(root, 'dist/cli.js'), '--json', '--progress', 'none', ...args]);
const rsync = async (from: string, to: string, extra: string[] = []): Promise<Outcome> => run('rsync', ['--inplace', '--no-whole-file', '--rsync-path=/usr/bin/rsync', ...extra, '-e', ssh.join(' '), from, to]);
const sshCat = async (from = src): Promise<Outcome> => run(ssh[0]!, [...ssh.slice(1), 'wan', `cat > '${dst}'`], from);
/** bdsync's README pipeline: the client reads SRC here and DST's digests from `bdsync --server` there, the patch goes back over ssh. */
const bdsync = async (): Promise<Outcome> => run('bash', ['-o', 'pipefail', '-c',
	`${BDSYNC} "${ssh.join(' ')} wan ${BDSYNC} --server" '${src}' '${dst}' | ${ssh.join(' ')} wan "${BDSYNC} --patch='${dst}'"`]);

type Tool = {name: string; run: () => Promise<Outcome>; rsyncPeer: string};
type Case = {label: string; reset: () => void; tools: Tool[]; src?: string};

/** A first copy of `from` with compression: auto and off, rsync with and without -z, ssh cat. */
const compressCase = (label: string, from: string): Case => ({label, src: from, reset: () => fs.rmSync(dst, {force: true}), tools: [
	{name: 'rblocksync push', run: async () => rblocksync([from, `wan:${dst}`, '--truncate']), rsyncPeer: 'rsync -z push'},
	{name: 'rblocksync push -z off', run: async () => rblocksync([from, `wan:${dst}`, '--truncate', '--compress=off']), rsyncPeer: 'rsync -z push'},
	{name: 'rblocksync pull', run: async () => rblocksync([`wan:${from}`, dst, '--truncate']), rsyncPeer: 'rsync -z push'},
	{name: 'rsync push', run: async () => rsync(from, `wan:${dst}`), rsyncPeer: 'rsync -z push'},
	{name: 'rsync -z push', run: async () => rsync(from, `wan:${dst}`, ['-z']), rsyncPeer: 'rsync -z push'},
	{name: 'ssh cat > file', run: async () => sshCat(from), rsyncPeer: 'rsync -z push'},
]});

const push = 'rsync push';
const pull = 'rsync pull';
/** The tools of a sync onto an existing DST (a 1% change, or none): rblocksync both ways with and without -w 1, rsync, bdsync. */
const deltaTools = (): Case['tools'] => [
	{name: 'rblocksync push', run: async () => rblocksync([src, `wan:${dst}`]), rsyncPeer: push},
	{name: 'rblocksync push -w 1', run: async () => rblocksync(['-w', '1', src, `wan:${dst}`]), rsyncPeer: push},
	{name: 'rblocksync pull', run: async () => rblocksync([`wan:${src}`, dst]), rsyncPeer: pull},
	{name: 'rblocksync pull -w 1', run: async () => rblocksync(['-w', '1', `wan:${src}`, dst]), rsyncPeer: pull},
	{name: push, run: async () => rsync(src, `wan:${dst}`), rsyncPeer: push},
	{name: pull, run: async () => rsync(`wan:${src}`, dst), rsyncPeer: pull},
	...(fs.existsSync(BDSYNC) ? [{name: 'bdsync push', run: bdsync, rsyncPeer: push}] : []),
];
const cases: Record<string, Case> = {
	changed: {label: '1% changed', reset: () => execFileSync('cp', ['--sparse=always', changed, dst]), tools: deltaTools()},
	unchanged: {label: 'unchanged', reset: () => execFileSync('cp', ['--sparse=always', src, dst]), tools: deltaTools()},
	first: {label: 'first copy', reset: () => fs.rmSync(dst, {force: true}), tools: [
		{name: 'rblocksync push', run: async () => rblocksync([src, `wan:${dst}`, '--truncate']), rsyncPeer: push},
		{name: 'rblocksync push -w 1', run: async () => rblocksync(['-w', '1', src, `wan:${dst}`, '--truncate']), rsyncPeer: push},
		{name: 'rblocksync pull', run: async () => rblocksync([`wan:${src}`, dst, '--truncate']), rsyncPeer: push},
		{name: 'rblocksync pull -w 1', run: async () => rblocksync(['-w', '1', `wan:${src}`, dst, '--truncate']), rsyncPeer: push},
		{name: push, run: async () => rsync(src, `wan:${dst}`), rsyncPeer: push},
		// bdsync needs a DST of SRC's size: a hole, whose zero blocks match SRC's.
		...(fs.existsSync(BDSYNC) ? [{name: 'bdsync push', run: async () => {
			execFileSync('truncate', ['-s', String(size), dst]);
			return bdsync();
		}, rsyncPeer: push}] : []),
		{name: 'ssh cat > file', run: async () => sshCat(), rsyncPeer: push},
	]},
	text: compressCase('text copy', textSrc),
	random: compressCase('random copy', randomSrc),
};

/** The proxy listens on one port for every link shape, so ~/.ssh/config and known_hosts name it once. */
async function shapeLink(port: number, rttMs: number, mbit: number): Promise<DelayProxy> {
	return startDelayProxy({host: '127.0.0.1', port: sshd.port}, {rttMs, rate: mbit * 1e6 / 8}, port);
}

const wanted = (name: string): boolean => !toolFilter || toolFilter.some(f => name.includes(f));
const results: Result[] = [];
const logins: Array<{rtt: number; rate: number; seconds: number}> = [];
let proxy = await startDelayProxy({host: '127.0.0.1', port: sshd.port}, {rttMs: 0, rate: 0});
const proxyPort = proxy.port;
try {
	fs.appendFileSync(sshConfig, `\nHost wan\n\tHostName 127.0.0.1\n\tPort ${proxyPort}\n\tUser root\n\tIdentityFile ~/.ssh/id_installed\n\tIdentitiesOnly yes\n`);
	const [, type, key] = sshd.hostKeyLine.split(' ');
	fs.appendFileSync(path.join(sshd.home, '.ssh/known_hosts'), `[127.0.0.1]:${proxyPort} ${type} ${key}\n`);
	makeImagePair(src, changed, size, 4096);
	if (caseNames.includes('text')) {
		makeTextImage(textSrc, size);
	}
	if (caseNames.includes('random')) {
		makeImage(randomSrc, size, {zeroEvery: 0, holeEvery: 0});
	}
	execFileSync('sh', ['-c', `cat '${src}' '${changed}' > /dev/null`]);
	// The agent upload and first-connection costs stay out of the timings.
	await rblocksync(['-q', src, `wan:${dst}`, '--truncate']);
	if (!fs.existsSync(BDSYNC)) {
		console.log(`bdsync not built (${BDSYNC}): bash /work/shared/peers/build.sh builds it; its rows are left out`);
	}
	for (const rate of rates) {
		for (const rtt of rtts) {
			await proxy.stop();
			proxy = await shapeLink(proxyPort, rtt, rate);
			const login = await run(ssh[0]!, [...ssh.slice(1), 'wan', 'true']);
			logins.push({rtt, rate, seconds: login.seconds});
			for (const name of caseNames) {
				const chosen = cases[name];
				if (!chosen) {
					throw new Error(`BENCH_CASES: unknown case ${name} (changed, unchanged, first, text, random)`);
				}
				for (const tool of Array.from({length: repeat}, () => chosen.tools.filter(t => wanted(t.name))).flat()) {
					chosen.reset();
					execFileSync('sync');
					const before = proxy.bytes.up + proxy.bytes.down;
					const outcome = await tool.run();
					// Let the last bytes of a closing connection through the delay line before counting.
					await new Promise(resolve => setTimeout(resolve, rtt + 20));
					const wire = proxy.bytes.up + proxy.bytes.down - before;
					if (execFileSync('sh', ['-c', `cmp -s '${chosen.src ?? src}' '${dst}' && echo same || echo differ`]).toString().trim() !== 'same') {
						throw new Error(`${tool.name} (${chosen.label}, RTT ${rtt} ms, ${rate || 'unlimited'} Mbit/s) left DST different from SRC`);
					}
					const result = {label: chosen.label, rtt, rate, tool: tool.name, seconds: outcome.seconds, wire, trace: outcome.trace};
					results.push(result);
					console.log(`  ${chosen.label}, RTT ${rtt} ms, ${rate ? `${rate} Mbit/s` : 'unlimited'}: ${tool.name} ${outcome.seconds.toFixed(2)} s`);
				}
			}
		}
	}
} finally {
	await proxy.stop();
	await sshd.stop();
	if (!process.env['BENCH_DIR']) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}

const rateName = (rate: number): string => (rate ? `${rate} Mbit/s` : 'unlimited');
/** The setup of a run: until its first worker's session began (a "first data" trace line when there is one). */
function firstData(trace: TraceLine[]): TraceLine | undefined {
	return trace.find(t => /first data|data frame/i.test(t.what)) ?? trace.find(t => /^worker \d+ opened/.test(t.what));
}
/** The wire rate from the first worker session to the exit (rblocksync's rows), and its share of a limited line. */
function afterSetup(r: Result): string {
	const first = firstData(r.trace);
	if (!first || r.seconds <= first.wall) {
		return '-';
	}
	const mbit = r.wire * 8 / (r.seconds - first.wall) / 1e6;
	return `${mbit.toFixed(1)}${r.rate ? ` (${Math.round(mbit / r.rate * 100)}%)` : ''}`;
}
const sameRow = (a: Result, b: Result): boolean => a.label === b.label && a.rtt === b.rtt && a.rate === b.rate && a.tool === b.tool;
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
/** One row per case, link and tool: the run of median time. */
const medians = results.filter((r, i) => results.findIndex(x => sameRow(x, r)) === i).map(r => {
	const runs = results.filter(x => sameRow(x, r)).sort((a, b) => a.seconds - b.seconds);
	return {...runs[Math.floor((runs.length - 1) / 2)]!, spread: runs.length > 1 ? `${runs[0]!.seconds.toFixed(2)}-${runs.at(-1)!.seconds.toFixed(2)}` : ''};
});
console.log(`\nimage ${sizeMiB} MiB through a delay proxy to an sshd on 127.0.0.1, warm page cache, ${os.cpus().length} CPUs`);
console.log('case         RTT  rate       tool                  seconds  vs rsync    wire bytes  wire/image  wire Mbit/s  after setup');
for (const r of medians) {
	const peerName = Object.values(cases).find(c => c.label === r.label)?.tools.find(t => t.name === r.tool)?.rsyncPeer;
	const peer = medians.find(x => x.label === r.label && x.rtt === r.rtt && x.rate === r.rate && x.tool === peerName);
	const ratio = peer ? `${(peer.seconds / r.seconds).toFixed(2)}x` : '-';
	console.log(`${r.label.padEnd(12)} ${String(r.rtt).padStart(3)}  ${rateName(r.rate).padEnd(10)} ${r.tool.padEnd(20)} ${r.seconds.toFixed(2).padStart(8)}  ${ratio.padStart(8)}  ${String(r.wire).padStart(12)}  ${((r.wire / size) * 100).toFixed(2).padStart(9)}%  ${(r.wire * 8 / r.seconds / 1e6).toFixed(1).padStart(11)}${afterSetup(r).padStart(13)}${r.spread ? `  (${r.spread})` : ''}`);
}
console.log('(after setup: rblocksync\'s wire Mbit/s from its first worker session to its exit, against the line rate of the row)');
console.log('(vs rsync: rsync\'s time over this one, in the same case, link and direction (a first copy: rsync push; text and random copies: rsync -z push); >1 is faster)');


console.log('\nrblocksync setup (RBLOCKSYNC_TRACE): seconds from spawn to the first worker session; trace clock in ()');
console.log('ssh login (`ssh wan true`) beside it; round trips: the growth over RTT 0 divided by the RTT');
console.log(`${'case'.padEnd(13)}${'rate'.padEnd(11)}${'tool'.padEnd(21)}${rtts.map(rtt => `RTT ${rtt} ms`.padStart(16)).join('')}   round trips`);
for (const rate of rates) {
	const row = (name: string, times: Array<{wall: number; trace?: number} | undefined>): void => {
		const base = times[rtts.indexOf(0)];
		const trips = rtts.map((rtt, i) => (rtt > 0 && base && times[i] ? ((times[i]!.wall - base.wall) / (rtt / 1000)).toFixed(1) : undefined)).filter(Boolean);
		console.log(`${name.padEnd(45)}${times.map(t => (t ? `${t.wall.toFixed(3)}${t.trace === undefined ? '' : ` (${t.trace.toFixed(2)})`}` : '-').padStart(16)).join('')}   ${trips.join(' / ')}`);
	};
	row(`${'all'.padEnd(12)} ${rateName(rate).padEnd(10)} ssh wan true`, rtts.map(rtt => {
		const login = logins.find(l => l.rtt === rtt && l.rate === rate);
		return login && {wall: login.seconds};
	}));
	for (const label of [...new Set(results.map(r => r.label))]) {
		for (const tool of [...new Set(results.filter(r => r.tool.startsWith('rblocksync')).map(r => r.tool))]) {
			row(`${label.padEnd(12)} ${rateName(rate).padEnd(10)} ${tool}`, rtts.map(rtt => {
				const firsts = results.filter(x => x.label === label && x.rate === rate && x.rtt === rtt && x.tool === tool).map(x => firstData(x.trace)).filter(t => t !== undefined);
				return firsts.length ? {wall: median(firsts.map(t => t.wall)), trace: median(firsts.map(t => t.trace))} : undefined;
			}));
		}
	}
}

/** Each phase of a run once (its first line: "worker 0 opened" and "worker 1 opened" are one phase, "worker opened"). */
function phases(trace: TraceLine[]): Map<string, number> {
	const seen = new Map<string, number>();
	for (const t of trace) {
		const name = t.what.replace(/^worker \d+ /, 'worker ');
		if (!seen.has(name)) {
			seen.set(name, t.wall);
		}
	}
	return seen;
}

// The phases of rblocksync push (1% changed) side by side: each step's growth over RTT 0, in round trips.
for (const rate of rates) {
	const runs = rtts.map(rtt => medians.find(x => x.rtt === rtt && x.rate === rate && x.tool === 'rblocksync push' && x.label === '1% changed'));
	const base = runs[rtts.indexOf(0)];
	if (!base || runs.some(r => !r)) {
		continue;
	}
	const maps = runs.map(r => phases(r!.trace).set('exit', r!.seconds));
	console.log(`\nphases of rblocksync push, 1% changed, ${rateName(rate)}: seconds from spawn at each RTT; then each step's growth over RTT 0 in round trips`);
	console.log(`${'phase'.padEnd(22)}${rtts.map(rtt => `RTT ${rtt}`.padStart(9)).join('')}  ${rtts.filter(rtt => rtt > 0).map(rtt => `step RTs@${rtt}`.padStart(12)).join('')}`);
	let previous: string | undefined;
	for (const name of maps[0]!.keys()) {
		const at = maps.map(m => m.get(name));
		const step = (i: number): number | undefined => {
			const now = at[i];
			const before = previous === undefined ? 0 : maps[i]!.get(previous);
			const baseNow = at[rtts.indexOf(0)];
			const baseBefore = previous === undefined ? 0 : maps[rtts.indexOf(0)]!.get(previous);
			return now === undefined || before === undefined || baseNow === undefined || baseBefore === undefined ? undefined : ((now - before) - (baseNow - baseBefore)) / (rtts[i]! / 1000);
		};
		const steps = rtts.map((rtt, i) => (rtt > 0 ? step(i) : undefined)).filter((_, i) => rtts[i]! > 0);
		console.log(`${name.padEnd(22)}${at.map(t => (t === undefined ? '-' : t.toFixed(3)).padStart(9)).join('')}  ${steps.map(v => (v === undefined ? '-' : v.toFixed(1)).padStart(12)).join('')}`);
		previous = name;
	}
}
