// Times rblocksync push and pull against `rsync --inplace --no-whole-file -e ssh` (and `ssh host 'cat > file'` for the
// first copy) over a private sshd on 127.0.0.1 (test/helpers/sshd.ts), with wire bytes, for a first copy, an unchanged
// DST and a DST with 1% of its blocks changed. Env: BENCH_SIZE_MIB (default 2048), BENCH_DIR (default a temp dir),
// BENCH_BASE (another checkout whose build is timed beside).
// Images: random data, 25% zero blocks, 10% holes (the same generator as bench/local).
import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {makeImagePair} from './images.mjs';
import {startSshd} from '../test/helpers/sshd.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const sizeMiB = Number(process.env['BENCH_SIZE_MIB'] ?? 2048);
const dir = process.env['BENCH_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-ssh-'));
const BLOCK = 4096;
const size = sizeMiB * 1024 * 1024;
const src = path.join(dir, 'src.img');
const changed = path.join(dir, 'changed.img');
const dst = path.join(dir, 'dst.img');


type Result = {label: string; tool: string; seconds: number; wire: number};

const sshd = await startSshd();
const ssh = ['ssh', '-F', path.join(sshd.home, '.ssh/config'), '-i', path.join(sshd.home, '.ssh/id_installed'), '-o', `UserKnownHostsFile=${path.join(sshd.home, '.ssh/known_hosts')}`, '-o', 'BatchMode=yes'];
const env = {...sshd.env};

function timed(command: string, args: string[], input?: string): {seconds: number; stdout: string} {
	const start = process.hrtime.bigint();
	const result = spawnSync(command, args, {env, encoding: 'utf8', maxBuffer: 1 << 26, ...(input ? {stdio: [fs.openSync(input, 'r'), 'pipe', 'pipe']} : {})});
	const seconds = Number(process.hrtime.bigint() - start) / 1e9;
	if (result.status !== 0) {
		throw new Error(`${command} ${args.join(' ')} failed (${String(result.status)}): ${result.stderr}`);
	}
	return {seconds, stdout: result.stdout};
}

/** BENCH_BASE=DIR: also time that checkout's build (before/after a change, in the same run). Both use their own uploaded agent. */
const base = process.env['BENCH_BASE'];
env['RBLOCKSYNC_REMOTE_AGENT'] = 'upload';

function rblocksync(args: string[], build = root): {seconds: number; wire: number} {
	const {seconds, stdout} = timed(process.execPath, [path.join(build, 'dist/cli.js'), '--json', ...args]);
	const summary = JSON.parse(stdout) as {wireBytesSent: number; wireBytesReceived: number};
	return {seconds, wire: summary.wireBytesSent + summary.wireBytesReceived};
}

function rsync(from: string, to: string): {seconds: number; wire: number} {
	const {seconds, stdout} = timed('rsync', ['--inplace', '--no-whole-file', '--stats', '--rsync-path=/usr/bin/rsync', '-e', ssh.join(' '), from, to]);
	const sent = Number(/Total bytes sent: ([\d,]+)/.exec(stdout)?.[1]?.replace(/,/g, '') ?? Number.NaN);
	const received = Number(/Total bytes received: ([\d,]+)/.exec(stdout)?.[1]?.replace(/,/g, '') ?? Number.NaN);
	return {seconds, wire: sent + received};
}

function check(tool: string, label: string): void {
	if (spawnSync('cmp', ['-s', src, dst]).status !== 0) {
		throw new Error(`${tool} (${label}) left DST different from SRC`);
	}
}

const results: Result[] = [];
try {
	makeImagePair(src, changed, size, BLOCK);
	execFileSync('sh', ['-c', `cat '${src}' '${changed}' > /dev/null`]);
	// Let the upload/first-connection costs not land in the timings.
	rblocksync(['-q', src, `pve:${dst}`, '--truncate']);
	if (base) {
		rblocksync(['-q', src, `pve:${dst}`, '--truncate'], base);
	}
	const baseTools = (): Array<[string, () => {seconds: number; wire: number}]> => (base ? [
		['base push', () => rblocksync([src, `pve:${dst}`, '--truncate'], base)],
		['base pull', () => rblocksync([`pve:${src}`, dst, '--truncate'], base)],
	] : []);
	const fresh = (): void => fs.rmSync(dst, {force: true});
	const cases: Array<[string, () => void, Array<[string, () => {seconds: number; wire: number}]>]> = [
		['first copy', fresh, [
			['rblocksync push', () => rblocksync([src, `pve:${dst}`, '--truncate'])],
			['rblocksync pull', () => rblocksync([`pve:${src}`, dst, '--truncate'])],
			['rsync push', () => rsync(src, `pve:${dst}`)],
			['ssh cat > file', () => ({...timed(ssh[0]!, [...ssh.slice(1), 'pve', `cat > '${dst}'`], src), wire: size})],
			...baseTools(),
		]],
		['no change', () => execFileSync('cp', ['--sparse=always', src, dst]), [
			['rblocksync push', () => rblocksync([src, `pve:${dst}`])],
			['rblocksync pull', () => rblocksync([`pve:${src}`, dst])],
			['rsync push', () => rsync(src, `pve:${dst}`)],
			['rsync pull', () => rsync(`pve:${src}`, dst)],
			...baseTools(),
		]],
		['1% changed', () => execFileSync('cp', ['--sparse=always', changed, dst]), [
			['rblocksync push', () => rblocksync([src, `pve:${dst}`])],
			['rblocksync pull', () => rblocksync([`pve:${src}`, dst])],
			['rsync push', () => rsync(src, `pve:${dst}`)],
			['rsync pull', () => rsync(`pve:${src}`, dst)],
			...baseTools(),
		]],
	];
	for (const [label, reset, tools] of cases) {
		for (const [tool, runTool] of tools) {
			reset();
			execFileSync('sync');
			const {seconds, wire} = runTool();
			check(tool, label);
			results.push({label, tool, seconds, wire});
		}
	}
} finally {
	await sshd.stop();
	if (!process.env['BENCH_DIR']) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}

console.log(`\nimage ${sizeMiB} MiB over ssh to 127.0.0.1, warm page cache, ${os.cpus().length} CPUs`);
console.log('case         tool               seconds  vs rsync   wire bytes   wire/image');
for (const r of results) {
	const base = results.find(x => x.label === r.label && x.tool === (r.tool.includes('pull') && r.label !== 'first copy' ? 'rsync pull' : 'rsync push'));
	const ratio = base ? base.seconds / r.seconds : Number.NaN;
	console.log(`${r.label.padEnd(12)} ${r.tool.padEnd(17)} ${r.seconds.toFixed(2).padStart(8)}  ${`${ratio.toFixed(1)}x`.padStart(8)}  ${String(r.wire).padStart(11)}  ${((r.wire / size) * 100).toFixed(3).padStart(9)}%`);
}
console.log('(vs rsync: how many times faster than rsync in the same case and direction)');
