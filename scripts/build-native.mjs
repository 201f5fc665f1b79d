// npm install hook: builds the native helper (holes, SEEK_DATA, locks, SIMD BLAKE3) with a plain C compiler ($CC, else cc)
// against the vendored Node-API headers; no node-gyp. On any failure it prints one warning line and
// exits 0: the tool still works without the helper (it writes zeros instead of punching holes).
// With --if-stale (`npm run build`) it builds only when the helper is missing or older than a file of native/, so a
// worktree whose helper predates a change of the C code (zstd, a BLAKE3 fix) does not test and bench the old one.
import {spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync} from 'node:fs';
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
// BLAKE3: the official C code (native/blake3), its SIMD kernels picked at run time by CPU features.
const blake3 = ['blake3.c', 'blake3_dispatch.c', 'blake3_portable.c'];
const blake3Flags = [];
if (process.arch === 'x64') {
	blake3.push('blake3_sse2_x86-64_unix.S', 'blake3_sse41_x86-64_unix.S', 'blake3_avx2_x86-64_unix.S', 'blake3_avx512_x86-64_unix.S');
} else if (process.arch === 'arm64') {
	blake3.push('blake3_neon.c');
	blake3Flags.push('-DBLAKE3_USE_NEON=1');
} else {
	blake3Flags.push('-DBLAKE3_NO_SSE2', '-DBLAKE3_NO_SSE41', '-DBLAKE3_NO_AVX2', '-DBLAKE3_NO_AVX512');
}
const sources = [join(root, 'native/rblocksync_native.c'), ...blake3.map(name => join(root, 'native/blake3', name))];
if (process.argv.includes('--if-stale') && existsSync(out)) {
	const built = statSync(out).mtimeMs;
	const inputs = readdirSync(join(root, 'native'), {recursive: true}).map(name => join(root, 'native', String(name)));
	if (inputs.every(file => statSync(file).mtimeMs <= built)) {
		process.exit(0);
	}
}
const args = [...ccArgs, '-O3', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', ...blake3Flags, `-I${join(root, 'native/include')}`, ...sources, '-ldl', '-o', tmp];
const result = spawnSync(cc, args, {encoding: 'utf8'});
if (result.error || result.status !== 0) {
	rmSync(tmp, {force: true});
	const firstError = result.stderr?.split('\n').find(line => /error/i.test(line)) ?? result.stderr?.trim().split('\n')[0];
	warn(result.error ? `${cc}: ${result.error.message}` : `${cc} exited ${result.status}${firstError ? `: ${firstError.trim()}` : ''}`);
}
renameSync(tmp, out);
if (process.argv.includes('--if-stale')) {
	console.log('rblocksync: native helper rebuilt (native/ was newer than build/Release/rblocksync_native.node)');
}
