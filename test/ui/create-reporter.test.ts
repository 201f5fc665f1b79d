import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {createReporter} from '../../source/ui/create-reporter.js';
import {progressMode, resolveOptions, type RawFlags} from '../../source/options.js';
import {CONTROL, FakeStream} from './helpers/fake-stream.js';
import {start, summary} from './helpers/views.js';

const mode = suite('progressMode');
mode('should pick tui on a terminal and plain elsewhere, none with -q/--json/--json-progress, and obey --progress', () => {
	const base = {progress: undefined, quiet: false, json: false, jsonProgress: false};
	assert.is(progressMode(base, true), 'tui');
	assert.is(progressMode(base, false), 'plain');
	assert.is(progressMode({...base, quiet: true}, true), 'none');
	assert.is(progressMode({...base, json: true}, true), 'none');
	assert.is(progressMode({...base, jsonProgress: true}, true), 'none');
	assert.is(progressMode({...base, json: true, progress: 'plain'}, false), 'plain');
	assert.is(progressMode({...base, progress: 'tui'}, false), 'tui');
	assert.is(progressMode({...base, progress: 'none'}, true), 'none');
});
mode.run();

async function runWith(flags: RawFlags): Promise<{stdout: string; stderr: string}> {
	const stdout = new FakeStream();
	const stderr = new FakeStream();
	const reporter = await createReporter(resolveOptions(['a.img', 'b.img'], flags), undefined, {stdout, stderr});
	reporter.start(start);
	reporter.warn('native helper not built');
	await reporter.finish(summary());
	await reporter.close();
	return {stdout: stdout.text, stderr: stderr.text};
}

const create = suite('createReporter');
create('should print the plain summary on stderr by default when not on a terminal', async () => {
	const {stdout, stderr} = await runWith({});
	assert.is(stdout, '');
	assert.match(stderr, /^syncing .*\nrblocksync: warning: native helper not built\n.*: in sync\nsize /);
	assert.not.match(stderr, CONTROL);
});
create('should print only errors with -q (nothing here), and the summary with -q --stat', async () => {
	assert.equal(await runWith({quiet: true}), {stdout: '', stderr: ''});
	const {stderr} = await runWith({quiet: true, stat: true});
	assert.match(stderr, /^.*: in sync\nsize /);
	assert.not.match(stderr, /warning/);
});
create('should print the JSON summary on stdout with --json, and warnings only on stderr', async () => {
	const {stdout, stderr} = await runWith({json: true});
	assert.equal(JSON.parse(stdout), summary());
	assert.is(stderr, 'rblocksync: warning: native helper not built\n');
});
create('should keep stderr pure NDJSON with --json-progress', async () => {
	const {stderr} = await runWith({jsonProgress: true});
	const events = stderr.trimEnd().split('\n').map(line => (JSON.parse(line) as {event: string}).event);
	assert.equal(events, ['start', 'warning', 'finish']);
});
create.run();
