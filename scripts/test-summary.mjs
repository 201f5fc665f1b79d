// Counting for scripts/test.mjs, kept pure so that test/scripts can check it: what one file's run printed -> counts,
// and the closing lines. A test that printed a SKIP line (test/helpers/skip.ts) is skipped, not passed.

/**
 * Counts one test file's output: uvu's summary (Total, Passed, Skipped: those disabled with `.skip`), less the tests that
 * printed a SKIP line and passed, each counted once. undefined when the output has no summary (the file crashed first).
 */
export function countRun(output, file) {
	const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? Number.NaN);
	const ok = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? Number.NaN);
	if (Number.isNaN(total) || Number.isNaN(ok)) {
		return undefined;
	}
	const disabled = Number(/Skipped:\s+(\d+)/.exec(output)?.[1] ?? 0);
	// A test that recorded a skip and then failed anyway is a failure, not a skip.
	const failedTests = [...output.matchAll(/^\s*FAIL\s.*?"(.*)"\s*$/gm)].map(match => match[1]);
	const skips = [...new Set(output.match(/^SKIP: .*$/gm) ?? [])].filter(line => !failedTests.some(test => line.includes(`: ${test}: `)));
	if (disabled > 0) {
		skips.push(`SKIP: ${file}: ${disabled} test${disabled === 1 ? '' : 's'} disabled with .skip (no reason given)`);
	}
	const recorded = skips.length - (disabled > 0 ? 1 : 0);
	return {passed: Math.max(0, ok - recorded), failed: total - ok, skipped: recorded + disabled, skips};
}

/** The lines that end `npm test`: the skipped tests with their reasons, then "N passed, N failed, N skipped". */
export function closingLines({passed, failed, skipped, skips}) {
	const list = skips.length === 0 ? [] : [`${skipped} skipped:`, ...skips.map(line => `  ${line.replace(/^SKIP: /, '')}`)];
	return [...list, `${passed} passed, ${failed} failed, ${skipped} skipped`];
}
