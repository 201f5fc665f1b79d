#!/usr/bin/env node
// Bundles the compiled program into single files under dist/bundle/ (for the Debian package and the
// remote agent): rblocksync.mjs (the CLI; ink and react are bundled but only evaluated for the TUI),
// rblocksync-agent.mjs (the remote side: must not contain ink or react), rblocksync-worker.mjs (the
// engine's worker threads), rblocksync-nbd-worker.mjs (an NBD image's client thread), and the native helper beside them.
import {build} from 'esbuild';
import {copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {join} from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist/bundle');
/** The CLI bundle's chunks: rblocksync-chunk-HASH.mjs. */
const CHUNK_PREFIX = 'rblocksync-chunk-';
mkdirSync(out, {recursive: true});

// CommonJS dependencies (ssh2, blake3-wasm) call require(); give the ESM bundle one.
// blake3-wasm's emscripten loader finds blake3.wasm through __dirname: give it the bundle's directory (the file is copied there).
const banner = {js: "import {createRequire as __rbsCreateRequire} from 'node:module'; import {fileURLToPath as __rbsPath} from 'node:url'; const require = __rbsCreateRequire(import.meta.url); const __filename = __rbsPath(import.meta.url); const __dirname = __rbsPath(new URL('.', import.meta.url));"};
// ssh2 and cpu-features try optional prebuilt .node bindings inside try/catch and fall back to JavaScript.
const common = {bundle: true, platform: 'node', format: 'esm', target: 'node18', banner, logLevel: 'warning', legalComments: 'none', external: ['*.node']};

// ink imports react-devtools-core (not installed) for DEV=true only: bundle an empty stand-in.
const stubDevtools = {
	name: 'stub-react-devtools-core',
	setup(b) {
		b.onResolve({filter: /^react-devtools-core$/}, () => ({path: 'react-devtools-core', namespace: 'stub'}));
		b.onLoad({filter: /.*/, namespace: 'stub'}, () => ({contents: 'export default {connectToDevTools() {}};'}));
	},
};
// The CLI is split at its dynamic imports: a run loads only what it uses (the TUI's ink and react, ssh2 for a host,
// the agent), instead of parsing all of it at every start (a single 3 MiB file: --version 0.21 s -> 0.16 s here).
// rblocksync-thread.mjs is the agent for the CLI's own worker threads, sharing the CLI's chunks (the uploaded
// rblocksync-agent.mjs is one file, evaluated in full at every start). The chunks are flat files beside it (debian/rules ships every file of dist/bundle/); a rebuild's old ones go first.
for (const name of readdirSync(out).filter(name => name.startsWith(CHUNK_PREFIX))) {
	rmSync(join(out, name));
}
await build({...common, entryPoints: {'rblocksync': join(root, 'dist/cli.js'), 'rblocksync-thread': join(root, 'dist/agent/entry.js')}, outdir: out, splitting: true, chunkNames: `${CHUNK_PREFIX}[hash]`, outExtension: {'.js': '.mjs'}, plugins: [stubDevtools]});
await build({...common, entryPoints: [join(root, 'dist/agent/entry.js')], outfile: join(out, 'rblocksync-agent.mjs')});
// The engine's worker threads load this file from beside the bundle (see source/engine/local-backend.ts).
await build({...common, entryPoints: [join(root, 'dist/engine/worker.js')], outfile: join(out, 'rblocksync-worker.mjs')});
// An NbdImage's client thread (a formatted endpoint: qcow2 through qemu-nbd) loads this file from beside the bundle (source/image/nbd-image.ts).
await build({...common, entryPoints: [join(root, 'dist/image/nbd-worker.js')], outfile: join(out, 'rblocksync-nbd-worker.mjs')});

const agent = readFileSync(join(out, 'rblocksync-agent.mjs'), 'utf8');
if (/from ["']react["']|react-reconciler|createElement\(Box/.test(agent)) {
	throw new Error('the agent bundle pulled in react or ink');
}
copyFileSync(join(root, 'node_modules/blake3-wasm/dist/wasm/blake3.wasm'), join(out, 'blake3.wasm'));
const addon = join(root, 'build/Release/rblocksync_native.node');
if (existsSync(addon)) {
	copyFileSync(addon, join(out, 'rblocksync_native.node'));
}
