import {spawnSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {helpText} from '../../source/help.js';
import {completionPath, helpOptions} from './help-options.js';

const completion = suite('bash completion');

/** Runs the completion function on the command line `line` (cursor at its end); returns COMPREPLY. */
function complete(line: string, home = '/nonexistent'): string[] {
	const script = `
		source "$1"
		COMP_LINE="$2"; COMP_POINT=\${#2}
		read -ra COMP_WORDS <<<"$2"; COMP_CWORD=\${#COMP_WORDS[@]}
		_rblocksync
		printf '%s\\n' "\${COMPREPLY[@]}"
	`;
	const result = spawnSync('bash', ['-c', script, 'bash', completionPath, line], {encoding: 'utf8', env: {...process.env, HOME: home}});
	assert.is(result.stderr, '');
	return result.stdout.split('\n').filter(Boolean);
}

completion('should offer every long option of --help', () => {
	const offered = new Set(complete('rblocksync --'));
	const missing = helpOptions(helpText).map(o => o.long).filter(long => !offered.has(long));
	assert.equal(missing, [], `long options of --help that completions/rblocksync.bash does not offer: ${missing.join(', ')}`);
});

completion('should offer no long option that --help lacks', () => {
	const inHelp = new Set(helpOptions(helpText).map(o => o.long));
	const extra = complete('rblocksync --').filter(word => !inHelp.has(word.replace(/=$/, '')));
	assert.equal(extra, []);
});

completion('should complete the values of --hash and --progress', () => {
	assert.equal(complete('rblocksync --hash '), ['blake3', 'sha256']);
	assert.equal(complete('rblocksync --progress p'), ['plain']);
});

completion('should complete the formats of --src-format, --dst-format and --format', () => {
	assert.equal(complete('rblocksync --src-format q'), ['qcow2', 'qed']);
	assert.equal(complete('rblocksync --dst-format r'), ['raw']);
	assert.equal(complete('rblocksync --format v'), ['vmdk', 'vdi', 'vhdx', 'vpc']);
});

completion('should complete a --compress level after the equals sign only', () => {
	assert.equal(complete('rblocksync --compress=3'), ['3']);
});

completion('should offer ssh config hosts followed by a colon', () => {
	const home = mkdtempSync(join(tmpdir(), 'rblocksync-completion-'));
	try {
		mkdirSync(join(home, '.ssh'));
		writeFileSync(join(home, '.ssh/config'), 'Host pve pve2 *.lan\n\tHostName 192.0.2.1\nHost kvm\n');
		assert.equal(complete('rblocksync pv', home).filter(word => word.endsWith(':')), ['pve:', 'pve2:']);
		assert.equal(complete('rblocksync pve:/dev/x', home), []);
	} finally {
		rmSync(home, {recursive: true, force: true});
	}
});

completion.run();
