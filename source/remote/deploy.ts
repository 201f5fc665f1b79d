// Finds or deploys the agent on a host: `rblocksync --agent` when installed and speaking our protocol, else the bundle cached in ~/.cache.
import {createHash} from 'node:crypto';
import {existsSync, readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {UsageError} from '../errors.js';
import {PROTOCOL_VERSION} from '../protocol/messages.js';
import type {Connection} from '../ssh/connect.js';
import {type CommandBounds, runCommand} from '../ssh/exec.js';
import {VERSION} from '../version.js';

export type AgentPlan = {
	/** The fixed command line that starts an agent on this host. */
	readonly command: string;
	readonly how: 'installed' | 'uploaded' | 'cached';
	/** Bytes of the agent bundle sent to the host (0 unless uploaded now): wire bytes too. */
	readonly uploadedBytes: number;
};

const AGENT_NAME = 'rblocksync-agent.mjs';
const NATIVE_NAME = 'rblocksync_native.node';
const WASM_NAME = 'blake3.wasm';
/** An NbdImage's client thread (a formatted endpoint), loaded from beside the agent. */
const NBD_WORKER_NAME = 'rblocksync-nbd-worker.mjs';
const UNAME_ARCH: Record<string, string> = {x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x'};

type BundleFile = {readonly name: string; readonly content: Buffer; readonly sha256: string};
/** What a host gets in `~/.cache/rblocksync/agent-<hash>/`: `hash` is 16 hex digits of SHA-256 over the files' bytes in order. */
export type Bundle = {readonly files: readonly BundleFile[]; readonly hash: string};
/** The bundle without the native helper, and with it for hosts whose `uname -m` is `arch` (this build's). */
export type Bundles = {readonly plain: Bundle; readonly native: Bundle | undefined; readonly arch: string | undefined};

/** A bundle of these files, in this order. */
export function makeBundle(parts: ReadonlyArray<readonly [string, Buffer]>): Bundle {
	const whole = createHash('sha256');
	const files = parts.map(([name, content]) => {
		whole.update(content);
		return {name, content, sha256: createHash('sha256').update(content).digest('hex')};
	});
	return {files, hash: whole.digest('hex').slice(0, 16)};
}

/** The local agent bundles (dist/bundle or beside the CLI bundle) with blake3.wasm; `native` only where the helper is built (Linux). */
export function localBundles(): Bundles | undefined {
	const dirs = ['../bundle/', './'].map(dir => new URL(dir, import.meta.url));
	for (const dir of dirs) {
		const agentPath = fileURLToPath(new URL(AGENT_NAME, dir));
		const wasmPath = fileURLToPath(new URL(WASM_NAME, dir));
		if (!existsSync(agentPath) || !existsSync(wasmPath)) {
			continue;
		}
		const nbdWorkerPath = fileURLToPath(new URL(NBD_WORKER_NAME, dir));
		const base: Array<readonly [string, Buffer]> = [[AGENT_NAME, readFileSync(agentPath)], [WASM_NAME, readFileSync(wasmPath)]];
		if (existsSync(nbdWorkerPath)) {
			base.push([NBD_WORKER_NAME, readFileSync(nbdWorkerPath)]);
		}
		const nativePath = [new URL(NATIVE_NAME, dir), new URL(`../../build/Release/${NATIVE_NAME}`, import.meta.url)].map(u => fileURLToPath(u)).find(p => existsSync(p));
		const arch = process.platform === 'linux' ? UNAME_ARCH[process.arch] : undefined;
		const native = nativePath && arch ? makeBundle([...base, [NATIVE_NAME, readFileSync(nativePath)]]) : undefined;
		return {plain: makeBundle(base), native, arch: native ? arch : undefined};
	}
	return undefined;
}

/** The bundle a host of `uname -m` `arch` gets: the native helper only when it was built for that architecture. */
export function bundleFor(bundles: Bundles, arch: string): Bundle {
	return bundles.native && arch === bundles.arch ? bundles.native : bundles.plain;
}

// Only hex digits and the fixed file names above reach the command lines below: no user data, nothing to quote.
const cacheDir = (bundle: Bundle): string => `"$HOME/.cache/rblocksync/agent-${bundle.hash}"`;

/**
 * The probe, one exec: where rblocksync is and which protocol its agent speaks (a build older than
 * `--agent-protocol` prints nothing: protocol 1), node's version, `uname -m`, and which cached bundles hold
 * exactly these files (`sha256sum -c` against this process's digests: a truncated or damaged cache is not used).
 */
export function probeCommand(candidates: readonly Bundle[], upload: boolean, remote: RemoteAgent = {sudo: false}): string {
	const sudo = remote.sudo ? 'sudo -n ' : '';
	return [
		// sudo -n never prompts: a password it would need is an error on its stderr, reported as one line.
		...(remote.sudo ? ['printf "rbs-sudo=%s\\n" "$( (sudo -n true && echo ok) 2>&1 </dev/null)"'] : []),
		// The user's command, run by the login shell as rsync runs --rsync-path: a protocol number, or the last line it said.
		...(remote.command === undefined ? [] : [`printf "rbs-command=%s\\n" "$(${sudo}${remote.command} --agent-protocol 2>&1 </dev/null)"`]),
		'printf "rbs-which=%s\\n" "$(command -v rblocksync)"',
		...(upload ? [] : ['printf "rbs-protocol=%s\\n" "$(rblocksync --agent-protocol 2>/dev/null)"']),
		'printf "rbs-node=%s\\n" "$(node --version 2>/dev/null)"',
		'printf "rbs-arch=%s\\n" "$(uname -m)"',
		...candidates.map(bundle => {
			const sums = bundle.files.map(file => `${file.sha256}  ${file.name}\\n`).join('');
			return `(cd ${cacheDir(bundle)} 2>/dev/null && printf '${sums}' | sha256sum -c >/dev/null 2>&1) && echo rbs-cached=${bundle.hash}`;
		}),
	].join('; ');
}

export type Probe = {
	readonly installed: boolean;
	readonly protocol: number;
	readonly nodeMajor: number;
	readonly arch: string;
	readonly cached: ReadonlySet<string>;
	/** With --remote-sudo: "ok" when `sudo -n true` ran, else what sudo said (its last line). */
	readonly sudo?: string;
	/** With --remote-command: what `CMD --agent-protocol` printed (its protocol number, or its last line of stderr). */
	readonly command?: string;
};

/** How the agent runs on the far end: through `sudo -n` (--remote-sudo), and by a command of the user's (--remote-command). */
export type RemoteAgent = {readonly sudo: boolean; readonly command?: string | undefined};

/** Reads the probe's output; an installed rblocksync that printed no protocol number speaks protocol 1. */
export function parseProbe(stdout: string): Probe {
	const field = (name: string): string => new RegExp(`^rbs-${name}=(.*)$`, 'm').exec(stdout)?.[1]?.trim() ?? '';
	// What sudo or the user's command said may take lines: up to the next rbs- line, its last line.
	const lastLine = (name: string): string => (new RegExp(`^rbs-${name}=([^]*?)(?=^rbs-|(?![^]))`, 'm').exec(stdout)?.[1] ?? '').trim().split('\n').at(-1)!.trim();
	const protocol = field('protocol');
	return {
		installed: field('which') !== '',
		protocol: /^\d+$/.test(protocol) ? Number(protocol) : 1,
		nodeMajor: Number(/^v(\d+)\./.exec(field('node'))?.[1] ?? 0),
		arch: field('arch'),
		cached: new Set([...stdout.matchAll(/^rbs-cached=([\da-f]{16})$/gm)].map(match => match[1]!)),
		...(/^rbs-sudo=/m.test(stdout) ? {sudo: lastLine('sudo')} : {}),
		...(/^rbs-command=/m.test(stdout) ? {command: lastLine('command')} : {}),
	};
}

/*
 * The upload, one exec: node (which the agent needs anyway) reads the files from stdin, checks their digests,
 * writes them fsynced into a staging directory and renames it to agent-<hash>. A directory already there
 * that holds the right files (a concurrent run published it) is kept; a damaged one is renamed away and
 * replaced. Passed on one line inside single quotes: it must contain none, and every statement ends with `;` or a brace.
 */
const INSTALL_JS = `
const fs = require("fs"), path = require("path"), crypto = require("crypto");
const [hash, ...specs] = process.argv.slice(1);
const files = specs.map(spec => { const [name, length, sha256] = spec.split(":"); return {name, length: Number(length), sha256}; });
const base = path.join(process.env.HOME, ".cache", "rblocksync"), dir = path.join(base, "agent-" + hash);
const digest = bytes => crypto.createHash("sha256").update(bytes).digest("hex");
const sound = where => files.every(file => { try { return digest(fs.readFileSync(path.join(where, file.name))) === file.sha256; } catch { return false; } });
let stage = "", trash = "";
const publish = () => { try { fs.renameSync(stage, dir); return true; } catch (error) { if (["ENOTEMPTY", "EEXIST", "ENOTDIR"].includes(error.code)) return false; throw error; } };
const chunks = [];
process.stdin.on("data", chunk => chunks.push(chunk));
process.stdin.on("end", () => {
	try {
		const data = Buffer.concat(chunks);
		fs.mkdirSync(base, {recursive: true, mode: 0o700});
		fs.chmodSync(base, 0o700);
		stage = fs.mkdtempSync(path.join(base, ".stage-" + hash + "-"));
		let at = 0;
		for (const file of files) {
			const bytes = data.subarray(at, at += file.length);
			if (digest(bytes) !== file.sha256) throw new Error(file.name + " arrived incomplete");
			const fd = fs.openSync(path.join(stage, file.name), "wx", 0o600);
			fs.writeFileSync(fd, bytes);
			fs.fsyncSync(fd);
			fs.closeSync(fd);
		}
		if (!publish() && !sound(dir)) {
			trash = stage + ".old";
			try { fs.renameSync(dir, trash); } catch (error) { if (error.code !== "ENOENT") throw error; }
			publish();
		}
	} catch (error) {
		process.stderr.write(error.message + "\\n");
		process.exitCode = 1;
	} finally {
		for (const leftover of [stage, trash]) if (leftover) fs.rmSync(leftover, {recursive: true, force: true});
	}
});
`.trim().replace(/\n\t*/g, ' ');

/** The upload's command line; its stdin is the bundle's files, concatenated in order. */
export function uploadCommand(bundle: Bundle): string {
	const specs = bundle.files.map(file => `${file.name}:${file.content.length}:${file.sha256}`).join(' ');
	return `exec node -e '${INSTALL_JS}' -- ${bundle.hash} ${specs}`;
}

/** A bound on each command run to start the agent, and the signal that ends it at once (the run stopped). */
export type StartBounds = {readonly timeoutMs: number; readonly signal?: AbortSignal};

/** The command bounds for one step of the agent's start, its failure worded as "ssh pve: <what> did not finish within 2 s". */
function commandBounds(alias: string, what: string, bounds: StartBounds | undefined): CommandBounds | undefined {
	return bounds && {
		timeoutMs: bounds.timeoutMs,
		timeoutError: () => new UsageError(`ssh ${alias}: ${what} did not finish within ${bounds.timeoutMs / 1000} s`),
		...(bounds.signal ? {signal: bounds.signal} : {}),
	};
}

async function uploadBundle(connection: Connection, alias: string, bundle: Bundle, bounds?: StartBounds): Promise<number> {
	const content = Buffer.concat(bundle.files.map(file => file.content));
	const result = await runCommand(connection, uploadCommand(bundle), content, commandBounds(alias, 'uploading the agent', bounds));
	if (result.code !== 0) {
		throw new UsageError(`ssh ${alias}: cannot upload the agent to ~/.cache/rblocksync: ${result.stderr.trim().split('\n').at(-1) || `exit status ${String(result.code)}`}`);
	}
	return content.length;
}

/**
 * The one exec that starts the agent where it can without a probe of its own (a short start: no probe channel, no
 * waiting for its output): the installed rblocksync when it speaks this protocol (not with `upload`), else, where no
 * rblocksync is installed (or with `upload`), this version's cached bundle for the host's `uname -m` when every file's
 * SHA-256 matches and node >= 18 runs. Otherwise it prints the probe (probeCommand: its first byte is the "r" of
 * "rbs-", never the first byte of a frame) and exits: the driver then decides as prepareAgent does (an upload, a
 * warning, a refusal) and starts the agent with the plan's command. Only fixed names and hex digits: nothing to quote.
 * Not for --remote-sudo or --remote-command: those take the probe first (prepareAgent).
 */
export function startCommand(bundles: Bundles | undefined, upload: boolean): string {
	const steps: string[] = [];
	if (!upload) {
		steps.push(`rbs_w="$(command -v rblocksync)"; if [ -n "$rbs_w" ]; then rbs_p="$(rblocksync --agent-protocol 2>/dev/null)"; case "$rbs_p" in ''|*[!0-9]*) rbs_p=1;; esac; [ "$rbs_p" = ${PROTOCOL_VERSION} ] && exec rblocksync --agent; fi`);
	}
	if (bundles) {
		const check = (bundle: Bundle): string => {
			const sums = bundle.files.map(file => `${file.sha256}  ${file.name}\\n`).join('');
			return `if (cd ${cacheDir(bundle)} 2>/dev/null && printf '${sums}' | sha256sum -c >/dev/null 2>&1); then exec node ${cacheDir(bundle)}/${AGENT_NAME}; fi`;
		};
		const pick = bundles.native && bundles.arch
			? `if [ "$(uname -m)" = ${bundles.arch} ]; then ${check(bundles.native)}; else ${check(bundles.plain)}; fi`
			: check(bundles.plain);
		steps.push(`${upload ? '' : 'if [ -z "$rbs_w" ]; then '}case "$(node --version 2>/dev/null)" in v1[89].*|v[2-9][0-9].*|v[1-9][0-9][0-9].*) ${pick};; esac${upload ? '' : '; fi'}`);
	}
	const bundleList = bundles ? [bundles.plain, ...(bundles.native ? [bundles.native] : [])] : [];
	return [...steps, probeCommand(bundleList, upload, {sudo: false})].join('; ');
}

/** The start command of this installation (startCommand with the local bundles). */
export function localStartCommand(upload: boolean): string {
	return startCommand(localBundles(), upload);
}

/**
 * Probes the host in one exec and returns how to start the agent there: the installed rblocksync when its
 * protocol is ours (never with `upload`), else this version's bundle, reused from the cache when intact or
 * uploaded in one more exec. An installed rblocksync of another protocol is bypassed with one `warn`.
 */
export async function prepareAgent(connection: Connection, alias: string, upload = false, warn: (message: string) => void = () => {}, bounds?: StartBounds, remote: RemoteAgent = {sudo: false}): Promise<AgentPlan> {
	const bundles = localBundles();
	const candidates = bundles && remote.command === undefined ? [bundles.plain, ...(bundles.native ? [bundles.native] : [])] : [];
	const stdout = (await runCommand(connection, probeCommand(candidates, upload, remote), undefined, commandBounds(alias, 'the probe for rblocksync and node', bounds))).stdout;
	return agentFromProbe(connection, alias, stdout, upload, warn, bounds, remote);
}

/** After a probe (prepareAgent's, or the one the start command printed): how to start the agent, uploading it when needed. */
export async function agentFromProbe(connection: Connection, alias: string, stdout: string, upload = false, warn: (message: string) => void = () => {}, bounds?: StartBounds, remote: RemoteAgent = {sudo: false}): Promise<AgentPlan> {
	const bundles = localBundles();
	const probe = parseProbe(stdout);
	const plan = planAgent(probe, alias, remote, bundles, warn, upload);
	if (plan) {
		return plan;
	}
	// planAgent returns nothing only when the bundle exists and is not cached yet.
	const bundle = bundleFor(bundles!, probe.arch);
	const uploadedBytes = await uploadBundle(connection, alias, bundle, bounds);
	if (probe.installed && !upload) {
		warn(`${alias}: ${mismatchOf(probe)}: running this version's agent from ~/.cache/rblocksync instead; install the same rblocksync version on both hosts`);
	}
	return {command: uploadedCommand(bundle, remote), how: 'uploaded', uploadedBytes};
}

/** The sudo prefix of every agent command line with --remote-sudo: `-n` never prompts (a password it needs fails the probe). */
const sudoPrefix = (remote: RemoteAgent): string => (remote.sudo ? 'sudo -n ' : '');

/**
 * The command line of the cached bundle: node as the SSH user finds it, the bundle in the SSH user's cache
 * ($HOME expands in the SSH user's shell before sudo runs, so root runs the very files the probe checked).
 */
function uploadedCommand(bundle: Bundle, remote: RemoteAgent): string {
	return remote.sudo
		? `exec sudo -n "$(command -v node)" ${cacheDir(bundle)}/${AGENT_NAME}`
		: `exec node ${cacheDir(bundle)}/${AGENT_NAME}`;
}

function mismatchOf(probe: Probe): string {
	return `rblocksync there speaks protocol ${probe.protocol}, this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}`;
}

/**
 * How to start the agent from the probe's findings, or undefined when the bundle must be uploaded first.
 * Throws UsageError (exit 1) when no agent can run: sudo refused, the user's command is no agent of ours, no node.
 */
export function planAgent(probe: Probe, alias: string, remote: RemoteAgent, bundles: Bundles | undefined, warn: (message: string) => void = () => {}, upload = false): AgentPlan | undefined {
	if (remote.sudo && probe.sudo !== 'ok') {
		throw new UsageError(`ssh ${alias}: --remote-sudo: sudo -n cannot run the agent as root there (${probe.sudo || 'sudo said nothing'}); allow it without a password (NOPASSWD in sudoers) or drop --remote-sudo`);
	}
	if (remote.command !== undefined) {
		const said = probe.command ?? '';
		if (!/^\d+$/.test(said)) {
			throw new UsageError(`ssh ${alias}: --remote-command ${remote.command}: \`${remote.command} --agent-protocol\` printed no protocol number${said ? ` (${said})` : ''}; give the command that runs rblocksync there`);
		}
		if (Number(said) !== PROTOCOL_VERSION) {
			throw new UsageError(`ssh ${alias}: --remote-command ${remote.command} speaks protocol ${said}, this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}; install the same rblocksync version on both hosts`);
		}
		return {command: `exec ${sudoPrefix(remote)}${remote.command} --agent`, how: 'installed', uploadedBytes: 0};
	}
	if (probe.installed && !upload && probe.protocol === PROTOCOL_VERSION) {
		return {command: remote.sudo ? 'exec sudo -n "$(command -v rblocksync)" --agent' : 'exec rblocksync --agent', how: 'installed', uploadedBytes: 0};
	}
	const mismatch = probe.installed && !upload ? mismatchOf(probe) : undefined;
	if (probe.nodeMajor < 18) {
		throw new UsageError(mismatch
			? `host ${alias}: ${mismatch}, and it has no node >= 18 to run this version's agent; install the same rblocksync version on both hosts`
			: `host ${alias} has neither rblocksync nor node >= 18; install the rblocksync package there`);
	}
	if (!bundles) {
		throw new UsageError(mismatch
			? `host ${alias}: ${mismatch}, and this installation has no agent bundle to upload (dist/bundle/${AGENT_NAME}); install the same rblocksync version on both hosts`
			: `host ${alias} has no rblocksync and this installation has no agent bundle to upload (dist/bundle/${AGENT_NAME}); install the rblocksync package there`);
	}
	const bundle = bundleFor(bundles, probe.arch);
	if (!probe.cached.has(bundle.hash)) {
		return undefined;
	}
	if (mismatch) {
		warn(`${alias}: ${mismatch}: running this version's agent from ~/.cache/rblocksync instead; install the same rblocksync version on both hosts`);
	}
	return {command: uploadedCommand(bundle, remote), how: 'cached', uploadedBytes: 0};
}
