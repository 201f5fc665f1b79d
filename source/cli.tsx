#!/usr/bin/env node
// Entry point: argv -> meow -> run(). Nothing else lives here.
// Exactly `--agent` (how SSH starts every remote worker) skips loading meow and the CLI: ~50 ms less start-up per agent.
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
	const [{default: meow}, {helpText}, {VERSION}, {cliFlags, splitArgv}, {main, printError}, {exitCodeOf}] = await Promise.all([
		import('meow'), import('./help.js'), import('./version.js'), import('./argv.js'), import('./main.js'), import('./errors.js'),
	]);
	let argv;
	try {
		argv = splitArgv(process.argv.slice(2));
	} catch (error) {
		// An unknown option or a missing value: one line and exit 1, like every usage error.
		printError(error, false);
		process.exitCode = exitCodeOf(error);
		return;
	}
	// meow only types the options: splitArgv has written each as --name or --name=value and kept SRC and DST apart.
	const cli = meow(helpText, {
		importMeta: import.meta,
		// Our own package fields: meow then has no package.json of ours to normalise (~40 ms of every start-up; and
		// none to find beside a bundle). The process is still titled "rblocksync", as with bin's name.
		pkg: {name: 'rblocksync', version: VERSION},
		argv: argv.options,
		autoHelp: false,
		autoVersion: false,
		allowUnknownFlags: false,
		flags: cliFlags,
	});

	process.exitCode = await main(argv.positional, cli.flags, VERSION, helpText);
	// The run is over and reported: nothing left behind (a socket to a peer that stopped answering) may hold the exit.
	setTimeout(() => process.exit(), 2000).unref();
}
