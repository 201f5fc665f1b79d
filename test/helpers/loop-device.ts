// Loop devices for tests that need a real block device (root and /dev/loop-control required).
import {execFileSync} from 'node:child_process';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

/** Attaches file to a free loop device, runs fn with the device path, and always detaches it. */
export async function withLoopDevice<T>(file: string, fn: (device: string) => T | Promise<T>): Promise<T> {
	const device = execFileSync('losetup', ['-f', '--show', file], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']}).trim();
	try {
		return await fn(device);
	} finally {
		execFileSync('losetup', ['-d', device]);
	}
}

/** Why no loop device can be attached here (losetup's own words), or undefined when one can. */
export async function loopDeviceProblem(): Promise<string | undefined> {
	const dir = mkdtempSync(join(tmpdir(), 'rbs-loop-'));
	try {
		const file = join(dir, 'probe.img');
		writeFileSync(file, Buffer.alloc(64 * 1024));
		await withLoopDevice(file, () => undefined);
		return undefined;
	} catch (error) {
		const stderr: unknown = error instanceof Error ? Reflect.get(error, 'stderr') : undefined;
		return String(stderr || (error instanceof Error ? error.message : error)).trim();
	} finally {
		rmSync(dir, {recursive: true, force: true});
	}
}
