import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {build} from 'esbuild';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';

const copyright = suite('debian/copyright');
const root = fileURLToPath(new URL('../..', import.meta.url));
const text = readFileSync(`${root}/debian/copyright`, 'utf8');
const paragraphs = text.split(/\n\s*\n/).map(paragraph => paragraph.trim()).filter(Boolean);

/** npm packages whose code esbuild puts into the two bundles, as scripts/bundle.mjs builds them. */
async function bundledPackages(): Promise<string[]> {
	const result = await build({
		entryPoints: [`${root}/dist/cli.js`, `${root}/dist/agent/entry.js`],
		bundle: true,
		platform: 'node',
		format: 'esm',
		target: 'node18',
		write: false,
		metafile: true,
		outdir: `${root}/dist/copyright-check`,
		logLevel: 'silent',
	});
	const names = new Set<string>();
	for (const input of Object.keys(result.metafile.inputs)) {
		const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
		if (name) {
			names.add(name);
		}
	}
	return [...names].sort();
}

copyright('should list every npm package bundled into the program', async () => {
	const listed = new Set([...text.matchAll(/node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\/\*/g)].map(match => match[1]));
	const bundled = await bundledPackages();
	assert.ok(bundled.length > 0, 'the bundles contain no npm package: is dist/ built?');
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
