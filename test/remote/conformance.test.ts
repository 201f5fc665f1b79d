// The same scenario table against local->local and each SSH direction: bytes, holes, counters and refusals must agree.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {randomBytes} from 'node:crypto';
import {closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeFileSync, writeSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {allocated, changeBlocks, makeImage, runCli, sameContent} from '../helpers/remote-images.js';

const test = suite('conformance: local, push, pull, relay');
const MiB = 1024 * 1024;
let sshd: Sshd;
let dir: string;

const directions = {
	local: (src: string, dst: string) => [src, dst],
	push: (src: string, dst: string) => [src, `pve:${dst}`],
	pull: (src: string, dst: string) => [`pve:${src}`, dst],
	relay: (src: string, dst: string) => [`pve:${src}`, `pve2:${dst}`],
} as const;
type Direction = keyof typeof directions;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-conf-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

type Step = {summary: Record<string, unknown> | undefined; status: number | null; stderr: string};

/** Runs one scenario step in every direction, each on its own copy of the files. */
async function everyDirection(step: (d: Direction, paths: {src: string; dst: string}) => Promise<Step>): Promise<Record<Direction, Step>> {
	const results = {} as Record<Direction, Step>;
	for (const d of Object.keys(directions) as Direction[]) {
		const sub = join(dir, d);
		mkdirSync(sub, {recursive: true});
		results[d] = await step(d, {src: join(sub, 'src.img'), dst: join(sub, 'dst.img')});
	}
	return results;
}

async function sync(d: Direction, src: string, dst: string, ...flags: string[]): Promise<Step> {
	const result = await runCli([...directions[d](src, dst), '--json', '-w', '2', ...flags], sshd.env);
	return {summary: result.json, status: result.status, stderr: result.stderr};
}

function same(results: Record<Direction, Step>, field: string): void {
	const values = Object.values(results).map(r => r.summary?.[field]);
	assert.equal(new Set(values).size, 1, `${field}: ${JSON.stringify(values)}`);
}

test('should agree on a first copy with --truncate: bytes, holes, counters', async () => {
	const results = await everyDirection(async (d, {src, dst}) => {
		makeImage(src, 6 * MiB + 1000);
		const step = await sync(d, src, dst, '--truncate');
		assert.is(step.status, 0, `${d}: ${step.stderr}`);
		assert.ok(sameContent(src, dst), d);
		assert.ok(allocated(dst) <= allocated(src) + 64 * 1024, `${d}: ${allocated(dst)} allocated vs ${allocated(src)}`);
		return step;
	});
	for (const field of ['size', 'blocksTotal', 'blocksChanged', 'bytesScanned', 'ok']) {
		same(results, field);
	}
});

test('should agree after scattered changes and blocks that became zero (punched)', async () => {
	const results = await everyDirection(async (d, {src, dst}) => {
		changeBlocks(src, 0.02);
		const fd = openSync(src, 'r+');
		writeSync(fd, Buffer.alloc(64 * 4096), 0, 64 * 4096, 2 * MiB);
		closeSync(fd);
		const before = allocated(dst);
		const step = await sync(d, src, dst);
		assert.is(step.status, 0, `${d}: ${step.stderr}`);
		assert.ok(sameContent(src, dst), d);
		assert.ok(allocated(dst) < before, `${d}: punched blocks must be freed`);
		return step;
	});
	for (const field of ['blocksChanged', 'blocksPunched', 'bytesWritten']) {
		same(results, field);
	}
});

test('should agree on --copy onto a DST full of other data: every zero range of SRC is zeroed', async () => {
	const results = await everyDirection(async (d, {src, dst}) => {
		const size = statSync(src).size;
		writeFileSync(dst, randomBytes(size));
		const before = allocated(dst);
		const step = await sync(d, src, dst, '--copy');
		assert.is(step.status, 0, `${d}: ${step.stderr}`);
		assert.ok(sameContent(src, dst), `${d}: DST differs from SRC after --copy`);
		assert.ok(allocated(dst) < before, `${d}: the zero ranges must be punched`);
		assert.is(step.summary?.['bytesScanned'], size, d);
		return step;
	});
	for (const field of ['blocksChanged', 'blocksPunched', 'bytesWritten', 'bytesPunched']) {
		same(results, field);
	}
});

test('should agree on a dry run: counts, nothing written', async () => {
	const results = await everyDirection(async (d, {src, dst}) => {
		changeBlocks(src, 0.01);
		const before = statSync(dst).mtimeMs;
		const step = await sync(d, src, dst, '--dry-run');
		assert.is(step.status, 0, `${d}: ${step.stderr}`);
		assert.is(statSync(dst).mtimeMs, before, d);
		assert.not.ok(sameContent(src, dst), d);
		return step;
	});
	same(results, 'blocksChanged');
});

test('should agree on --truncate shrinking and growing, and refuse a size mismatch without it', async () => {
	for (const size of [5 * MiB + 4096 + 17, 7 * MiB]) {
		await everyDirection(async (d, {src, dst}) => {
			truncateSync(src, size);
			const refused = await sync(d, src, dst);
			assert.is(refused.status, 1, d);
			assert.match(refused.stderr, new RegExp(`DST .*dst\\.img is \\d+ bytes but SRC is ${size} bytes; use --truncate to resize DST`), d);
			const step = await sync(d, src, dst, '--truncate');
			assert.is(step.status, 0, `${d}: ${step.stderr}`);
			assert.ok(sameContent(src, dst), d);
			assert.is(statSync(dst).size, size);
			return step;
		});
	}
});

test.run();
