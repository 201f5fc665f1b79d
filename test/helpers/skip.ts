// Skipping a test that cannot run on this machine, so that it is counted and listed as skipped, never as passed.
import path from 'node:path';
import {fileURLToPath} from 'node:url';

/** What uvu hands every test (and hook) as its argument: the names of its suite and of the test. */
export type TestContext = {readonly __suite__: string; readonly __test__: string};

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Records that the running test cannot run here, and why: prints the line `SKIP: <file>: <test>: <reason>`, which
 * scripts/test.mjs counts as skipped (not passed) and lists with its reason before the closing line.
 * Call it as `return skip(context, reason)`: the test must end there, with nothing checked.
 */
export function skip(context: TestContext, reason: string): void {
	// Set by scripts/uvu-one.mjs; a file run some other way is named by its entry point.
	const file = (globalThis as {RBLOCKSYNC_TEST_FILE?: string}).RBLOCKSYNC_TEST_FILE ?? path.relative(root, process.argv[1] ?? '?');
	const test = context.__test__ || '(outside a test)';
	// On a line of its own: uvu prints its dots without newlines.
	process.stdout.write(`\nSKIP: ${file}: ${test}: ${reason.replace(/\s*\n\s*/g, ' ').trim()}\n`);
}
