import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {cliFlags, splitArgv, typeFlags} from '../../source/argv.js';
import {UsageError} from '../../source/errors.js';

const split = suite('splitArgv');

/** The UsageError message splitArgv throws for argv. */
function refusal(argv: string[]): string {
	try {
		splitArgv(argv);
	} catch (error) {
		assert.instance(error, UsageError);
		return (error as Error).message;
	}
	throw new Error(`${argv.join(' ')} was accepted`);
}

split('should end the options at --, keeping every later word as an argument', () => {
	assert.equal(splitArgv(['--', '-rf', 'out.img']), {options: [], positional: ['-rf', 'out.img']});
	assert.equal(splitArgv(['-n', '--', '--truncate', '--']), {options: ['--dry-run'], positional: ['--truncate', '--']});
	assert.equal(splitArgv(['a', '--', '-z', 'b']), {options: [], positional: ['a', '-z', 'b']});
});

split('should take a value from the next word or from the same word, whatever it looks like', () => {
	const blockSize = {options: ['--block-size=64k'], positional: ['a', 'b']};
	assert.equal(splitArgv(['-b', '64k', 'a', 'b']), blockSize);
	assert.equal(splitArgv(['-b64k', 'a', 'b']), blockSize);
	assert.equal(splitArgv(['-b=64k', 'a', 'b']), blockSize);
	assert.equal(splitArgv(['--block-size', '64k', 'a', 'b']), blockSize);
	assert.equal(splitArgv(['a', '--block-size=64k', 'b']), blockSize);
	assert.equal(splitArgv(['-i', '--', 'a', 'b']), {options: ['--identity=--'], positional: ['a', 'b']});
	assert.equal(splitArgv(['--hash', '-x', 'a', 'b']), {options: ['--hash=-x'], positional: ['a', 'b']});
});

split('should read a group of short options, the last of which may take a value', () => {
	assert.equal(splitArgv(['-nq', 'a', 'b']), {options: ['--dry-run', '--quiet'], positional: ['a', 'b']});
	assert.equal(splitArgv(['-qw4', 'a', 'b']), {options: ['--quiet', '--workers=4'], positional: ['a', 'b']});
	assert.equal(splitArgv(['-qw', '4', 'a']), {options: ['--quiet', '--workers=4'], positional: ['a']});
});

split('should keep a bare -z or --compress from swallowing SRC', () => {
	assert.equal(splitArgv(['-z', 'a', 'b']), {options: ['--compress='], positional: ['a', 'b']});
	assert.equal(splitArgv(['--compress', 'a', 'b']), {options: ['--compress='], positional: ['a', 'b']});
	assert.equal(splitArgv(['-z9', 'a']), {options: ['--compress=9'], positional: ['a']});
	assert.equal(splitArgv(['-qz', 'a']), {options: ['--quiet', '--compress='], positional: ['a']});
	assert.equal(splitArgv(['--compress=3', 'a']), {options: ['--compress=3'], positional: ['a']});
});

split('should pass switches, their negations and a lone - through', () => {
	assert.equal(splitArgv(['--truncate', '--no-truncate', '--check', '-', 'b']), {options: ['--truncate', '--no-truncate', '--check'], positional: ['-', 'b']});
	assert.equal(splitArgv(['-n', '-n', 'a']), {options: ['--dry-run', '--dry-run'], positional: ['a']});
});

split('should refuse unknown options, missing values, values for switches and repeated values, word for word', () => {
	assert.is(refusal(['--bogus', 'a', 'b']), 'unknown option --bogus; see rblocksync --help');
	assert.is(refusal(['--bogus=1', 'a', 'b']), 'unknown option --bogus; see rblocksync --help');
	assert.is(refusal(['-x', 'a', 'b']), 'unknown option -x; see rblocksync --help');
	assert.is(refusal(['-nx', 'a', 'b']), 'unknown option -x (in -nx); see rblocksync --help');
	assert.is(refusal(['-xf', 'out.img']), 'unknown option -x (in -xf); see rblocksync --help');
	assert.is(refusal(['--no-hash', 'a', 'b']), 'unknown option --no-hash; see rblocksync --help');
	assert.is(refusal(['--blockSize=4096', 'a', 'b']), 'unknown option --blockSize; see rblocksync --help');
	assert.is(refusal(['a', 'b', '--workers']), '--workers needs a value; see rblocksync --help');
	assert.is(refusal(['a', 'b', '-w']), '-w needs a value; see rblocksync --help');
	assert.is(refusal(['--truncate=yes', 'a', 'b']), '--truncate does not take a value; see rblocksync --help');
	assert.is(refusal(['--hash', 'sha256', '--hash=blake3', 'a', 'b']), '--hash given more than once');
	assert.is(refusal(['-b', '512', '--block-size', '4096', 'a', 'b']), '--block-size given more than once');
});

split.run();

const typed = suite('typeFlags');
/** What meow 13 made of splitArgv's options for every flag left out (what the run before typeFlags read). */
const unset = {
	truncate: false, recursive: false, filter: [], delete: false, watch: false, dryRun: false, check: false, verify: false, copy: false,
	cache: true, trustCache: false, remoteSudo: false, acceptNewHostKey: false, forceShare: false, force: false, json: false,
	jsonProgress: false, stat: false, quiet: false, debug: false, help: false, version: false, agent: false,
};

typed('should give every switch its default or false, every list [] and leave values out when nothing is given', () => {
	assert.equal(typeFlags([], cliFlags), unset);
});

typed('should type switches, negations, values (an empty one kept) and the --include/--exclude list in order, as meow did', () => {
	const {options} = splitArgv(['--no-cache', '-q', '--include', '*.img', '--exclude', 'x', '-z', '-b', '64k', 'a', 'b']);
	assert.equal(typeFlags(options, cliFlags), {...unset, cache: false, quiet: true, filter: ['+*.img', '-x'], compress: '', blockSize: '64k'});
	assert.equal(typeFlags(splitArgv(['--compress=6', '--json', '--cache', '-w4']).options, cliFlags), {...unset, compress: '6', json: true, workers: '4'});
	// The last of a switch's wins.
	assert.equal(typeFlags(splitArgv(['--truncate', '--no-truncate', '--no-cache', '--cache']).options, cliFlags), unset);
});

typed('should refuse what splitArgv never writes', () => {
	assert.throws(() => typeFlags(['--bogus'], cliFlags), /unknown option --bogus/);
	assert.throws(() => typeFlags(['-q'], cliFlags), /unknown option -q/);
	assert.throws(() => typeFlags(['--no-hash'], cliFlags), /unknown option --no-hash/);
});

typed.run();
