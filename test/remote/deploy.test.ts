// Agent deployment over a real sshd: a damaged cached agent is replaced, an installed rblocksync of another protocol is bypassed.
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs';
import {tmpdir, userInfo} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {makeBundle} from '../../source/remote/deploy.js';
import {PROTOCOL_VERSION} from '../../source/protocol/messages.js';
import {VERSION} from '../../source/version.js';
import {type Sshd, startSshd} from '../helpers/sshd.js';
import {makeImage, runCli, sameContent} from '../helpers/remote-images.js';

const test = suite('agent deployment over SSH');
const MiB = 1024 * 1024;
const root = fileURLToPath(new URL('../..', import.meta.url));
let sshd: Sshd;
let dir: string;

// The sshd's user is root, whose cache is in root's home (not the CLI's temporary HOME).
const cache = join(userInfo().homedir, '.cache/rblocksync');

/** The bundle this build uploads to a host of this architecture (the test host), as deploy.ts forms it. */
function builtBundle(): ReturnType<typeof makeBundle> {
	const names = ['rblocksync-agent.mjs', 'blake3.wasm', 'rblocksync-nbd-worker.mjs', 'rblocksync_native.node'];
	return makeBundle(names.map(name => join(root, 'dist/bundle', name)).filter(path => existsSync(path)).map(path => [path.slice(path.lastIndexOf('/') + 1), readFileSync(path)] as const));
}

function fakeRblocksync(script: string): void {
	writeFileSync(join(sshd.extraBin, 'rblocksync'), `#!/bin/sh\necho "$*" >> ${join(sshd.extraBin, 'calls')}\n${script}\n`);
	chmodSync(join(sshd.extraBin, 'rblocksync'), 0o755);
	rmSync(join(sshd.extraBin, 'calls'), {force: true});
}

const calls = (): string[] => readFileSync(join(sshd.extraBin, 'calls'), 'utf8').trim().split('\n');

test.before(async () => {
	sshd = await startSshd();
	dir = mkdtempSync(join(tmpdir(), 'rbs-deploy-ssh-'));
});

test.after(async () => {
	await sshd.stop();
	rmSync(dir, {recursive: true, force: true});
});

test('should replace a truncated, then a damaged cached agent, and sync', async () => {
	const bundle = builtBundle();
	const agentDir = join(cache, `agent-${bundle.hash}`);
	const agent = join(agentDir, 'rblocksync-agent.mjs');
	const src = join(dir, 'cache-src.img');
	makeImage(src, 2 * MiB);
	const first = await runCli([src, `pvenode:${join(dir, 'cache-first.img')}`, '--truncate', '-q'], sshd.env);
	assert.is(first.status, 0, first.stderr);
	assert.ok(readFileSync(agent).equals(bundle.files[0]!.content), 'the cache holds another bundle than this build\'s');
	const corruptions: Array<[string, () => void]> = [
		['truncated', () => truncateSync(agent, Math.floor(statSync(agent).size / 2))],
		['one byte flipped', () => {
			const bytes = readFileSync(agent);
			bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0x01;
			writeFileSync(agent, bytes);
		}],
	];
	for (const [what, corrupt] of corruptions) {
		corrupt();
		assert.not.ok(readFileSync(agent).equals(bundle.files[0]!.content));
		const dst = join(dir, `cache-${what.replaceAll(' ', '-')}.img`);
		const result = await runCli([src, `pvenode:${dst}`, '--truncate', '--json'], sshd.env);
		assert.is(result.status, 0, `${what}: ${result.stderr}`);
		assert.ok(sameContent(src, dst), what);
		// The agent went up again (its bytes are on the wire) and the cache holds this build's files once more.
		assert.ok(Number(result.json?.['wireBytesSent']) >= bundle.files[0]!.content.length, `${what}: sent ${String(result.json?.['wireBytesSent'])}`);
		for (const file of bundle.files) {
			assert.ok(readFileSync(join(agentDir, file.name)).equals(file.content), `${what}: ${file.name}`);
		}
		assert.equal(readdirSync(cache).filter(name => name.startsWith('.stage-')), [], `${what}: a staging directory was left behind`);
	}
	// Intact again: the next run reuses it and sends no agent.
	const again = await runCli([src, `pvenode:${join(dir, 'cache-first.img')}`, '--json'], sshd.env);
	assert.is(again.status, 0, again.stderr);
	assert.ok(Number(again.json?.['wireBytesSent']) < 16 * 1024, `sent ${String(again.json?.['wireBytesSent'])}`);
});

test('should run this version\'s agent, warning once, when the installed rblocksync speaks another protocol', async () => {
	fakeRblocksync('[ "$1" = --agent-protocol ] && echo 999 && exit 0; echo "fake rblocksync cannot $*" >&2; exit 1');
	const src = join(dir, 'mixed-src.img');
	const dst = join(dir, 'mixed-dst.img');
	makeImage(src, 3 * MiB);
	const result = await runCli([src, `pveextra:${dst}`, '--truncate', '-w', '3', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.stderr, `rblocksync: warning: pveextra: rblocksync there speaks protocol 999, this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}: running this version's agent from ~/.cache/rblocksync instead; install the same rblocksync version on both hosts\n`);
	assert.ok(sameContent(src, dst));
	// Each channel's start command asks it for its protocol (and prints the probe); none runs it as the agent.
	assert.ok(calls().length >= 1 && calls().every(call => call === '--agent-protocol'), calls().join(', '));
});

test('should fail on one line naming the host and both protocols when the host has no node for this version\'s agent', async () => {
	fakeRblocksync('[ "$1" = --agent-protocol ] && echo 999 && exit 0; exit 1');
	const src = join(dir, 'mixed-bare-src.img');
	makeImage(src, MiB);
	const result = await runCli([src, `pveextrabare:${join(dir, 'mixed-bare-dst.img')}`, '--truncate'], sshd.env);
	assert.is(result.status, 1);
	assert.is(result.stderr, `rblocksync: host pveextrabare: rblocksync there speaks protocol 999, this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}, and it has no node >= 18 to run this version's agent; install the same rblocksync version on both hosts\n`);
	assert.not.ok(existsSync(join(dir, 'mixed-bare-dst.img')));
});

// Every build older than --agent-protocol speaks protocol 1, still this one's: such a host keeps its installed agent.
test('should use an installed rblocksync too old to know --agent-protocol as protocol 1', async () => {
	fakeRblocksync(`[ "$1" = --agent-protocol ] && echo "Unknown flag --agent-protocol" >&2 && exit 2\nexec ${process.execPath} ${join(root, 'dist/cli.js')} "$@"`);
	const src = join(dir, 'old-src.img');
	const dst = join(dir, 'old-dst.img');
	makeImage(src, 2 * MiB);
	const result = await runCli([src, `pveextra:${dst}`, '--truncate', '-w', '1', '--json'], sshd.env);
	assert.is(result.status, 0, result.stderr);
	assert.is(result.stderr, '');
	assert.ok(sameContent(src, dst));
	assert.ok(calls().includes('--agent'), calls().join(', '));
});

test.run();
