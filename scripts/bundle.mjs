#!/usr/bin/env node
// Bundles the compiled program into single files under dist/bundle/ (for the Debian package and the
// remote agent): rblocksync.mjs (the CLI; ink and react are bundled but only evaluated for the TUI),
// rblocksync-agent.mjs (the remote side: must not contain ink or react), rblocksync-worker.mjs (the
// engine's worker threads), and the native helper beside them.
import {build} from 'esbuild';
import {copyFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {join} from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist/bundle');
mkdirSync(out, {recursive: true});

// CommonJS dependencies (ssh2, blake3-wasm) call require(); give the ESM bundle one.
const banner = {js: "import {createRequire as __rbsCreateRequire} from 'node:module'; const require = __rbsCreateRequire(import.meta.url);"};
const common = {bundle: true, platform: 'node', format: 'esm', target: 'node18', banner, logLevel: 'warning', legalComments: 'none'};

// ink imports react-devtools-core (not installed) for DEV=true only: bundle an empty stand-in.
const stubDevtools = {
	name: 'stub-react-devtools-core',
	setup(b) {
		b.onResolve({filter: /^react-devtools-core$/}, () => ({path: 'react-devtools-core', namespace: 'stub'}));
		b.onLoad({filter: /.*/, namespace: 'stub'}, () => ({contents: 'export default {connectToDevTools() {}};'}));
	},
};
await build({...common, entryPoints: [join(root, 'dist/cli.js')], outfile: join(out, 'rblocksync.mjs'), plugins: [stubDevtools]});
await build({...common, entryPoints: [join(root, 'dist/agent/entry.js')], outfile: join(out, 'rblocksync-agent.mjs')});
// The engine's worker threads load this file from beside the bundle (see source/engine/pool.ts).
await build({...common, entryPoints: [join(root, 'dist/engine/worker.js')], outfile: join(out, 'rblocksync-worker.mjs')});

const agent = readFileSync(join(out, 'rblocksync-agent.mjs'), 'utf8');
if (/from ["']react["']|react-reconciler|createElement\(Box/.test(agent)) {
	throw new Error('the agent bundle pulled in react or ink');
}
const addon = join(root, 'build/Release/rblocksync_native.node');
if (existsSync(addon)) {
	copyFileSync(addon, join(out, 'rblocksync_native.node'));
}
