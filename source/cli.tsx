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
	const [{default: meow}, {helpText}, {VERSION}, {normalizeArgv}, {main}] = await Promise.all([
		import('meow'), import('./help.js'), import('./version.js'), import('./argv.js'), import('./main.js'),
	]);
	const cli = meow(helpText, {
		importMeta: import.meta,
		argv: normalizeArgv(process.argv.slice(2)),
		autoHelp: false,
		autoVersion: false,
		allowUnknownFlags: false,
		flags: {
			truncate: {type: 'boolean'},
			blockSize: {type: 'string', shortFlag: 'b'},
			workers: {type: 'string', shortFlag: 'w'},
			dryRun: {type: 'boolean', shortFlag: 'n'},
			verify: {type: 'boolean'},
			copy: {type: 'boolean'},
			hash: {type: 'string'},
			compress: {type: 'string', shortFlag: 'z'},
			port: {type: 'string', shortFlag: 'p'},
			identity: {type: 'string', shortFlag: 'i'},
			acceptNewHostKey: {type: 'boolean'},
			force: {type: 'boolean'},
			progress: {type: 'string'},
			json: {type: 'boolean'},
			jsonProgress: {type: 'boolean'},
			stat: {type: 'boolean'},
			quiet: {type: 'boolean', shortFlag: 'q'},
			debug: {type: 'boolean'},
			help: {type: 'boolean', shortFlag: 'h'},
			version: {type: 'boolean', shortFlag: 'v'},
			agent: {type: 'boolean'},
		},
	});

	process.exitCode = await main(cli.input, cli.flags, VERSION, helpText);
}
