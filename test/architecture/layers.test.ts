import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {importGraph, roomCycles, violations} from './layers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const layers = suite('layers');

layers('should find no import into a room that may not use it, in source/ and in dist/', () => {
	for (const dir of ['source', 'dist']) {
		// dist/ may hold stale output of moved modules: only what source/ still has counts.
		const current = (file: string): boolean => dir === 'source' || ['.ts', '.tsx'].some(ext => fs.existsSync(path.join(root, 'source', file.replace(/\.js$/, ext))));
		const edges = importGraph(path.join(root, dir)).filter(edge => !edge.from.startsWith('bundle/') && current(edge.from));
		assert.ok(edges.length > 100, `${dir}: only ${edges.length} imports found; is the tree built?`);
		assert.equal(violations(edges), [], dir);
		assert.equal(roomCycles(edges), [], dir);
	}
});

layers('should fail on an upward import and on a cycle between rooms', () => {
	const upward = [{from: 'image/local-image.ts', to: 'engine/run-sync.ts'}];
	assert.equal(violations(upward), ['image/local-image.ts (image) imports engine/run-sync.ts (engine), which image may not import']);
	const cycle = [{from: 'agent/agent-core.ts', to: 'remote/link.ts'}, {from: 'remote/link.ts', to: 'agent/agent-core.ts'}];
	assert.equal(roomCycles(cycle), [['agent', 'remote', 'agent']]);
	assert.equal(violations([{from: 'errors.ts', to: 'engine/x.ts'}]), ['errors.ts is a base module but imports engine/x.ts']);
	assert.equal(violations([{from: 'main.ts', to: 'engine/run-sync.ts'}, {from: 'engine/a.ts', to: 'errors.ts'}]), []);
});

layers.run();
