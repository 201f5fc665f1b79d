// A test that cannot run here is counted and listed as skipped, with its reason, not as passed.
import {spawnSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {closingLines, countRun} from '../../scripts/test-summary.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** What scripts/test.mjs sees of one file: its output through scripts/uvu-one.mjs. */
function runFile(file: string): string {
	const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/uvu-one.mjs', file], {cwd: root, encoding: 'utf8', env: {...process.env, FORCE_COLOR: '0'}});
	assert.is(result.status, 0, result.stderr);
	return result.stdout;
}

const skipping = suite('skip');

skipping('should print one line naming the file, the test and the reason, on a line of its own', () => {
	const out = runFile('test/scripts/fixtures/skipping.ts');
	const lines = out.split('\n').filter(line => line.includes('SKIP'));
	assert.equal([...new Set(lines)], ['SKIP: test/scripts/fixtures/skipping.ts: should skip: the machine lacks a thing: no widget here']);
});

skipping('should count a skipping test as skipped, once, and a disabled one too, not as passed', () => {
	const count = countRun(runFile('test/scripts/fixtures/skipping.ts'), 'test/scripts/fixtures/skipping.ts');
	assert.equal(count, {
		passed: 1,
		failed: 0,
		skipped: 2,
		skips: [
			'SKIP: test/scripts/fixtures/skipping.ts: should skip: the machine lacks a thing: no widget here',
			'SKIP: test/scripts/fixtures/skipping.ts: 1 test disabled with .skip (no reason given)',
		],
	});
});

skipping('should count failures, a test that skipped and then failed among them, and read a crash as no summary', () => {
	const output = [
		' suite  • ', 'SKIP: x.test.ts: should a: no widget', '✘ ', 'SKIP: x.test.ts: should b: no gadget', '• • •   (4 / 5)',
		'', '   FAIL   suite   "should a"', '    boom', '',
		'  Total:     5', '  Passed:    4', '  Skipped:   0', '  Duration:  1ms', '',
	].join('\n');
	assert.equal(countRun(output, 'x.test.ts'), {passed: 3, failed: 1, skipped: 1, skips: ['SKIP: x.test.ts: should b: no gadget']});
	assert.is(countRun('TypeError: boom\n', 'x.test.ts'), undefined);
});

const closing = suite('closingLines');

closing('should end with the counts, skipped always included, after the skipped tests and their reasons', () => {
	assert.equal(closingLines({passed: 7, failed: 0, skipped: 0, skips: []}), ['7 passed, 0 failed, 0 skipped']);
	assert.equal(closingLines({passed: 7, failed: 1, skipped: 1, skips: ['SKIP: a.test.ts: should x: no loop device']}), [
		'1 skipped:',
		'  a.test.ts: should x: no loop device',
		'7 passed, 1 failed, 1 skipped',
	]);
});

skipping.run();
closing.run();
