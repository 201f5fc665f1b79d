// End to end under a real terminal: the built CLI syncs a generated image in tmux while the test reads the screen.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {execFileSync} from 'node:child_process';
import {closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {writeImage} from './helpers/image.js';
import {type Pane, readWhenWritten, startPane, tmuxProblem, waitFor} from './helpers/tmux.js';
import {skip} from '../helpers/skip.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/cli.js');
/** Big enough that two workers are seen running for a while (about 2-3 s here); RBS_TUI_E2E_MIB overrides. */
const SIZE = Number(process.env['RBS_TUI_E2E_MIB'] ?? 2048) * 1024 * 1024;

const problem = tmuxProblem();
const dir = mkdtempSync(join(tmpdir(), 'rbs-tui-e2e-'));
const src = join(dir, 'src.img');
let pane: Pane | undefined;

/** Runs the CLI in a 100×30 pane; the shell then records the exit status and the terminal modes, and waits. */
function startSync(dst: string, extra = ''): Pane {
	const script = [
		`cd '${dir}'`,
		`'${process.execPath}' '${cli}' --workers 2 ${extra} '${src}' '${dst}' --truncate`,
		`echo $? > '${dst}.status'`,
		`stty -a > '${dst}.stty'`,
		'exec sleep 600',
	].join('; ');
	pane = startPane(script, 100, 30);
	return pane;
}

/** Both worker rows on screen at once, each with the spinner ('line' frames) rather than the done mark. */
function twoLiveRows(screen: string): string | undefined {
	const live = (id: number) => new RegExp(`^[-\\\\|/] worker ${id} .*\\d+\\.\\d%`, 'm').test(screen);
	return live(1) && live(2) ? screen : undefined;
}

const e2e = suite('TUI in a real terminal (tmux)');
e2e.before(() => {
	if (!problem) {
		writeImage(src, SIZE);
	}
});
e2e.after.each(() => {
	pane?.kill();
	pane = undefined;
});
e2e.after(() => rmSync(dir, {recursive: true, force: true}));

e2e('should show two live worker rows while syncing, survive a resize, then leave the summary', async context => {
	if (problem) {
		return skip(context, problem);
	}
	const dst = join(dir, 'dst.img');
	const p = startSync(dst);
	// Past the first frames (every row at 0.0%, ETA --:--), which a loaded machine can show for a while.
	const live = await waitFor('two live worker rows and an ETA', 20_000, () => {
		const screen = twoLiveRows(p.capture());
		return screen && /ETA \d+:\d\d/.test(screen) ? screen : undefined;
	});
	assert.match(live, /^syncing .*src\.img → .*dst\.img$/m);
	assert.match(live, /^\d+\.\d GiB {2}block 4\.0 KiB {2}blake3 {2}2 workers {2}local$/m);
	assert.match(live, /^ {2}total .*\d+\.\d%/m);
	assert.match(live, /ETA \d+:\d\d/);
	// Narrower: the frame is redrawn for 60 columns with nothing left over from the wide one.
	p.resize(60, 30);
	const status = await waitFor('the exit status', 30_000, () => readWhenWritten(`${dst}.status`));
	const screen = p.capture();
	assert.is(status.trim(), '0', screen);
	assert.match(screen, /^✓ worker 1 /m);
	assert.match(screen, /^✓ worker 2 /m);
	assert.match(screen, /^✓ in sync$/m);
	assert.match(screen, /^blocks {5}\d+ total, \d+ scanned,/m);
	assert.match(screen, /^written {4}/m);
	assert.match(screen, /^wire sent {2}0 B/m);
	assert.match(screen, /^bandwidth {2}wire 0 B\/s, effective /m);
	assert.is(screen.match(/^syncing /gm)?.length, 1, `one header on screen after the resize:\n${screen}`);
	for (const line of screen.split('\n')) {
		assert.ok([...line].length <= 60, line);
	}
	assert.is(p.format('cursor_flag'), '1', 'cursor visible');
	execFileSync('cmp', [src, dst]);
});

e2e('should stop on Ctrl-C with exit 130, say DST may be partially updated, and restore the terminal', async context => {
	if (problem) {
		return skip(context, problem);
	}
	const dst = join(dir, 'dst-interrupted.img');
	const p = startSync(dst);
	await waitFor('two live worker rows', 20_000, () => twoLiveRows(p.capture()));
	p.keys('C-c');
	const status = await waitFor('the exit status', 30_000, () => readWhenWritten(`${dst}.status`));
	const screen = p.capture();
	assert.is(status.trim(), '130', screen);
	assert.match(screen, /^✗ interrupted; DST may be partially updated$/m);
	assert.match(screen, /^rblocksync: interrupted; DST may be partially updated$/m);
	assert.match(screen, /^✗ worker \d /m, 'an unfinished worker is marked');
	const stty = readFileSync(`${dst}.stty`, 'utf8');
	assert.match(stty, /(^|\s)icanon(\s|$)/, 'canonical mode (no raw mode left)');
	assert.match(stty, /(^|\s)echo(\s|$)/, 'echo on');
	assert.match(stty, /(^|\s)isig(\s|$)/, 'signals on');
	assert.is(p.format('cursor_flag'), '1', 'cursor visible');
});

e2e('should exit at once on a second Ctrl-C, the message below an intact last frame (fake engine stuck in its flush)', async context => {
	if (problem) {
		return skip(context, problem);
	}
	const status = join(dir, 'stall.status');
	const fixture = join(root, 'test/ui/fixtures/fake-sync.ts');
	const p = startPane(`cd '${root}'; '${process.execPath}' --import tsx '${fixture}' 30 2 --stall; echo $? > '${status}'; exec sleep 600`, 100, 30);
	pane = p;
	await waitFor('two live worker rows', 20_000, () => twoLiveRows(p.capture()));
	p.keys('C-c');
	await waitFor('the stopping line', 5000, () => (/stopping the workers/.test(p.capture()) ? true : undefined));
	p.keys('C-c');
	assert.is((await waitFor('the exit status', 10_000, () => readWhenWritten(status))).trim(), '130');
	const screen = p.capture().trimEnd();
	assert.is(screen.match(/^syncing /gm)?.length, 1, screen);
	// The terminal echoes the second ^C where the cursor rests, just before the message.
	assert.match(screen, /interrupted: stopping the workers and flushing DST…\n(\^C)?rblocksync: interrupted twice; exiting without flushing DST$/, screen);
	assert.is(p.format('cursor_flag'), '1', 'cursor visible');
});

e2e('should show a row per file and the total over a -r tree, then each file once with its result and the closing line', async context => {
	if (problem) {
		return skip(context, problem);
	}
	const tree = join(dir, 'tree');
	const out = join(dir, 'tree-out');
	mkdirSync(join(tree, 'sub dir'), {recursive: true});
	writeImage(join(tree, 'a.img'), 384 * 1024 * 1024);
	writeImage(join(tree, 'b.img'), 384 * 1024 * 1024);
	writeImage(join(tree, 'sub dir', 'näme.img'), 16 * 1024 * 1024);
	writeFileSync(join(tree, 'empty.img'), '');
	const script = [
		`cd '${dir}'`,
		`'${process.execPath}' '${cli}' --workers 2 -r '${tree}/' '${out}/'`,
		`echo $? > '${out}.status'`,
		'exec sleep 600',
	].join('; ');
	const p = startPane(script, 100, 30);
	pane = p;
	const live = await waitFor('a live file row', 30_000, () => {
		const screen = p.capture();
		return /^[-\\|/] [ab]\.img +\S+ +\d+\.\d% \S+ \S+ \/ 384 MiB/m.test(screen) ? screen : undefined;
	});
	assert.match(live, /^ {2}total +\S+ +\d+\.\d% .* \/ 784 MiB/m);
	assert.match(live, /^ {2}\d\/4 files {2}ETA /m);
	const status = await waitFor('the exit status', 60_000, () => readWhenWritten(`${out}.status`));
	const screen = p.capture();
	assert.is(status.trim(), '0', screen);
	for (const name of ['a.img', 'b.img', 'sub dir/näme.img', 'empty.img']) {
		const line = new RegExp(`^✓ ${name.replace('.', '\\.')}: in sync, `, 'gm');
		assert.is(screen.match(line)?.length, 1, `${name} once in\n${screen}`);
		execFileSync('cmp', [join(tree, name), join(out, name)]);
	}
	assert.match(screen, /^4 files, 784 MiB: \d+ blocks changed, /m);
	// The live rows are gone: no spinner row, no total row left on the screen.
	assert.not.match(screen, /^ {2}total /m);
	assert.not.match(screen, /^[-\\|/] \S+\.img /m);
});

e2e('should show --watch in the TUI: the first pass, a row waiting for changes, a changed file synced in a pass of its own, Ctrl-C 130', async context => {
	if (problem) {
		return skip(context, problem);
	}
	const tree = join(dir, 'watched');
	const out = join(dir, 'watched-out');
	mkdirSync(join(tree, 'sub'), {recursive: true});
	writeImage(join(tree, 'a.img'), 8 * 1024 * 1024);
	writeImage(join(tree, 'sub', 'b.img'), 4 * 1024 * 1024);
	const script = [
		`cd '${dir}'`,
		`'${process.execPath}' '${cli}' --workers 2 -r --watch --debounce 0.5 '${tree}/' '${out}/'`,
		`echo $? > '${out}.status'`,
		'exec sleep 600',
	].join('; ');
	const p = startPane(script, 100, 30);
	pane = p;
	const waiting = new RegExp(`^[-\\\\|/] waiting for changes under ${tree}/ \\(Ctrl-C ends\\)$`, 'm');
	const first = await waitFor('the first pass and the waiting row', 60_000, () => {
		const screen = p.capture();
		return /^2 files, [\d.]+ MiB: /m.test(screen) && waiting.test(screen) ? screen : undefined;
	});
	assert.match(first, /^✓ a\.img: /m);
	assert.match(first, /^✓ sub\/b\.img: /m);
	execFileSync('cmp', [join(tree, 'a.img'), join(out, 'a.img')]);
	// A write to one file: once quiet for the debounce, a pass of its own (its line, its closing line), then waiting again.
	const fd = openSync(join(tree, 'a.img'), 'r+');
	writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 5 * 1024 * 1024);
	closeSync(fd);
	const second = await waitFor('the changed file\'s pass', 60_000, () => {
		const screen = p.capture();
		return screen.match(/^✓ a\.img: in sync, /gm)?.length === 2 && /^1 file, [\d.]+ MiB: 1 blocks? changed, /m.test(screen) && waiting.test(screen) ? screen : undefined;
	});
	assert.is(second.match(/^✓ sub\/b\.img: /gm)?.length, 1, second);
	execFileSync('cmp', [join(tree, 'a.img'), join(out, 'a.img')]);
	p.keys('C-c');
	const status = await waitFor('the exit status', 30_000, () => readWhenWritten(`${out}.status`));
	const screen = p.capture();
	assert.is(status.trim(), '130', screen);
	// The live rows are gone: no waiting row, no total row left on the screen.
	assert.not.match(screen, waiting);
	assert.not.match(screen, /^ {2}total /m);
});

e2e.run();
