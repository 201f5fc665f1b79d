// Whether the native helper (hole punching, SEEK_DATA) is part of this checkout, and whether a run used it.
import fs from 'node:fs';
import {fileURLToPath} from 'node:url';
import type {CliResult} from './cli.js';

/** The C source of the helper is in the tree: from then on a run without it is a failure, not a fallback. */
export function nativeExpected(): boolean {
	return fs.existsSync(fileURLToPath(new URL('../../native/rblocksync_native.c', import.meta.url)));
}

/** The run printed the one warning the tool gives when it works without the helper. */
export function ranWithoutNative(result: CliResult): boolean {
	return result.stderr.includes('native helper unavailable');
}

/** Environment that makes the CLI ignore the helper (the documented fallback path). */
export const NO_NATIVE_ENV = {RBLOCKSYNC_NO_NATIVE: '1'};
