import {readFileSync, statSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {VERSION} from '../../source/version.js';

const debian = suite('debian/');
const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(`${root}/${path}`, 'utf8');

debian('should package the version of package.json', () => {
	const top = /^rblocksync \(([^)]+)\) /.exec(read('debian/changelog'))?.[1];
	const pkg = (JSON.parse(read('package.json')) as {version: string}).version;
	assert.is(top, pkg, 'the newest debian/changelog entry must match package.json (native package: no revision)');
	assert.is(VERSION, pkg);
});

debian('should depend on node 18 and the libraries of the native helper', () => {
	const control = read('debian/control');
	assert.match(control, /^Architecture: any$/m);
	// libzstd1 by name: the native helper opens it at run time (dlopen), so shlibs cannot see it.
	assert.match(control, /^Depends: nodejs \(>= 18\), libzstd1, \$\{misc:Depends\}, \$\{shlibs:Depends\}$/m);
	assert.match(control, /^Section: admin$/m);
	assert.is(read('debian/source/format').trim(), '3.0 (native)');
});

debian('should run the bundle with the system node from /usr/bin/rblocksync', () => {
	assert.match(read('debian/bin/rblocksync'), /^exec \/usr\/bin\/node \/usr\/share\/rblocksync\/rblocksync\.mjs "\$@"$/m);
	assert.ok((statSync(`${root}/debian/bin/rblocksync`).mode & 0o111) !== 0, 'debian/bin/rblocksync must be executable');
	assert.ok((statSync(`${root}/debian/rules`).mode & 0o111) !== 0, 'debian/rules must be executable');
});

debian.run();
