import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {quickStamp, type SourceVersion, STAMP_SETTLE_NS} from '../../source/image/source-version.js';

const test = suite("SRC's quick-check stamp");
const now = 1_700_000_000_000_000_000n;
const file: SourceVersion = {kind: 'file', dev: 2049n, ino: 77n, size: 8192, mtimeNs: now - 10_000_000_000n, ctimeNs: now - 5_000_000_000n};

test('should name the host, the file and its size, mtime and ctime', () => {
	assert.is(quickStamp(file, 'boot-a', now), `src:boot-a:2049:77:8192:${file.mtimeNs}:${file.ctimeNs}`);
	// The same inode on another host (another boot id) is another stamp.
	assert.is.not(quickStamp(file, 'boot-b', now), quickStamp(file, 'boot-a', now));
});

test('should give no stamp for a block device, without a boot id, or for a SRC written within the settle time', () => {
	assert.is(quickStamp({...file, kind: 'block', mtimeNs: undefined, ctimeNs: undefined}, 'boot-a', now), '');
	assert.is(quickStamp(file, undefined, now), '');
	assert.is(quickStamp({...file, ctimeNs: now - STAMP_SETTLE_NS + 1n}, 'boot-a', now), '', 'ctime within the settle time');
	assert.is(quickStamp({...file, mtimeNs: now - 1n}, 'boot-a', now), '', 'mtime within the settle time');
	assert.is(quickStamp({...file, ctimeNs: now + 60_000_000_000n}, 'boot-a', now), '', 'ctime ahead of the clock');
	assert.ok(quickStamp({...file, ctimeNs: now - STAMP_SETTLE_NS}, 'boot-a', now).startsWith('src:'));
});

test.run();
