#!/usr/bin/env node
// Entry point: argv -> options -> run(). Nothing else lives here.
// Exactly `--agent` (how SSH starts every remote worker) skips loading the CLI: less start-up per agent.
// Exactly `--agent-protocol` prints the protocol version that agent speaks (internal, for the driver's probe).
if (process.argv.length === 3 && process.argv[2] === '--agent') {
	const {runAgent} = await import('./agent/agent.js');
	process.exitCode = await runAgent();
} else if (process.argv.length === 3 && process.argv[2] === '--agent-protocol') {
	// What a driver's probe asks an installed rblocksync: the protocol its agent speaks (hosts upgrade one at a time).
	const {PROTOCOL_VERSION} = await import('./protocol/messages.js');
	process.stdout.write(`${PROTOCOL_VERSION}\n`);
} else {
	await runCli();
}

async function runCli(): Promise<void> {
	const [{helpText}, {VERSION}, {cliFlags, splitArgv, typeFlags}, {main, printError}, {exitCodeOf}] = await Promise.all([
		import('./help.js'), import('./version.js'), import('./argv.js'), import('./main.js'), import('./errors.js'),
	]);
	process.title = 'rblocksync';
	let argv;
	let flags;
	try {
		argv = splitArgv(process.argv.slice(2));
		flags = typeFlags(argv.options, cliFlags);
	} catch (error) {
		// An unknown option or a missing value: one line and exit 1, like every usage error.
		printError(error, false);
		process.exitCode = exitCodeOf(error);
		return;
	}
	process.exitCode = await main(argv.positional, flags, VERSION, helpText);
	// The run is over and reported: nothing left behind (a socket to a peer that stopped answering) may hold the exit.
	setTimeout(() => process.exit(), 2000).unref();
}
