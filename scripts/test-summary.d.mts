// Types of scripts/test-summary.mjs, for the tests that check it.
export type RunCount = {passed: number; failed: number; skipped: number; skips: string[]};
export function countRun(output: string, file: string): RunCount | undefined;
export function closingLines(totals: RunCount): string[];
