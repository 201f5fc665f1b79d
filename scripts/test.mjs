#!/usr/bin/env node
// Builds, runs every test/**/*.test.ts(x) under uvu, lists the skipped tests with their reasons, and ends with the
// line CI reads: "N passed, N failed, N skipped" (a test that cannot run here skips through test/helpers/skip.ts).
// Usage: npm test [-- PATTERN]   (PATTERN: a regular expression matched against test file paths)
import {spawn, spawnSync} from 'node:child_process';
import {readdirSync} from 'node:fs';
import {join, relative} from 'node:path';
import {fileURLToPath} from 'node:url';
import {closingLines, countRun} from './test-summary.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const filter = process.argv[2] ? new RegExp(process.argv[2]) : undefined;

const build = spawnSync('npm', ['run', '--silent', 'build'], {cwd: root, stdio: 'inherit'});
// The tests are TypeScript too: type-check them (strict, like the sources) before running them.
const typecheck = build.status === 0 ? spawnSync('npx', ['tsc', '-p', 'tsconfig.test.json'], {cwd: root, stdio: 'inherit'}) : build;
if (build.status !== 0 || typecheck.status !== 0) {
	console.log(build.status !== 0 ? 'build failed' : 'type check of the tests failed');
	console.log('0 passed, 1 failed, 0 skipped');
	process.exit(1);
}

function findTests(dir) {
	const found = [];
	for (const entry of readdirSync(dir, {withFileTypes: true})) {
		const path = join(dir, entry.name);
		if (entry.isDirectory()) {
			found.push(...findTests(path));
		} else if (/\.test\.tsx?$/.test(entry.name)) {
			found.push(path);
		}
	}
	return found;
}

const files = findTests(join(root, 'test')).sort().filter(f => !filter || filter.test(relative(root, f)));
let passed = 0;
let failed = 0;
let skipped = 0;
const skips = [];
// One process per file: a crash or a leaked handle in one file cannot take the others down.
for (const file of files) {
	const name = relative(root, file);
	const result = await new Promise(resolve => {
		const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts/uvu-one.mjs'), file], {
			cwd: root,
			stdio: ['ignore', 'pipe', 'inherit'],
			env: {...process.env, FORCE_COLOR: '0'},
		});
		let out = '';
		child.stdout.on('data', chunk => {
			out += chunk;
			process.stdout.write(chunk);
		});
		child.on('close', code => resolve({code, out}));
	});
	const count = countRun(result.out, name);
	if (!count) {
		console.log(`\n${name}: crashed (exit ${result.code}) before its summary`);
		failed += 1;
		continue;
	}
	passed += count.passed;
	skipped += count.skipped;
	skips.push(...count.skips);
	failed += count.failed;
	if (result.code !== 0 && count.failed === 0) {
		console.log(`\n${name}: exit ${result.code} although every test passed`);
		failed += 1;
	}
}
console.log(`\n${files.length} test files`);
for (const line of closingLines({passed, failed, skipped, skips})) {
	console.log(line);
}
process.exit(failed > 0 ? 1 : 0);
