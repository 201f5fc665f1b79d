// Everything between argv and the exit status: help, version, agent mode, options, reporter, errors.
import {ExitCode, exitCodeOf, UsageError} from './errors.js';
import {statSync} from 'node:fs';
import {type Options, type RawFlags, resolveOptions} from './options.js';
import {closeEarly, connectEarly, earlyOptions} from './remote/early-connect.js';

type Flags = RawFlags & {help?: boolean; version?: boolean; agent?: boolean};

/** Runs the program; returns the exit status. Never throws. */
export async function main(input: readonly string[], flags: Flags, version: string, help: string): Promise<number> {
	if (flags.help) {
		process.stdout.write(help.replace(/^\n/, '') + '\n');
		return ExitCode.ok;
	}
	if (flags.version) {
		process.stdout.write(`rblocksync ${version}\n`);
		return ExitCode.ok;
	}
	if (flags.agent) {
		const {runAgent} = await import('./agent/agent.js');
		return runAgent();
	}
	let options: Options;
	try {
		options = resolveOptions(input, flags);
	} catch (error) {
		printError(error, flags.debug ?? false);
		if (flags.json) {
			// --json promises one object on stdout whatever happens; before the options are read it can only say this.
			process.stdout.write(`${JSON.stringify({ok: false, error: error instanceof Error ? error.message : String(error)})}\n`);
		}
		return exitCodeOf(error);
	}
	if (!options.intoDirectory && options.dst.kind === 'local' && isDirectory(options.dst.path)) {
		// cp's reading: an existing directory DST takes the file under its own name.
		options = {...options, intoDirectory: true};
	}
	const controller = new AbortController();
	let signals = 0;
	const onSignal = (): void => {
		signals += 1;
		if (signals > 1) {
			// Written at exit, after the TUI's own exit handler has drawn its last frame (a line in between would garble it).
			process.once('exit', () => process.stderr.write('rblocksync: interrupted twice; exiting without flushing DST\n'));
			process.exit(ExitCode.interrupted);
		}
		controller.abort();
	};
	process.on('SIGINT', onSignal);
	process.on('SIGTERM', onSignal);
	startConnections(options, controller.signal);
	if (options.intoDirectory) {
		try {
			return await runManyCli(options, controller.signal);
		} finally {
			closeEarly();
			process.off('SIGINT', onSignal);
			process.off('SIGTERM', onSignal);
		}
	}
	// Loaded only for a sync, so --help and --version stay fast whatever the engine and the UI import.
	const [{createReporter}, {run}] = await Promise.all([import('./ui/create-reporter.js'), import('./run.js')]);
	const reporter = await createReporter(options, controller.signal);
	try {
		const summary = await run(options, reporter, controller.signal);
		await reporter.close();
		// --check: the summary is a dry run's; the status says whether a real run would change DST.
		return options.check && summary.blocksChanged > 0 ? ExitCode.differs : ExitCode.ok;
	} catch (error) {
		// Tear the TUI down (final frame, cursor back) before the error line, so the line lands below it.
		await reporter.close(error);
		printError(error, options.debug);
		return exitCodeOf(error);
	} finally {
		closeEarly();
		process.off('SIGINT', onSignal);
		process.off('SIGTERM', onSignal);
	}
}

/**
 * Starts the SSH connection to each host of the run now (remote/early-connect.ts), so its handshake overlaps the
 * loading of everything else (the run's first step connects to every host anyway, before SRC is read).
 */
function startConnections(options: Options, signal: AbortSignal): void {
	for (const endpoint of [...options.sources, options.dst]) {
		if (endpoint.kind === 'remote') {
			connectEarly(earlyOptions(endpoint, options), signal);
		}
	}
}

function isDirectory(path: string): boolean {
	try {
		return statSync(path).isDirectory();
	} catch {
		return false;
	}
}

/** Several SRCs into DSTDIR/, or -r trees (and --watch): each file reported, the worst file's exit status. */
async function runManyCli(options: Options, signal: AbortSignal): Promise<number> {
	const [{createManyReporter}, {runMany}, {watchTree}] = await Promise.all([import('./ui/many-reporter.js'), import('./many.js'), import('./watch.js')]);
	// The TUI (ink loaded only now): one pass over the files, or --watch's passes one after another.
	const tui = options.progress === 'tui';
	if (tui && process.env['NO_COLOR'] && !('FORCE_COLOR' in process.env)) {
		process.env['FORCE_COLOR'] = '0'; // As createReporter: chalk (under ink) reads FORCE_COLOR when loaded.
	}
	const reporter = tui
		? (await import('./ui/many-tui-reporter.js')).createManyTuiReporter({stream: process.stderr, stdout: process.stdout, json: options.json, signal,
			...(options.watch ? {watching: `waiting for changes under ${options.sources.map(source => source.path).join(', ')} (Ctrl-C ends)`} : {})})
		: createManyReporter(options, {stdout: process.stdout, stderr: process.stderr});
	try {
		const {exitCode} = await runMany(options, reporter, signal);
		if (!options.watch || signal.aborted) {
			await reporter.close();
			return exitCode;
		}
		const code = await watchTree(options, reporter, signal);
		await reporter.close();
		return code;
	} catch (error) {
		await reporter.close(error);
		printError(error, options.debug);
		return exitCodeOf(error);
	}
}

/** One line on stderr; the stack only with --debug. */
export function printError(error: unknown, debug: boolean): void {
	const message = error instanceof Error ? error.message : String(error);
	process.stderr.write(`rblocksync: ${message}\n`);
	if (debug && error instanceof Error && !(error instanceof UsageError)) {
		process.stderr.write(`${error.stack ?? ''}\n`);
		let cause = error.cause;
		while (cause instanceof Error) {
			process.stderr.write(`caused by: ${cause.stack ?? cause.message}\n`);
			cause = cause.cause;
		}
	}
}
