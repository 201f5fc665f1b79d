// The parts of a run every direction shares: once-only warnings, the summary's life cycle, verify's verdict.
import {VerifyError} from '../errors.js';
import {emptyCounters, type Reporter, type Summary, type SyncStart} from './progress.js';

/** A warn function that passes each distinct message to the reporter once (workers repeat themselves). */
export function onceWarner(reporter: Reporter): (message: string) => void {
	const warned = new Set<string>();
	return message => {
		if (!warned.has(message)) {
			warned.add(message);
			reporter.warn(message);
		}
	};
}

/** The summary of a run that has just started: zero counters, not ok until finishSummary says so. */
export function startSummary(start: SyncStart, blocksTotal: number, dstExtraBytes: number): Summary {
	const {phase: _phase, ...described} = start;
	return {...described, ...emptyCounters(), blocksTotal, verified: null, dstExtraBytes, seconds: 0, ok: false};
}

/** The summary of a run that failed before it started (connecting, a refusal): nothing known yet, every figure 0. */
export function unstartedSummary(names: Pick<Summary, 'src' | 'dst' | 'direction'>, options: Pick<Summary, 'blockSize' | 'hash' | 'workers' | 'dryRun'>): Summary {
	const {blockSize, hash, workers, dryRun} = options;
	return {...names, size: 0, blockSize, hash, workers, dryRun, ...emptyCounters(), blocksTotal: 0, verified: null, dstExtraBytes: 0, seconds: 0, ok: false};
}

/** Records the verify pass's result; throws VerifyError (exit 3) when blocks differ. */
export function recordVerify(summary: Summary, differing: number, dstName: string): void {
	summary.verified = differing === 0;
	if (differing > 0) {
		throw new VerifyError(`verify failed: ${differing} block${differing === 1 ? '' : 's'} of DST ${dstName} differ from SRC`);
	}
}

/** Marks the summary ok (or failed with `error`), stamps the time and hands it to the reporter. */
export async function finishSummary(reporter: Reporter, summary: Summary, seconds: number, error?: unknown): Promise<void> {
	summary.ok = error === undefined;
	summary.seconds = seconds;
	if (error !== undefined) {
		summary.error = error instanceof Error ? error.message : String(error);
	}
	await reporter.finish(summary);
}

/** A run that throws after its summary started reports it as failed, with how far it got; then the caller rethrows. */
export async function finishFailedSummary(reporter: Reporter, summary: Summary | undefined, seconds: number, error: unknown): Promise<void> {
	if (summary && !summary.ok) {
		await finishSummary(reporter, summary, seconds, error);
	}
}
