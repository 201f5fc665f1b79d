// The built CLI's command line: `--` ends the options, and every usage error is one line and exit 1 (2 means DST may be touched).
import fs from 'node:fs';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {runCli} from '../helpers/cli.js';
import {dataLayout, sha256, withTempDir, writeImage} from '../helpers/images.js';

const commandLine = suite('command line');

commandLine('should take every word after -- as SRC or DST, even one that looks like an option', async () => {
	await withTempDir(dir => {
		writeImage(path.join(dir, '-rf'), dataLayout(256 * 1024));
		const result = runCli(['--truncate', '--quiet', '--', '-rf', 'out.img'], {cwd: dir});
		assert.is(result.code, 0, result.stderr);
		assert.is(sha256(path.join(dir, 'out.img')), sha256(path.join(dir, '-rf')));
	});
});

commandLine('should refuse each usage error with exit 1 and one line, touching nothing', async () => {
	await withTempDir(dir => {
		fs.writeFileSync(path.join(dir, 'a'), 'a');
		const cases: Array<[string[], string]> = [
			[['--bogus', 'a', 'b'], 'unknown option --bogus; see rblocksync --help'],
			[['-x', 'a', 'b'], 'unknown option -x; see rblocksync --help'],
			[['-rf', 'out.img'], 'unknown option -f (in -rf); see rblocksync --help'],
			[['a', 'b', '--workers'], '--workers needs a value; see rblocksync --help'],
			[['--hash', 'sha256', '--hash', 'blake3', 'a', 'b'], '--hash given more than once'],
			[['--json=1', 'a', 'b'], '--json does not take a value; see rblocksync --help'],
			[['a'], 'expected SRC and DST; see rblocksync --help'],
			[['--check', '--copy', 'a', 'b'], '--copy and --check cannot be combined: --copy does not read DST, so there is nothing to compare'],
			[['user@[::1/tmp/x', 'b'], 'SRC user@[::1/tmp/x: unclosed [ in the host (write [2001:db8::1]:path, or ./user@[::1/tmp/x for a local file)'],
			[['a', '@pve:/x'], 'DST @pve:/x: empty user name before @'],
			[['a', 'ssh://pve:99999/x'], 'DST ssh://pve:99999/x: port must be a number from 1 to 65535'],
		];
		for (const [args, message] of cases) {
			const result = runCli(args, {cwd: dir});
			assert.is(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
			assert.is(result.stderr, `rblocksync: ${message}\n`, args.join(' '));
			assert.is(result.stdout, '');
		}
		assert.equal(fs.readdirSync(dir), ['a']);
	});
});

commandLine.run();
