// --bitmap and the qcow2 first copy, against qemu-img: a 4 GiB qcow2 holding 1 GiB of random data (16 extents of
// 64 MiB) with the persistent bitmap b0, then 64 MiB written through qemu-io (64 writes of 1 MiB) under the bitmap:
//   second pass: rblocksync --bitmap push vs rblocksync push without it (both to a raw DST over a private sshd on
//     127.0.0.1, test/helpers/sshd.ts, facing the very same 64 MiB) vs qemu-img convert -O raw then `ssh cat > DST`
//     (qemu-img cannot write to a pipe: "Could not resize file"), so its time is the conversion plus the transfer;
//   first copy: rblocksync --src-format qcow2 into a new local raw file vs qemu-img convert -O raw to a local file,
//     and vs qemu-img convert from a qemu-nbd export of SRC (QEMU's own NBD client: what the server allows);
//   the fixed cost: a --bitmap pass with nothing written.
// Alternates the tools (A B A B), `sync` after each run, medians of BENCH_REPEAT runs (default 3); checks DST with
// cmp after every run. Env: BENCH_SIZE_GIB (4), BENCH_DATA_MIB (1024), BENCH_WRITE_MIB (64), BENCH_DIR.
import {execFileSync, spawnSync} from 'node:child_process';
import {randomFillSync} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {startSshd} from '../test/helpers/sshd.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1024 * 1024;
const size = Number(process.env['BENCH_SIZE_GIB'] ?? 4) * 1024 * MiB;
const dataMiB = Number(process.env['BENCH_DATA_MIB'] ?? 1024);
const writeMiB = Number(process.env['BENCH_WRITE_MIB'] ?? 64);
const repeat = Number(process.env['BENCH_REPEAT'] ?? 3);
const dir = process.env['BENCH_DIR'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-qemu-'));
const src = path.join(dir, 'src.qcow2');
const dst = path.join(dir, 'dst.raw');
const plain = path.join(dir, 'plain.raw');
const copied = path.join(dir, 'copy.raw');
const reference = path.join(dir, 'reference.raw');
const cli = path.join(root, 'dist/cli.js');

const sshd = await startSshd();
const ssh = ['ssh', '-F', path.join(sshd.home, '.ssh/config'), '-i', path.join(sshd.home, '.ssh/id_installed'), '-o', `UserKnownHostsFile=${path.join(sshd.home, '.ssh/known_hosts')}`, '-o', 'BatchMode=yes'];
const env = {...sshd.env, RBLOCKSYNC_REMOTE_AGENT: 'upload'};

function timed(command: string, args: string[], input?: string): {seconds: number; stdout: string} {
	const start = process.hrtime.bigint();
	const result = spawnSync(command, args, {env, encoding: 'utf8', maxBuffer: 1 << 26, ...(input ? {stdio: [fs.openSync(input, 'r'), 'pipe', 'pipe']} : {})});
	const seconds = Number(process.hrtime.bigint() - start) / 1e9;
	if (result.status !== 0) {
		throw new Error(`${command} ${args.join(' ')} failed (${String(result.status)}): ${result.stderr}`);
	}
	return {seconds, stdout: result.stdout};
}

type Run = {seconds: number; read?: number; bitmap?: string};

function rblocksync(args: string[]): Run {
	const {seconds, stdout} = timed(process.execPath, [cli, '--json', ...args]);
	const summary = JSON.parse(stdout.trim().split('\n').pop()!) as {srcBytesRead?: number; bitmap?: string};
	return {seconds, ...(summary.srcBytesRead === undefined ? {} : {read: summary.srcBytesRead}), ...(summary.bitmap === undefined ? {} : {bitmap: summary.bitmap})};
}

/** DST equals SRC's guest view (qemu-img convert to raw, once per state of SRC, then cmp). */
function check(what: string, file: string): void {
	if (spawnSync('cmp', ['-s', reference, file]).status !== 0) {
		throw new Error(`${what} left ${file} different from SRC's guest view`);
	}
}

function referenceNow(): void {
	fs.rmSync(reference, {force: true});
	execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', src, reference]);
}

let writes = 0;
/** 64 writes of 1 MiB (BENCH_WRITE_MIB in all) through qemu-io, at random MiB of the data extents, a new pattern each time. */
function guestWrites(): void {
	writes += 1;
	const extents = 16;
	const extentMiB = dataMiB / extents;
	const commands: string[] = [];
	const used = new Set<number>();
	while (used.size < writeMiB) {
		const extent = Math.floor(Math.random() * extents);
		const mib = extent * (size / MiB / extents) + Math.floor(Math.random() * extentMiB);
		if (!used.has(mib)) {
			used.add(mib);
			commands.push('-c', `write -P ${(0x40 + writes) & 0xff} ${mib * MiB} 1M`);
		}
	}
	execFileSync('qemu-io', ['-f', 'qcow2', ...commands, src], {stdio: 'ignore'});
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results = new Map<string, Run[]>();
const record = (name: string, run: Run): void => {
	results.set(name, [...(results.get(name) ?? []), run]);
	execFileSync('sync');
};

try {
	// SRC: random data in 16 extents of a sparse raw, converted to qcow2 (64 KiB clusters), the bitmap added.
	const seed = path.join(dir, 'seed.raw');
	fs.writeFileSync(seed, '');
	fs.truncateSync(seed, size);
	const fd = fs.openSync(seed, 'r+');
	const piece = Buffer.allocUnsafe(64 * MiB);
	for (let extent = 0; extent < 16; extent++) {
		for (let at = 0; at < (dataMiB / 16) * MiB; at += piece.length) {
			randomFillSync(piece);
			fs.writeSync(fd, piece, 0, Math.min(piece.length, (dataMiB / 16) * MiB - at), extent * (size / 16) + at);
		}
	}
	fs.closeSync(fd);
	execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', seed, src]);
	fs.rmSync(seed);
	execFileSync('qemu-img', ['bitmap', '--add', src, 'b0']);
	referenceNow();

	// The first copy, local: rblocksync into a new raw file vs qemu-img convert.
	for (let i = 0; i < repeat; i++) {
		fs.rmSync(copied, {force: true});
		record('first copy: rblocksync qcow2 -> new raw', rblocksync(['--src-format', 'qcow2', '--truncate', src, copied]));
		check('rblocksync first copy', copied);
		fs.rmSync(copied, {force: true});
		const convert = timed('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', src, copied]);
		record('first copy: qemu-img convert -O raw', {seconds: convert.seconds});
		check('qemu-img convert', copied);
		// rblocksync fdatasyncs DST before it reports success; qemu-img convert's default cache mode (unsafe) never flushes.
		fs.rmSync(copied, {force: true});
		execFileSync('sync');
		const flushed = timed('qemu-img', ['convert', '-t', 'writeback', '-f', 'qcow2', '-O', 'raw', src, copied]);
		record('first copy: qemu-img convert -O raw -t writeback', {seconds: flushed.seconds});
		check('qemu-img convert -t writeback', copied);
		// QEMU's own NBD client on a qemu-nbd export of SRC started as the run starts its (read-only, --shared): what
		// the server allows any NBD reader, the ceiling of a copy through it. Timed with the server's start and stop.
		fs.rmSync(copied, {force: true});
		execFileSync('sync');
		const served = Date.now();
		const socket = path.join(dir, 'nbd.sock');
		const pidFile = path.join(dir, 'qemu-nbd.pid');
		const start = process.hrtime.bigint();
		execFileSync('qemu-nbd', ['--fork', '--pid-file', pidFile, '-k', socket, '--shared=8', '--read-only', '-f', 'qcow2', src]);
		try {
			execFileSync('qemu-img', ['convert', '-f', 'raw', `nbd+unix:///?socket=${socket}`, '-O', 'raw', copied]);
		} finally {
			// Without -t it exits once its client leaves; wait for that.
			const pid = Number(fs.readFileSync(pidFile, 'utf8'));
			while (Date.now() - served < 10_000 && spawnSync('kill', ['-0', String(pid)]).status === 0) {
				Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
			}
		}
		record('first copy: qemu-img convert from qemu-nbd', {seconds: Number(process.hrtime.bigint() - start) / 1e9});
		check('qemu-img convert from qemu-nbd', copied);
	}
	fs.rmSync(copied, {force: true});

	// The first pass with the bitmap (full): the record the later passes build on. The agent is uploaded here too.
	const first = rblocksync(['--src-format', 'qcow2', '--bitmap', 'b0', '--truncate', src, `pve:${dst}`]);
	check('the first --bitmap pass', dst);
	console.log(`first --bitmap pass (push, full: ${first.bitmap}): ${first.seconds.toFixed(2)} s`);

	// Nothing written since: the fixed cost of a --bitmap pass (SSH, agents, qemu-img and qemu-nbd, threads, the rotation).
	for (let i = 0; i < repeat; i++) {
		record('second pass: rblocksync push --bitmap, nothing written', rblocksync(['--src-format', 'qcow2', '--bitmap', 'b0', src, `pve:${dst}`]));
	}
	check('the --bitmap pass with nothing written', dst);

	for (let i = 0; i < repeat; i++) {
		guestWrites();
		referenceNow();
		// The pass without the bitmap runs on a copy of DST, so both face the same 64 MiB and the bitmap's DST stays as recorded.
		execFileSync('cp', ['--sparse=always', dst, plain]);
		execFileSync('sync');
		record('second pass: rblocksync push --bitmap', rblocksync(['--src-format', 'qcow2', '--bitmap', 'b0', src, `pve:${dst}`]));
		check('the --bitmap pass', dst);
		record('second pass: rblocksync push, no bitmap', rblocksync(['--src-format', 'qcow2', src, `pve:${plain}`]));
		check('the pass without a bitmap', plain);
		const start = process.hrtime.bigint();
		const converted = path.join(dir, 'converted.raw');
		fs.rmSync(converted, {force: true});
		execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', src, converted]);
		timed(ssh[0]!, [...ssh.slice(1), 'pve', `cat > '${plain}'`], converted);
		record('second pass: qemu-img convert -O raw + ssh cat', {seconds: Number(process.hrtime.bigint() - start) / 1e9});
		fs.rmSync(converted);
		check('qemu-img convert + ssh cat', plain);
	}
} finally {
	await sshd.stop();
	if (!process.env['BENCH_DIR']) {
		fs.rmSync(dir, {recursive: true, force: true});
	}
}

console.log(`\nqcow2 of ${size / 1024 / MiB} GiB, ${dataMiB} MiB of data, ${writeMiB} MiB written between passes; ssh to 127.0.0.1, warm page cache, ${os.cpus().length} CPUs; medians of ${repeat}`);
console.log('case                                              seconds   SRC read (MiB)   runs');
for (const [name, runs] of results) {
	const reads = runs.map(run => run.read).filter((read): read is number => read !== undefined);
	console.log(`${name.padEnd(48)} ${median(runs.map(run => run.seconds)).toFixed(2).padStart(8)}   ${(reads.length ? (median(reads) / MiB).toFixed(1) : '-').padStart(14)}   ${runs.map(run => run.seconds.toFixed(2)).join(' ')}`);
}
const of = (name: string): number => median(results.get(name)!.map(run => run.seconds));
console.log(`--bitmap pass / pass without: ${((of('second pass: rblocksync push --bitmap') / of('second pass: rblocksync push, no bitmap')) * 100).toFixed(1)}% (goal: under 10%)`);
console.log(`--bitmap pass with nothing written / pass without: ${((of('second pass: rblocksync push --bitmap, nothing written') / of('second pass: rblocksync push, no bitmap')) * 100).toFixed(1)}% (the fixed cost)`);
console.log(`first copy rblocksync / qemu-img convert from qemu-nbd (the NBD server's ceiling): ${(of('first copy: rblocksync qcow2 -> new raw') / of('first copy: qemu-img convert from qemu-nbd')).toFixed(2)}x`);
console.log(`first copy rblocksync / qemu-img convert: ${(of('first copy: rblocksync qcow2 -> new raw') / of('first copy: qemu-img convert -O raw')).toFixed(2)}x (goal: within 1.2x); / qemu-img convert -t writeback (flushed, as rblocksync is): ${(of('first copy: rblocksync qcow2 -> new raw') / of('first copy: qemu-img convert -O raw -t writeback')).toFixed(2)}x`);
