import {spawnSync} from 'node:child_process';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {helpText} from '../../source/help.js';
import {skip} from '../helpers/skip.js';
import {VERSION} from '../../source/version.js';
import {describeOption, helpExitCodes, helpOptions, manExitCodes, manOptions, manPagePath, readManPage} from './help-options.js';

const page = suite('man page');
const roff = readManPage();

page('should document every option of --help, with the same short name', () => {
	const documented = new Set(manOptions(roff).map(describeOption));
	const missing = helpOptions(helpText).map(describeOption).filter(option => !documented.has(option));
	assert.equal(missing, [], `options in --help but not in man/rblocksync.1 (OPTIONS): ${missing.join('; ')}`);
});

page('should document no option that --help lacks', () => {
	const inHelp = new Set(helpOptions(helpText).map(describeOption));
	const extra = manOptions(roff).map(describeOption).filter(option => !inHelp.has(option));
	assert.equal(extra, [], `options in man/rblocksync.1 (OPTIONS) but not in --help: ${extra.join('; ')}`);
});

page('should list the options in the order of --help', () => {
	assert.equal(manOptions(roff).map(o => o.long), helpOptions(helpText).map(o => o.long));
});

page('should list the same exit statuses as --help', () => {
	assert.equal(manExitCodes(roff), helpExitCodes(helpText));
	assert.equal(helpExitCodes(helpText), [0, 1, 2, 3, 4, 130]);
});

page('should carry the program version in its title line', () => {
	const title = roff.split('\n').find(line => line.startsWith('.TH '));
	assert.ok(title?.includes(`"rblocksync ${VERSION}"`), `the .TH line should name rblocksync ${VERSION}: ${title}`);
});

page('should have the sections a reader looks for', () => {
	const sections = roff.split('\n').filter(line => line.startsWith('.SH ')).map(line => line.slice(4).replace(/"/g, ''));
	for (const name of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'SRC AND DST', 'REMOTE HOSTS', 'HOLES AND SPARSE FILES', 'EXIT STATUS', 'ENVIRONMENT', 'FILES', 'EXAMPLES', 'NOTES', 'SEE ALSO']) {
		assert.ok(sections.includes(name), `the man page has no ${name} section`);
	}
});

page('should format without groff warnings', context => {
	const result = spawnSync('groff', ['-man', '-ww', '-z', manPagePath], {encoding: 'utf8'});
	if (result.error) {
		return skip(context, `groff cannot run: ${result.error.message}; apt-get install groff`);
	}
	assert.is(result.stderr, '');
	assert.is(result.status, 0);
});

page('should render with man -l', context => {
	const result = spawnSync('man', ['-l', manPagePath], {encoding: 'utf8', env: {...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80'}});
	if (result.error) {
		return skip(context, `man cannot run: ${result.error.message}; apt-get install man-db`);
	}
	assert.is(result.status, 0, result.stderr);
	assert.match(result.stdout, /--accept-new-host-key/);
	assert.match(result.stdout, /EXIT STATUS/);
});

page.run();
