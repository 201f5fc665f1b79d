// The reporter main.ts holds: the engine's Reporter plus a teardown for runs that end without finish().
import type {Reporter} from '../engine/progress.js';

export type ClosableReporter = Reporter & {
	/** Ends the output if finish() was not called (the run failed early); `error` is shown as the reason. Idempotent. */
	close(error?: unknown): Promise<void>;
};

/** What the reporters need of the run's options (Options satisfies it). */
export type ReporterOptions = {
	/** As resolveOptions decided it (from the flags and whether stderr is a terminal). */
	readonly progress: 'tui' | 'plain' | 'none';
	readonly quiet: boolean;
	readonly json: boolean;
	readonly jsonProgress: boolean;
	readonly stat: boolean;
};
