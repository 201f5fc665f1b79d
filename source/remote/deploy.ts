// Finds or deploys the agent on a host: `rblocksync --agent` when installed, else the bundle uploaded to ~/.cache.
import {createHash, randomBytes} from 'node:crypto';
import {existsSync, readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {UsageError} from '../errors.js';
import type {Connection} from '../ssh/connect.js';
import {runCommand} from '../ssh/exec.js';

export type AgentPlan = {
	/** The fixed command line that starts an agent on this host. */
	readonly command: string;
	readonly how: 'installed' | 'uploaded' | 'cached';
	/** Bytes of the agent bundle sent to the host (0 unless uploaded now): wire bytes too. */
	readonly uploadedBytes: number;
};


const AGENT_NAME = 'rblocksync-agent.mjs';
const NATIVE_NAME = 'rblocksync_native.node';
const UNAME_ARCH: Record<string, string> = {x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x'};

const WASM_NAME = 'blake3.wasm';

type Bundle = {agent: Buffer; wasm: Buffer; native: Buffer | undefined; hash: string};

/** The local agent bundle (dist/bundle or beside the CLI bundle) with blake3.wasm, and the native helper if built. */
export function localBundle(arch: string | undefined): Bundle | undefined {
	const dirs = ['../bundle/', './'].map(dir => new URL(dir, import.meta.url));
	for (const dir of dirs) {
		const agentPath = fileURLToPath(new URL(AGENT_NAME, dir));
		const wasmPath = fileURLToPath(new URL(WASM_NAME, dir));
		if (!existsSync(agentPath) || !existsSync(wasmPath)) {
			continue;
		}
		const agent = readFileSync(agentPath);
		const wasm = readFileSync(wasmPath);
		const nativePath = [new URL(NATIVE_NAME, dir), new URL(`../../build/Release/${NATIVE_NAME}`, import.meta.url)].map(u => fileURLToPath(u)).find(p => existsSync(p));
		const shippable = process.platform === 'linux' && arch !== undefined && UNAME_ARCH[process.arch] === arch;
		const native = nativePath && shippable ? readFileSync(nativePath) : undefined;
		const hash = createHash('sha256').update(agent).update(wasm).update(native ?? Buffer.alloc(0)).digest('hex').slice(0, 16);
		return {agent, wasm, native, hash};
	}
	return undefined;
}

/** Probes the host in one exec and returns how to start the agent there; uploads the bundle when needed (always with `upload`). */
export async function prepareAgent(connection: Connection, alias: string, upload = false): Promise<AgentPlan> {
	const probe = await runCommand(connection, 'printf "rbs-which=%s\\n" "$(command -v rblocksync)"; printf "rbs-node=%s\\n" "$(node --version 2>/dev/null)"; printf "rbs-arch=%s\\n" "$(uname -m)"');
	const field = (name: string): string => new RegExp(`^rbs-${name}=(.*)$`, 'm').exec(probe.stdout)?.[1]?.trim() ?? '';
	if (field('which') !== '' && !upload) {
		return {command: 'exec rblocksync --agent', how: 'installed', uploadedBytes: 0};
	}
	const major = Number(/^v(\d+)\./.exec(field('node'))?.[1] ?? 0);
	if (major < 18) {
		throw new UsageError(`host ${alias} has neither rblocksync nor node >= 18; install the rblocksync package there`);
	}
	const bundle = localBundle(field('arch'));
	if (!bundle) {
		throw new UsageError(`host ${alias} has no rblocksync and this installation has no agent bundle to upload (dist/bundle/${AGENT_NAME}); install the rblocksync package there`);
	}
	// Only hex digits from this process reach these command lines.
	const dir = `"$HOME/.cache/rblocksync/agent-${bundle.hash}"`;
	const command = `exec node ${dir}/${AGENT_NAME}`;
	const cached = await runCommand(connection, `test -s ${dir}/${AGENT_NAME} && echo rbs-cached`);
	if (cached.stdout.includes('rbs-cached')) {
		return {command, how: 'cached', uploadedBytes: 0};
	}
	const stage = `"$HOME/.cache/rblocksync/.stage-${bundle.hash}-${randomBytes(6).toString('hex')}"`;
	const files: Array<[string, Buffer]> = [[AGENT_NAME, bundle.agent], [WASM_NAME, bundle.wasm], ...(bundle.native ? [[NATIVE_NAME, bundle.native] as [string, Buffer]] : [])];
	for (const [name, content] of files) {
		const upload = await runCommand(connection, `umask 077 && mkdir -p ${stage} && chmod 700 "$HOME/.cache/rblocksync" && cat > ${stage}/${name}`, content);
		if (upload.code !== 0) {
			throw new UsageError(`ssh ${alias}: cannot upload the agent to ~/.cache/rblocksync: ${upload.stderr.trim() || `exit status ${String(upload.code)}`}`);
		}
	}
	// A rename publishes the directory whole; a concurrent run that won the race leaves ours to delete.
	await runCommand(connection, `mv -T ${stage} ${dir} 2>/dev/null || rm -rf ${stage}`);
	return {command, how: 'uploaded', uploadedBytes: files.reduce((sum, [, content]) => sum + content.length, 0)};
}
