// ~/.ssh/config as OpenSSH reads it: a pure parser and the per-host resolution (first value wins).
import os from 'node:os';
import {join} from 'node:path';

export type ConfigBlock = {
	/** Host patterns; `!` negates; `*` and `?` are wildcards. Undefined for the lines before the first Host. */
	readonly patterns: readonly string[] | undefined;
	/** Keyword (lower case) -> values in file order. */
	readonly options: ReadonlyArray<readonly [string, string]>;
	/** Host pattern lists of the blocks an Include stood in (nested Includes: one each): all must match too. */
	readonly within?: ReadonlyArray<readonly string[]>;
};

/** The texts of the files an Include names (its words, as written), in order; [] when none. */
export type ReadInclude = (word: string) => string[];

/** OpenSSH's limit on nested Include. */
const MAX_INCLUDE_DEPTH = 16;

export type HostConfig = {
	readonly alias: string;
	readonly hostName: string;
	readonly user: string;
	readonly port: number;
	readonly identityFiles: readonly string[];
	readonly identitiesOnly: boolean;
	readonly proxyJump: string | undefined;
	/** HashKnownHosts: hosts added to known_hosts are written hashed (Debian's /etc/ssh/ssh_config says yes). */
	readonly hashKnownHosts: boolean;
};

/**
 * Splits a config file into blocks; Match blocks are skipped (their options apply to no host).
 * `Include` pulls in the texts readInclude gives for each of its words, in place: their blocks apply
 * only where the block holding the Include applies, and that block goes on after them.
 */
export function parseSshConfig(text: string, readInclude: ReadInclude = () => [], depth = 0): ConfigBlock[] {
	type Block = {patterns: readonly string[] | undefined; options: Array<readonly [string, string]>; skip: boolean; within?: ReadonlyArray<readonly string[]>};
	const blocks: Block[] = [{patterns: undefined, options: [], skip: false}];
	for (const raw of text.split(/\r?\n/)) {
		const line = raw.trim();
		if (line === '' || line.startsWith('#')) {
			continue;
		}
		const match = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
		if (!match) {
			continue;
		}
		const keyword = match[1]!.toLowerCase();
		const value = match[2]!.trim();
		if (keyword === 'host') {
			blocks.push({patterns: splitWords(value), options: [], skip: false});
		} else if (keyword === 'match') {
			blocks.push({patterns: [], options: [], skip: true});
		} else if (keyword === 'include') {
			const current = blocks.at(-1)!;
			if (current.skip || depth >= MAX_INCLUDE_DEPTH) {
				continue;
			}
			for (const word of splitWords(value)) {
				for (const included of readInclude(word)) {
					for (const block of parseSshConfig(included, readInclude, depth + 1)) {
						const within = [...(current.within ?? []), ...(current.patterns ? [current.patterns] : []), ...(block.within ?? [])];
						blocks.push({patterns: block.patterns, options: [...block.options], skip: false, ...(within.length > 0 ? {within} : {})});
					}
				}
			}
			blocks.push({patterns: current.patterns, options: [], skip: false, ...(current.within ? {within: current.within} : {})});
		} else {
			blocks.at(-1)!.options.push([keyword, unquote(value)]);
		}
	}
	return blocks.filter(block => !block.skip).map(({patterns, options, within}) => ({patterns, options, ...(within ? {within} : {})}));
}

function splitWords(value: string): string[] {
	return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map(m => m[1] ?? m[2]!).flatMap(word => word.split(','));
}

function unquote(value: string): string {
	return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** Glob match with * and ?, case-insensitive like OpenSSH host patterns. */
export function matchPattern(pattern: string, text: string): boolean {
	const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
	return regex.test(text);
}

/** OpenSSH pattern-list rule: no negated pattern may match, and at least one plain one must. */
export function matchPatternList(patterns: readonly string[], text: string): boolean {
	let matched = false;
	for (const pattern of patterns) {
		if (pattern.startsWith('!')) {
			if (matchPattern(pattern.slice(1), text)) {
				return false;
			}
		} else if (matchPattern(pattern, text)) {
			matched = true;
		}
	}
	return matched;
}

export type ResolveInput = {
	readonly alias: string;
	/** From the endpoint or -p/-i: they win over the config file. */
	readonly user?: string;
	readonly port?: number;
	readonly identity?: string;
	readonly localUser?: string;
	readonly home?: string;
};

/** The settings OpenSSH would use for `ssh alias`: command-line values first, then the first value in the file. */
export function resolveHost(blocks: readonly ConfigBlock[], input: ResolveInput): HostConfig {
	const first = new Map<string, string>();
	const identityFiles: string[] = [];
	for (const block of blocks) {
		if (block.patterns !== undefined && !matchPatternList(block.patterns, input.alias)) {
			continue;
		}
		if (block.within?.some(patterns => !matchPatternList(patterns, input.alias))) {
			continue;
		}
		for (const [keyword, value] of block.options) {
			if (keyword === 'identityfile') {
				identityFiles.push(value);
			} else if (!first.has(keyword)) {
				first.set(keyword, value);
			}
		}
	}
	const home = input.home ?? os.homedir();
	const localUser = input.localUser ?? os.userInfo().username;
	const hostName = expandTokens(first.get('hostname') ?? input.alias, {h: input.alias, u: localUser, r: '', d: home, n: input.alias});
	const user = input.user ?? first.get('user') ?? localUser;
	const portText = first.get('port');
	const port = input.port ?? (portText !== undefined && /^\d+$/.test(portText) ? Number(portText) : 22);
	const tokens = {h: hostName, u: localUser, r: user, d: home, n: input.alias, p: String(port)};
	const files = [...(input.identity === undefined ? [] : [input.identity]), ...identityFiles]
		.filter(file => file.toLowerCase() !== 'none')
		.map(file => expandHome(expandTokens(file, tokens), home));
	const jump = first.get('proxyjump');
	return {
		alias: input.alias,
		hostName,
		user,
		port,
		identityFiles: files,
		identitiesOnly: (first.get('identitiesonly') ?? 'no').toLowerCase() === 'yes',
		proxyJump: jump === undefined || jump.toLowerCase() === 'none' ? undefined : jump,
		hashKnownHosts: (first.get('hashknownhosts') ?? 'no').toLowerCase() === 'yes',
	};
}

/** %h %u %r %d %n %p %% in IdentityFile and HostName. */
export function expandTokens(value: string, tokens: Record<string, string>): string {
	return value.replace(/%(.)/g, (whole, letter: string) => (letter === '%' ? '%' : tokens[letter] ?? whole));
}

/** `~` and `~/x` to the home directory, as ssh does for IdentityFile. */
export function expandHome(path: string, home: string): string {
	return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

/** OpenSSH's default identities, in the order it tries them. */
export function defaultIdentityFiles(home: string): string[] {
	return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map(name => join(home, '.ssh', name));
}
