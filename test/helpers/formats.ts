// Formatted images for the --src-format/--dst-format tests: qcow2 files written through qemu-io, qemu-img
// compare, the qemu-nbd servers a run left behind, and a PATH whose qemu-nbd logs how it was started.
import {execFileSync, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {processes} from './sshd.js';

/** A qcow2 of `size` bytes with `writes` done through qemu-io (e.g. 'write -P 0xab 1M 3M', 'write -z 8M 1M'). */
export function makeQcow2(file: string, size: number, writes: readonly string[], options: readonly string[] = ['cluster_size=65536']): void {
	execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...options.flatMap(option => ['-o', option]), file, String(size)]);
	if (writes.length > 0) {
		execFileSync('qemu-io', ['-f', 'qcow2', ...writes.flatMap(command => ['-c', command]), file], {stdio: 'ignore'});
	}
}

/** `qemu-img compare` of two guest views: undefined when identical, else what it said. */
export function compareImages(a: string, aFormat: string, b: string, bFormat: string): string | undefined {
	const result = spawnSync('qemu-img', ['compare', '-U', '-f', aFormat, '-F', bFormat, a, b], {encoding: 'utf8'});
	return result.status === 0 ? undefined : (result.stdout + result.stderr).trim();
}

/** qemu-nbd processes (not zombies) serving anything under `dir`. */
export function serversUnder(dir: string): string[] {
	return processes().filter(row => row.args.startsWith('qemu-nbd ') && row.args.includes(dir)).map(row => `${row.pid}: ${row.args}`);
}

/** Waits up to `ms` for the servers under `dir` to end (a remote agent stops its own as it exits); returns those left. */
export async function serversLeft(dir: string, ms = 5000): Promise<string[]> {
	for (const until = Date.now() + ms; ; await new Promise(resolve => setTimeout(resolve, 50))) {
		const left = serversUnder(dir);
		if (left.length === 0 || Date.now() >= until) {
			return left;
		}
	}
}

/**
 * A directory for PATH holding qemu-img and, unless `withNbd` is false, a qemu-nbd that appends its arguments
 * to `log` and runs the real one; node's own directory comes after it.
 */
export function toolDir(dir: string, log: string, withNbd = true): string {
	fs.mkdirSync(dir, {recursive: true});
	fs.symlinkSync(execFileSync('sh', ['-c', 'command -v qemu-img'], {encoding: 'utf8'}).trim(), path.join(dir, 'qemu-img'));
	if (withNbd) {
		const real = execFileSync('sh', ['-c', 'command -v qemu-nbd'], {encoding: 'utf8'}).trim();
		fs.writeFileSync(path.join(dir, 'qemu-nbd'), `#!/bin/sh\necho "$*" >> '${log}'\nexec '${real}' "$@"\n`, {mode: 0o755});
	}
	return dir;
}
