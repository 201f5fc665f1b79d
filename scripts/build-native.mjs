// npm install hook: builds the native helper (holes, SEEK_DATA) with a plain C compiler ($CC, else cc)
// against the vendored Node-API headers; no node-gyp. On any failure it prints one warning line and
// exits 0: the tool still works without the helper (it writes zeros instead of punching holes).
import {spawnSync} from 'node:child_process';
import {mkdirSync, renameSync, rmSync} from 'node:fs';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'build/Release/rblocksync_native.node');

function warn(reason) {
	console.warn(`rblocksync: warning: native helper not built (${reason}); holes and block-device ioctls are unavailable`);
	process.exit(0);
}

if (process.platform !== 'linux') {
	warn(`${process.platform} is not Linux`);
}
// CC may carry arguments ("ccache gcc"), as make allows.
const [cc = 'cc', ...ccArgs] = (process.env.CC ?? '').trim().split(/\s+/).filter(Boolean);
mkdirSync(join(root, 'build/Release'), {recursive: true});
// Build beside, then rename: a process that has the old addon mapped keeps a valid file.
const tmp = `${out}.${process.pid}.tmp`;
const args = [...ccArgs, '-O2', '-fPIC', '-shared', '-Wall', `-I${join(root, 'native/include')}`, join(root, 'native/rblocksync_native.c'), '-o', tmp];
const result = spawnSync(cc, args, {encoding: 'utf8'});
if (result.error || result.status !== 0) {
	rmSync(tmp, {force: true});
	const firstError = result.stderr?.split('\n').find(line => /error/i.test(line)) ?? result.stderr?.trim().split('\n')[0];
	warn(result.error ? `${cc}: ${result.error.message}` : `${cc} exited ${result.status}${firstError ? `: ${firstError.trim()}` : ''}`);
}
renameSync(tmp, out);
