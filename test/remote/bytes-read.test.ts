// srcBytesRead and dstBytesRead over SSH: what each role really read of its image, carried to the driver in STATS and DONE.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {mkdtempSync, rmSync, statSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {allocated, changeBlocks, makeImage, runCli, sameContent} from '../helpers/remote-images.js';

const test = suite('bytes read over SSH');
const MiB = 1024 * 1024;
const QUICK = 'used: SRC and DST unchanged since the last run (quick check)';
let sshd: Sshd;
let dir: string;

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-read-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

type Run = {src: number; dst: number; json: Record<string, unknown>};

async function run(args: string[], src: string, dst: string): Promise<Run> {
	// Caches apart from the host's: one left for a deleted DST would find another test's file on its inode stale.
	const result = await runCli([...args, '--json', ...(args.includes('--no-cache') ? [] : ['--cache-dir', join(dir, 'cache')])], sshd.env);
	assert.is(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
	assert.ok(sameContent(src, dst), `${args.join(' ')}: DST differs from SRC`);
	const json = result.json!;
	assert.is(typeof json['srcBytesRead'], 'number');
	return {src: Number(json['srcBytesRead']), dst: Number(json['dstBytesRead']), json};
}

for (const [direction, from, to] of [['push', '', 'pve:'], ['pull', 'pve:', ''], ['relay', 'pve:', 'pve2:']] as const) {
	test(`should count the bytes read of each image (${direction}): none of a new DST, little of a cached one, all with --no-cache and --verify, none of DST with --copy`, async () => {
		const src = join(dir, `${direction}-src.img`);
		const dst = join(dir, `${direction}-dst.img`);
		const size = 16 * MiB + 4096;
		makeImage(src, size);
		const data = allocated(src);
		const args = (...more: string[]): string[] => [`${from}${src}`, `${to}${dst}`, ...more];

		const first = await run(args('--truncate'), src, dst);
		assert.is(first.json['direction'], direction);
		assert.is(first.dst, 0, 'a first copy into a new DST reads none of it');
		// Holes (every 10th block) are skipped unread; everything allocated is read once.
		assert.ok(first.src > data - MiB && first.src <= data + 64 * 1024 && first.src < size, `read ${first.src} of SRC, ${data} allocated of ${size}`);
		assert.is(first.json['bytesScanned'], size);

		const unchanged = await run(args(), src, dst);
		assert.is(unchanged.dst, 0, 'an unchanged pair through the cache reads none of DST');
		if (unchanged.json['cache'] === QUICK) {
			// SRC written 2 s or more before the first run: its quick check holds, nothing is read.
			assert.is(unchanged.src, 0);
		} else {
			assert.is(unchanged.json['cache'], 'used');
			assert.ok(unchanged.src > data - MiB, `SRC is read: ${unchanged.src}`);
		}

		const changed = changeBlocks(src, 0.0005); // 3 blocks.
		const cached = await run(args(), src, dst);
		assert.is(cached.json['cache'], 'used');
		// Keyed digests: a chunk written through the cache is not even read back (an older SOURCE: at most its chunks).
		assert.ok(cached.dst <= changed * MiB, `with the cache read ${cached.dst} of DST for ${changed} changed blocks`);

		changeBlocks(src, 0.0005);
		const uncached = await run(args('--no-cache'), src, dst);
		assert.ok(uncached.dst > allocated(dst) - MiB, `without the cache read ${uncached.dst} of DST, ${allocated(dst)} allocated`);

		const dry = await run(args('--dry-run'), src, dst);
		// DST holds SRC's zero blocks as holes: less of it is allocated.
		assert.ok(dry.src > data - MiB && dry.dst > allocated(dst) - MiB, `a dry run read ${dry.src} of SRC and ${dry.dst} of DST`);

		const verified = await run(args('--verify'), src, dst);
		assert.is(verified.json['verified'], true);
		// The sync pass reads SRC (and DST where the cache is stale), the verify pass both images in full.
		assert.ok(verified.src > 2 * (data - MiB) && verified.dst > allocated(dst) - MiB, `with --verify read ${verified.src} of SRC and ${verified.dst} of DST`);

		const copy = await run(args('--copy'), src, dst);
		assert.is(copy.dst, 0, '--copy reads none of DST');
		assert.ok(copy.src > data - MiB);
		assert.is(statSync(dst).size, size);
		// --copy hashed what it wrote: the next run compares with that cache and reads nothing of DST (and an unchanged
		// pair nothing at all: SRC's quick check).
		const quick = await run(args(), src, dst);
		assert.equal([quick.json['cache'], quick.src, quick.dst], [QUICK, 0, 0]);
		changeBlocks(src, 0.0005);
		const next = await run(args(), src, dst);
		assert.is(next.json['cache'], 'used');
		assert.ok(next.dst <= changed * MiB, `the cache --copy built stands for DST: read ${next.dst}`);
		assert.ok(next.src > data - MiB);
	});
}

test('should report the read counters in --json-progress total events', async () => {
	const src = join(dir, 'progress-src.img');
	const dst = join(dir, 'progress-dst.img');
	makeImage(src, 8 * MiB);
	const result = await runCli([src, `pve:${dst}`, '--truncate', '--cache-dir', join(dir, 'cache'), '--json-progress', '--progress', 'none'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	const events = result.stderr.split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line) as Record<string, unknown>);
	const finish = events.find(event => event['event'] === 'finish')!;
	const totals = events.filter(event => event['event'] === 'total');
	assert.ok(totals.length > 0, 'total events');
	assert.is(totals[totals.length - 1]!['srcBytesRead'], finish['srcBytesRead']);
	assert.ok(Number(finish['srcBytesRead']) > 0);
	assert.is(finish['dstBytesRead'], 0);
});

test.run();
