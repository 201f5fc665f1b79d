import {readdirSync, readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';

const copyright = suite('debian/copyright');
const root = fileURLToPath(new URL('../..', import.meta.url));
const text = readFileSync(`${root}/debian/copyright`, 'utf8');
const paragraphs = text.split(/\n\s*\n/).map(paragraph => paragraph.trim()).filter(Boolean);

/** npm packages whose code is in the bundles: esbuild heads each module it inlines with a path comment. */
function bundledPackages(): string[] {
	const names = new Set<string>();
	for (const file of readdirSync(`${root}/dist/bundle`).filter(name => name.endsWith('.mjs'))) {
		const code = readFileSync(`${root}/dist/bundle/${file}`, 'utf8');
		for (const match of code.matchAll(/^\/\/ node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\//gm)) {
			names.add(match[1]!);
		}
	}
	return [...names].sort();
}

copyright('should list every npm package bundled into the program', () => {
	const listed = new Set([...text.matchAll(/node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\/\*/g)].map(match => match[1]));
	const bundled = bundledPackages();
	assert.ok(bundled.length > 0, 'no npm package found in dist/bundle/*.mjs: is it built, and unminified?');
	const missing = bundled.filter(name => !listed.has(name));
	assert.equal(missing, [], `bundled but not in debian/copyright: ${missing.join(', ')}`);
});

copyright('should be machine-readable (DEP-5) with a text for every licence named', () => {
	assert.match(paragraphs[0] ?? '', /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/$/m);
	const texts = new Set(paragraphs.filter(p => p.startsWith('License:')).map(p => /^License: (.+)$/m.exec(p)![1]!.trim()));
	const used = paragraphs
		.filter(p => p.startsWith('Files:'))
		.flatMap(p => /^License: (.+)$/m.exec(p)![1]!.split(/\s+(?:and|or)\s+/))
		.map(name => name.trim());
	const missing = [...new Set(used)].filter(name => !texts.has(name));
	assert.equal(missing, [], `licences named in Files paragraphs without a License paragraph: ${missing.join(', ')}`);
	assert.ok(paragraphs.filter(p => p.startsWith('Files:')).every(p => /^Copyright: /m.test(p)), 'every Files paragraph has a Copyright field');
});

copyright.run();
