import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {type FilterRule, PathFilter} from '../../source/tree/glob.js';
import {badRelativePath, baseName, type EntryKind, joinPath, planTree, type TreeEntry, workersFor, worstExitCode} from '../../source/tree/plan.js';
import {splitArgv} from '../../source/argv.js';
import {resolveOptions} from '../../source/options.js';

const glob = suite('include/exclude (rsync-style)');

const rules = (...specs: string[]): PathFilter => new PathFilter(specs.map((spec): FilterRule => ({include: spec.startsWith('+'), pattern: spec.slice(1)})));

glob('should match a slashless pattern against the name in any directory', () => {
	const filter = rules('-*.tmp');
	assert.not.ok(filter.includes('a.tmp', false));
	assert.not.ok(filter.includes('x/y/a.tmp', false));
	assert.ok(filter.includes('a.tmpx', false));
	assert.ok(filter.includes('a.img', false));
});

glob('should let the first matching rule decide, and include what no rule matches', () => {
	const filter = rules('+keep.tmp', '-*.tmp');
	assert.ok(filter.includes('keep.tmp', false));
	assert.not.ok(filter.includes('drop.tmp', false));
	const onlyQcow = rules('+*/', '+*.qcow2', '-*');
	assert.ok(onlyQcow.includesWithParents('vm/disk.qcow2', false));
	assert.not.ok(onlyQcow.includesWithParents('vm/disk.raw', false));
	const reversed = rules('-*.tmp', '+keep.tmp');
	assert.not.ok(reversed.includes('keep.tmp', false));
});

glob('should anchor a leading slash at the root, match a slashed pattern at a component boundary, * within and ** across', () => {
	assert.not.ok(rules('-/a.img').includes('a.img', false));
	assert.ok(rules('-/a.img').includes('sub/a.img', false));
	assert.not.ok(rules('-sub/*.img').includes('x/sub/a.img', false));
	assert.ok(rules('-sub/*.img').includes('xsub/a.img', false));
	assert.ok(rules('-sub/*.img').includes('sub/deep/a.img', false));
	assert.not.ok(rules('-sub/**.img').includes('sub/deep/a.img', false));
	assert.not.ok(rules('-disk-?.img').includes('disk-1.img', false));
	assert.ok(rules('-disk-?.img').includes('disk-10.img', false));
	assert.not.ok(rules('-disk-[0-3].img').includes('disk-2.img', false));
	assert.ok(rules('-disk-[!0-3].img').includes('disk-2.img', false));
	assert.not.ok(rules('-a.b').includes('a.b', false));
	assert.ok(rules('-a.b').includes('axb', false), 'a dot is a dot');
});

glob('should apply a trailing-slash pattern to directories only, and prune what is under an excluded directory', () => {
	const filter = rules('-cache/');
	assert.ok(filter.includes('cache', false));
	assert.not.ok(filter.includes('cache', true));
	assert.not.ok(filter.includesWithParents('cache/a.img', false));
	assert.ok(filter.includesWithParents('other/a.img', false));
});

const plan = suite('planTree');

const entry = (path: string, kind: EntryKind = 'file', size = 4096): TreeEntry => ({path, kind, size, mode: 0o644, uid: 0, gid: 0, mtimeSec: 1, mtimeNsec: 2, stamp: `1:${path}`, changedMs: 0});

plan('should sync regular files, create directories parents first, and skip symlinks, devices and fifos', () => {
	const src = [entry('b.img'), entry('sub', 'dir'), entry('sub/deep', 'dir'), entry('sub/deep/c.img'), entry('link', 'symlink'), entry('dev', 'device'), entry('pipe', 'fifo'), entry('a.img')];
	const result = planTree(src, undefined, rules(), {delete: false});
	assert.equal(result.files.map(file => file.path), ['a.img', 'b.img', 'sub/deep/c.img']);
	assert.equal(result.dirs, ['sub', 'sub/deep']);
	assert.equal(result.skipped.map(s => `${s.path}:${s.kind}`), ['dev:device', 'link:symlink', 'pipe:fifo']);
	assert.equal(result.deletions, []);
});

plan('should put a SRCDIR without its trailing slash under its own name', () => {
	const result = planTree([entry('a.img'), entry('sub', 'dir'), entry('sub/b.img')], undefined, rules(), {delete: false, prefix: 'vm-100'});
	assert.equal(result.files.map(file => file.path), ['vm-100/a.img', 'vm-100/sub/b.img']);
	assert.equal(result.dirs, ['vm-100', 'vm-100/sub']);
});

plan('should delete only DST regular files SRC lacks, never symlinks, directories or excluded files', () => {
	const src = [entry('a.img'), entry('keep', 'dir')];
	const dst = [entry('a.img'), entry('gone.img'), entry('keep', 'dir'), entry('keep/old.img'), entry('out', 'symlink'), entry('olddir', 'dir'), entry('x.tmp')];
	const result = planTree(src, dst, rules('-*.tmp'), {delete: true});
	assert.equal(result.deletions, ['gone.img', 'keep/old.img']);
	assert.equal(planTree(src, dst, rules(), {delete: false}).deletions, []);
});

plan('should refuse a file whose DST is a symlink, a directory, or lies under a DST symlink', () => {
	const src = [entry('a.img'), entry('d.img'), entry('sub', 'dir'), entry('sub/b.img'), entry('ok.img')];
	const dst = [entry('a.img', 'symlink'), entry('d.img', 'dir'), entry('sub', 'symlink')];
	const result = planTree(src, dst, rules(), {delete: false});
	assert.equal(result.files.map(file => file.path), ['ok.img']);
	assert.equal(result.conflicts.map(c => c.path), ['a.img', 'd.img', 'sub', 'sub/b.img']);
	assert.match(result.conflicts[0]!.reason, 'a symlink in DST');
	assert.not.ok(result.dirs.includes('sub'));
});

plan('should ignore a listing entry that could name something outside its root', () => {
	for (const bad of ['../x', '/etc/passwd', 'a//b', 'a/./b', 'a/', '']) {
		assert.ok(badRelativePath(bad) !== undefined, bad);
	}
	assert.is(badRelativePath('with space/é ü.img'), undefined);
	const result = planTree([entry('../evil'), entry('good')], undefined, rules(), {delete: false});
	assert.equal(result.files.map(file => file.path), ['good']);
});

plan('should split big files into ranges and give small ones one worker each; name a device by its basename', () => {
	assert.is(workersFor(1024 * 1024, 8), 1);
	assert.is(workersFor(256 * 1024 * 1024, 8), 4);
	assert.is(workersFor(100 * 1024 ** 3, 8), 8);
	assert.is(workersFor(0, 8), 1);
	assert.is(baseName('/dev/pve/vm-100-disk-0'), 'vm-100-disk-0');
	assert.is(baseName('/srv/images/'), 'images');
	assert.is(joinPath('/dst/', 'a'), '/dst/a');
	assert.is(joinPath('/dst', 'a'), '/dst/a');
});

plan('should report the worst exit status: interrupted, I/O failure, verify mismatch, refusal, differs, ok', () => {
	assert.is(worstExitCode([]), 0);
	assert.is(worstExitCode([0, 1, 0]), 1);
	assert.is(worstExitCode([1, 2, 0]), 2);
	assert.is(worstExitCode([4, 1]), 1);
	assert.is(worstExitCode([3, 1]), 3);
	assert.is(worstExitCode([2, 130]), 130);
});

const argv = suite('--include/--exclude on the command line');

argv('should keep the rules in the order given, each option as often as wanted', () => {
	const split = splitArgv(['-r', '--include', '*.qcow2', '--exclude=*.tmp', '--include', 'x', 'src/', 'dst/']);
	assert.equal(split.options, ['--recursive', '--filter=+*.qcow2', '--filter=-*.tmp', '--filter=+x']);
	assert.equal(split.positional, ['src/', 'dst/']);
	const options = resolveOptions(split.positional, {recursive: true, filter: ['+*.qcow2', '-*.tmp']});
	assert.equal(options.filters, [{include: true, pattern: '*.qcow2'}, {include: false, pattern: '*.tmp'}]);
	assert.ok(options.intoDirectory);
});

argv('should read several SRCs, a trailing slash or -r as a DST directory, and two plain words as one file', () => {
	const many = resolveOptions(['a.img', 'pve:/b.img', 'dst'], {});
	assert.equal(many.sources.map(s => s.path), ['a.img', '/b.img']);
	assert.ok(many.intoDirectory);
	assert.ok(resolveOptions(['a.img', 'dst/'], {}).intoDirectory);
	assert.not.ok(resolveOptions(['a.img', 'b.img'], {}).intoDirectory);
});

argv('should not take --filter as an option of its own', () => {
	assert.throws(() => splitArgv(['--filter=+x', 'a', 'b']), /unknown option --filter/);
});

glob.run();
plan.run();
argv.run();

const record = suite('the tree\'s record (quick check)');

record('should skip a file only when both SRC\'s and DST\'s stamps are the recorded ones', async () => {
	const {parseRecord, unchangedSince, recordable, EMPTY_RECORD} = await import('../../source/tree/record.js');
	const kept = parseRecord(JSON.stringify({version: 1, files: {'a.img': {src: 's1', dst: 'd1'}, 'bad': {src: 1}}}));
	assert.ok(unchangedSince(kept, 'a.img', 's1', 'd1'));
	assert.not.ok(unchangedSince(kept, 'a.img', 's2', 'd1'), 'SRC written since');
	assert.not.ok(unchangedSince(kept, 'a.img', 's1', 'd2'), 'DST written since');
	assert.not.ok(unchangedSince(kept, 'a.img', 's1', undefined), 'DST gone');
	assert.not.ok(unchangedSince(kept, 'a.img', undefined, 'd1'), 'SRC stamp too recent to be recorded');
	assert.not.ok(unchangedSince(kept, 'bad', 's1', 'd1'));
	assert.not.ok(unchangedSince(kept, 'constructor', 's1', 'd1'));
	assert.equal(parseRecord('{not json'), EMPTY_RECORD);
	assert.equal(parseRecord(JSON.stringify({version: 2, files: {}})), EMPTY_RECORD);
	assert.ok(recordable(1000, 5000));
	assert.not.ok(recordable(4000, 5000), 'changed within 2 s of the listing');
});

record.run();
