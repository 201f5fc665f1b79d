// Loop devices over image files, for the block-device tests (root only). Always detached afterwards.
import {spawnSync} from 'node:child_process';
import {skip, type TestContext} from './skip.js';

/** Attaches `file` to a free loop device and returns its path (e.g. /dev/loop3); throws with losetup's words. */
export function attachLoop(file: string, sectorSize?: number): string {
	const args = [...(sectorSize ? ['--sector-size', String(sectorSize)] : []), '-f', '--show', file];
	const result = spawnSync('losetup', args, {encoding: 'utf8'});
	if (result.error || result.status !== 0) {
		throw new Error(`losetup ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
	}
	return result.stdout.trim();
}

export function detachLoop(device: string): void {
	const result = spawnSync('losetup', ['-d', device], {encoding: 'utf8'});
	if (result.status !== 0) {
		console.error(`warning: losetup -d ${device} failed: ${result.stderr.trim()}`);
	}
}

/**
 * Attaches each file to a loop device (with logical sectors of `sectorSize` bytes if given), runs `use` with the devices and detaches them in all cases.
 * When losetup itself fails (no permission, no loop support) the test `context` is skipped with losetup's words: returns false.
 * Failures inside `use` are not skips: they propagate.
 */
export async function withLoop(context: TestContext, files: readonly string[], use: (devices: string[]) => void | Promise<void>, sectorSize?: number): Promise<boolean> {
	const devices: string[] = [];
	try {
		for (const file of files) {
			try {
				devices.push(attachLoop(file, sectorSize));
			} catch (error) {
				skip(context, `no loop device: ${(error as Error).message}`);
				return false;
			}
		}
		await use(devices);
		return true;
	} finally {
		for (const device of devices.reverse()) {
			detachLoop(device);
		}
	}
}
