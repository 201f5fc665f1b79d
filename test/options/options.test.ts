import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {defaultWorkers, parseSize, resolveOptions} from '../../source/options.js';
import {UsageError} from '../../source/errors.js';

const resolve = suite('resolveOptions');

function message(input: string[], flags: Parameters<typeof resolveOptions>[1]): string {
	try {
		resolveOptions(input, flags, 4);
	} catch (error) {
		assert.instance(error, UsageError);
		return (error as Error).message;
	}
	throw new Error('expected a UsageError');
}

resolve('should apply the documented defaults', () => {
	const options = resolveOptions(['a.img', 'b.img'], {}, 4);
	assert.is(options.blockSize, 4096);
	assert.is(options.workers, 4);
	assert.is(options.hash, 'blake3');
	assert.equal(options.compress, {mode: 'auto', level: 1});
	assert.is(options.truncate, false);
	assert.equal(options.src, {kind: 'local', path: 'a.img'});
});

resolve('should choose the progress mode here: tui on a terminal, plain elsewhere, none for -q/--json, --progress first', () => {
	assert.is(resolveOptions(['a', 'b'], {}, 4, {}, true).progress, 'tui');
	assert.is(resolveOptions(['a', 'b'], {}, 4, {}, false).progress, 'plain');
	assert.is(resolveOptions(['a', 'b'], {json: true}, 4, {}, true).progress, 'none');
	assert.is(resolveOptions(['a', 'b'], {quiet: true, progress: 'plain'}, 4, {}, true).progress, 'plain');
});

resolve('should read the RBLOCKSYNC_* knobs from the environment it is given', () => {
	const options = resolveOptions(['a', 'pve:b'], {}, 4, {RBLOCKSYNC_TRACE: '1', RBLOCKSYNC_LOCAL_THREADS: '0', RBLOCKSYNC_REMOTE_AGENT: 'upload', RBLOCKSYNC_SSH_KEEPALIVE_MS: '500'}, false);
	assert.equal([options.trace, options.localThreads, options.uploadAgent, options.keepaliveMs], [true, false, true, 500]);
	const plain = resolveOptions(['a', 'pve:b'], {}, 4, {}, false);
	assert.equal([plain.trace, plain.localThreads, plain.uploadAgent, plain.keepaliveMs], [false, true, false, 15_000]);
});

resolve('should cap the default worker count at 8', () => {
	assert.is(defaultWorkers(32), 8);
	assert.is(defaultWorkers(1), 1);
});

resolve('should accept sizes with K and M suffixes', () => {
	assert.is(resolveOptions(['a', 'b'], {blockSize: '64k'}).blockSize, 65_536);
	assert.is(resolveOptions(['a', 'b'], {blockSize: '1M'}).blockSize, 1_048_576);
	assert.is(resolveOptions(['a', 'b'], {blockSize: '512'}).blockSize, 512);
	assert.is(parseSize('16MiB'), 16 * 1024 * 1024);
	assert.ok(Number.isNaN(parseSize('4 gallons')));
});

resolve('should say exactly what is wrong with each bad input', () => {
	assert.is(message(['a'], {}), 'expected SRC and DST; see rblocksync --help');
	assert.is(message(['a', 'b', 'c'], {delete: true, recursive: true}), '--delete takes one SRC directory; got 2');
	assert.is(message(['a', 'b'], {delete: true}), '--delete applies to trees: add -r');
	assert.is(message(['a', 'b'], {filter: ['+*.img']}), '--include and --exclude apply to trees: add -r');
	assert.is(message(['a', 'b'], {watch: true}), '--watch watches a local SRC tree: add -r, with a local SRC');
	assert.is(message(['h:/a', 'b'], {watch: true, recursive: true}), '--watch watches a local SRC tree: add -r, with a local SRC');
	assert.is(message(['a', 'b'], {debounce: '1'}), '--debounce applies to --watch');
	assert.is(message(['a', 'b'], {debounce: 'x', watch: true, recursive: true}), '--debounce must be a number of seconds above 0; got x');
	assert.is(message(['a', 'b'], {blockSize: '1000'}), '--block-size must be a power of two from 512 to 16777216 bytes (16 MiB); got 1000');
	assert.is(message(['a', 'b'], {blockSize: '256'}), '--block-size must be a power of two from 512 to 16777216 bytes (16 MiB); got 256');
	assert.is(message(['a', 'b'], {blockSize: '32M'}), '--block-size must be a power of two from 512 to 16777216 bytes (16 MiB); got 32M');
	assert.is(message(['a', 'b'], {workers: '0'}), '--workers must be a whole number from 1 to 64; got 0');
	assert.is(message(['a', 'b'], {workers: '2.5'}), '--workers must be a whole number from 1 to 64; got 2.5');
	assert.is(message(['a', 'b'], {hash: 'md5'}), '--hash must be blake3 or sha256; got md5');
	assert.is(message(['a', 'b'], {progress: 'fancy'}), '--progress must be tui, plain or none; got fancy');
	assert.is(message(['a', 'b'], {copy: true, dryRun: true}), '--copy and --dry-run cannot be combined: --copy does not read DST, so there is nothing to compare');
	assert.is(message(['a', 'b'], {verify: true, dryRun: true}), '--verify and --dry-run cannot be combined: a dry run writes nothing to verify');
	assert.is(message(['a', 'b'], {copy: true, check: true}), '--copy and --check cannot be combined: --copy does not read DST, so there is nothing to compare');
	assert.is(message(['a', 'b'], {verify: true, check: true}), '--verify and --check cannot be combined: --check writes nothing to verify');
	assert.is(message(['h:/a', 'b'], {compress: '0'}), '--compress must be auto, off or a level from 1 to 19; got 0');
	assert.is(message(['h:/a', 'b'], {port: '70000'}), '--port must be a number from 1 to 65535; got 70000');
	assert.is(message(['h:/a', 'b'], {compress: '20'}), '--compress must be auto, off or a level from 1 to 19; got 20');
	assert.is(message(['a', 'b'], {port: '22'}), '--port and --identity apply to remote endpoints; SRC and DST are both local');
	assert.is(message(['h:/a', 'b'], {bwlimit: '100b'}), '--bwlimit must be a rate such as 500K, 20M or 1G bytes per second (at least 1K; 0: no limit); got 100b');
	assert.is(message(['h:/a', 'b'], {bwlimit: 'fast'}), '--bwlimit must be a rate such as 500K, 20M or 1G bytes per second (at least 1K; 0: no limit); got fast');
	assert.is(message(['a', 'b'], {bwlimit: '1M'}), '--bwlimit applies to remote endpoints; SRC and DST are both local');
	assert.is(resolveOptions(['h:/a', 'b'], {bwlimit: '20M'}).bwlimit, 20 * 1024 * 1024);
	assert.is(resolveOptions(['h:/a', 'b'], {}).bwlimit, 0);
	assert.is(message(['a', 'h:/b'], {cacheDir: ''}), '--cache-dir must name a directory on DST\'s host; got ""');
	assert.is(message(['a', 'h:/b'], {cache: false, cacheDir: '/c'}), '--no-cache cannot be combined with --cache-dir, --trust-cache or --cache-sample');
	assert.is(message(['a', 'h:/b'], {cache: false, trustCache: true}), '--no-cache cannot be combined with --cache-dir, --trust-cache or --cache-sample');
	assert.is(message(['a', 'h:/b'], {cacheSample: '5'}), '--cache-sample applies with --trust-cache (the chunks of a block device\'s cache read and checked every run)');
	assert.is(message(['a', 'h:/b'], {trustCache: true, cacheSample: '0'}), '--cache-sample must be a percentage of the chunks, above 0 and at most 100; got 0');
	assert.is(message(['a', 'h:/b'], {trustCache: true, cacheSample: '101'}), '--cache-sample must be a percentage of the chunks, above 0 and at most 100; got 101');
	assert.is(message(['a', 'h:/b'], {trustCache: true, cacheSample: '1%'}), '--cache-sample must be a percentage of the chunks, above 0 and at most 100; got 1%');
	assert.is(resolveOptions(['a', 'h:/b'], {trustCache: true}).trustCache, 1);
	assert.is(resolveOptions(['a', 'h:/b'], {trustCache: true, cacheSample: '0.5'}).trustCache, 0.5);
	assert.is(resolveOptions(['a', 'h:/b'], {}).trustCache, undefined);
	assert.is(resolveOptions(['a', 'h:/b'], {cacheDir: 'rel/dir'}).cacheDir, 'rel/dir');
	assert.is(message(['a', 'b'], {remoteSudo: true}), '--remote-sudo and --remote-command apply to remote endpoints; SRC and DST are both local');
	assert.is(message(['h:/a', 'b'], {remoteCommand: ' '}), '--remote-command must be a command on one line, such as /opt/rblocksync/bin/rblocksync; got an empty or multi-line value');
	assert.equal(resolveOptions(['h:/a', 'b'], {remoteSudo: true, remoteCommand: ' /opt/rbs/rblocksync '}).remoteAgent, {sudo: true, command: '/opt/rbs/rblocksync'});
	assert.equal(resolveOptions(['h:/a', 'b'], {}).remoteAgent, {sudo: false});
	assert.is(message(['host:', 'b'], {}), 'SRC host:: empty path after the host');
	assert.is(message(['a', 'ssh://h'], {}), 'DST ssh://h: an ssh:// URL needs a path after the host');
	assert.is(message(['user@[::1/tmp/x', 'b'], {}), 'SRC user@[::1/tmp/x: unclosed [ in the host (write [2001:db8::1]:path, or ./user@[::1/tmp/x for a local file)');
	assert.is(message(['a', '@pve:/x'], {}), 'DST @pve:/x: empty user name before @');
});

resolve('should make --check a dry run, and leave it off otherwise', () => {
	const check = resolveOptions(['a', 'b'], {check: true}, 4);
	assert.equal([check.check, check.dryRun], [true, true]);
	const dryRun = resolveOptions(['a', 'b'], {dryRun: true}, 4);
	assert.equal([dryRun.check, dryRun.dryRun], [false, true]);
	assert.equal(resolveOptions(['a', 'b'], {check: true, dryRun: true}, 4).check, true);
	assert.is(resolveOptions(['a', 'b'], {}, 4).check, false);
});

resolve('should take -z without a level as level 1, a level up to 19, auto and off', () => {
	assert.equal(resolveOptions(['h:/a', 'b'], {compress: ''}).compress, {mode: 'on', level: 1});
	assert.equal(resolveOptions(['h:/a', 'b'], {compress: '6'}).compress, {mode: 'on', level: 6});
	assert.equal(resolveOptions(['h:/a', 'b'], {compress: '19'}).compress, {mode: 'on', level: 19});
	assert.equal(resolveOptions(['h:/a', 'b'], {compress: 'auto'}).compress, {mode: 'auto', level: 1});
	assert.equal(resolveOptions(['h:/a', 'b'], {compress: 'off'}).compress, {mode: 'off', level: 0});
});

resolve('should take --src-format and --dst-format, --format for both, each side overriding it', () => {
	const none = resolveOptions(['a', 'b'], {}, 4);
	assert.is(none.srcFormat, undefined);
	assert.is(none.dstFormat, undefined);
	const both = resolveOptions(['a', 'b'], {format: 'qcow2'}, 4);
	assert.equal([both.srcFormat, both.dstFormat], ['qcow2', 'qcow2']);
	const mixed = resolveOptions(['a', 'b'], {format: 'qcow2', dstFormat: 'raw'}, 4);
	assert.equal([mixed.srcFormat, mixed.dstFormat], ['qcow2', 'raw']);
	assert.is(resolveOptions(['a', 'b'], {srcFormat: 'vmdk'}, 4).dstFormat, undefined);
});

resolve('should refuse a format that is not a name', () => {
	assert.is(message(['a', 'b'], {srcFormat: 'QCOW2'}), '--src-format must be a format name such as raw or qcow2 (see qemu-img --help); got QCOW2');
	assert.is(message(['a', 'b'], {format: 'raw,x'}), '--format must be a format name such as raw or qcow2 (see qemu-img --help); got raw,x');
	assert.is(message(['a', 'b'], {dstFormat: ''}), '--dst-format must be a format name such as raw or qcow2 (see qemu-img --help); got ');
});

resolve('should take --qmp for SRC\'s running VM and --force-share for a formatted SRC, refusing what does not combine', () => {
	const live = resolveOptions(['root@pve:/dev/pve/vm-100-disk-0', 'vm.raw'], {qmp: '/var/run/qemu-server/100.qmp'}, 4);
	assert.is(live.qmp, '/var/run/qemu-server/100.qmp');
	assert.is(live.forceShare, false);
	assert.is(resolveOptions(['a', 'b'], {srcFormat: 'qcow2', forceShare: true}, 4).forceShare, true);
	assert.is(message(['a', 'b'], {qmp: ''}), '--qmp needs the running VM\'s QMP socket (Proxmox VE: /var/run/qemu-server/VMID.qmp)');
	assert.is(message(['a', 'b'], {qmp: '/q', srcFormat: 'qcow2'}), '--qmp and --src-format/--format cannot be combined: the VM exports its disk as the guest sees it, whatever its format');
	assert.is(message(['a', 'b'], {qmp: '/q', format: 'qcow2'}), '--qmp and --src-format/--format cannot be combined: the VM exports its disk as the guest sees it, whatever its format');
	assert.is(message(['a', 'b'], {qmp: '/q', forceShare: true}), '--qmp and --force-share cannot be combined: with --qmp the VM exports its disk itself, no lock is passed');
	assert.is(message(['a', 'b'], {qmp: '/q', recursive: true}), '--qmp takes one SRC, a disk of that VM');
	assert.is(message(['a', 'b', 'c/'], {qmp: '/q'}), '--qmp takes one SRC, a disk of that VM');
	assert.is(message(['a', 'b'], {bitmap: 'b0', recursive: true}), '--bitmap takes one SRC (a qcow2 image, --src-format qcow2) and one DST, not several files or a tree');
	assert.is(message(['a', 'b', 'c/'], {bitmap: 'b0'}), '--bitmap takes one SRC (a qcow2 image, --src-format qcow2) and one DST, not several files or a tree');
	assert.is(message(['a', 'c/'], {bitmap: 'b0'}), '--bitmap takes one SRC (a qcow2 image, --src-format qcow2) and one DST, not several files or a tree');
	assert.is(message(['a', 'b'], {forceShare: true}), '--force-share applies to a SRC read through qemu-nbd (--src-format qcow2, ...); a raw SRC is read without QEMU\'s locks');
	assert.is(message(['a', 'b'], {forceShare: true, srcFormat: 'raw'}), '--force-share applies to a SRC read through qemu-nbd (--src-format qcow2, ...); a raw SRC is read without QEMU\'s locks');
});

resolve.run();
