import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {spawnSync} from 'node:child_process';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {Worker} from 'node:worker_threads';
import {nativeLoadError, nativeOps} from '../../source/native/native.js';

// The fixture imports dist/native/native.js: npm test builds dist first.
const probe = fileURLToPath(new URL('fixtures/native-probe.mjs', import.meta.url));

interface Report {
	loaded: boolean;
	error?: string;
	seekHole?: number;
}

function probeInChild(env: Record<string, string>): Report {
	const child = spawnSync(process.execPath, [probe], {encoding: 'utf8', env: {...process.env, ...env}});
	assert.is(child.status, 0, child.stderr);
	return JSON.parse(child.stdout) as Report;
}

function probeInWorker(file: string): Promise<Report> {
	return new Promise((resolve, reject) => {
		const worker = new Worker(probe, {workerData: {file}});
		worker.once('message', (report: Report) => resolve(report));
		worker.once('error', reject);
	});
}

const load = suite('nativeOps');

load('should load the addon in the main thread', () => {
	assert.ok(nativeOps(), nativeLoadError());
	assert.is(nativeLoadError(), undefined);
});

load('should load again and work inside worker threads once the main thread has it', async () => {
	assert.ok(nativeOps(), nativeLoadError());
	const dir = mkdtempSync(join(tmpdir(), 'rbs-native-'));
	try {
		const file = join(dir, 'small.img');
		writeFileSync(file, Buffer.alloc(8192, 1));
		const reports = await Promise.all([probeInWorker(file), probeInWorker(file)]);
		assert.equal(reports, [{loaded: true, error: undefined, seekHole: 8192}, {loaded: true, error: undefined, seekHole: 8192}]);
	} finally {
		rmSync(dir, {recursive: true, force: true});
	}
});

load('should be undefined with RBLOCKSYNC_NO_NATIVE=1', () => {
	assert.equal(probeInChild({RBLOCKSYNC_NO_NATIVE: '1'}), {loaded: false, error: 'native helper disabled by RBLOCKSYNC_NO_NATIVE=1'});
});

const loadError = suite('nativeLoadError');

loadError('should name the RBLOCKSYNC_NATIVE file and try no other', () => {
	const report = probeInChild({RBLOCKSYNC_NATIVE: '/nonexistent/rblocksync_native.node'});
	assert.equal(report, {loaded: false, error: 'cannot load the native helper (/nonexistent/rblocksync_native.node: not found)'});
});

loadError('should say why a file that is not an addon fails to load', () => {
	const dir = mkdtempSync(join(tmpdir(), 'rbs-native-'));
	try {
		const bogus = join(dir, 'bogus.node');
		writeFileSync(bogus, 'not an ELF file');
		const report = probeInChild({RBLOCKSYNC_NATIVE: bogus});
		assert.is(report.loaded, false);
		assert.match(report.error ?? '', `cannot load the native helper (${bogus}: `);
		assert.match(report.error ?? '', /invalid ELF header|file too short/);
	} finally {
		rmSync(dir, {recursive: true, force: true});
	}
});

load.run();
loadError.run();
