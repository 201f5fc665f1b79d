// The command line, getopt's way: `--` ends the options, an unknown option is a usage error (exit 1), -z/--compress
// take an optional level that never swallows SRC; then each option typed (typeFlags). No parser library: meow did
// the typing and cost ~55 ms of every start (its module set-up sorts SPDX licence tables), a tenth of a short run.
import {UsageError} from './errors.js';

type FlagSpec = {readonly type: 'boolean' | 'string'; readonly shortFlag?: string; readonly default?: boolean; readonly isMultiple?: boolean};

/** Every flag rblocksync accepts; `agent` is internal (how SSH starts a remote worker). */
export const cliFlags = {
	truncate: {type: 'boolean'},
	recursive: {type: 'boolean', shortFlag: 'r'},
	// --include and --exclude become one list, in order (the first rule that matches decides): filter, +GLOB or -GLOB.
	include: {type: 'string'},
	exclude: {type: 'string'},
	filter: {type: 'string', isMultiple: true},
	delete: {type: 'boolean'},
	watch: {type: 'boolean'},
	debounce: {type: 'string'},
	blockSize: {type: 'string', shortFlag: 'b'},
	workers: {type: 'string', shortFlag: 'w'},
	dryRun: {type: 'boolean', shortFlag: 'n'},
	check: {type: 'boolean'},
	verify: {type: 'boolean'},
	copy: {type: 'boolean'},
	// --no-cache turns it off (--no-NAME: any switch false).
	cache: {type: 'boolean', default: true},
	cacheDir: {type: 'string'},
	trustCache: {type: 'boolean'},
	cacheSample: {type: 'string'},
	hash: {type: 'string'},
	compress: {type: 'string', shortFlag: 'z'},
	bwlimit: {type: 'string'},
	port: {type: 'string', shortFlag: 'p'},
	identity: {type: 'string', shortFlag: 'i'},
	remoteSudo: {type: 'boolean'},
	remoteCommand: {type: 'string'},
	acceptNewHostKey: {type: 'boolean'},
	timeout: {type: 'string'},
	retries: {type: 'string'},
	srcFormat: {type: 'string'},
	dstFormat: {type: 'string'},
	format: {type: 'string'},
	bitmap: {type: 'string'},
	qmp: {type: 'string'},
	forceShare: {type: 'boolean'},
	force: {type: 'boolean'},
	progress: {type: 'string'},
	json: {type: 'boolean'},
	jsonProgress: {type: 'boolean'},
	stat: {type: 'boolean'},
	quiet: {type: 'boolean', shortFlag: 'q'},
	debug: {type: 'boolean'},
	help: {type: 'boolean', shortFlag: 'h'},
	version: {type: 'boolean', shortFlag: 'v'},
	agent: {type: 'boolean'},
} as const satisfies Record<string, FlagSpec>;

/** The flag whose value is optional and must be attached (`-z6`, `--compress=6`). */
const OPTIONAL_VALUE = 'compress';
/** Options given as often as wanted, each occurrence a rule of the one --filter list (internal: not an option of its own). */
const FILTER_RULES: Readonly<Record<string, string>> = {include: '+', exclude: '-'};

export type SplitArgv = {
	/** Each option as `--name`, `--no-name` or `--name=value`, so typing them never has to guess whether a word is a value. */
	readonly options: string[];
	/** SRC, DST and anything else: words that are neither options nor their values, and every word after `--`. */
	readonly positional: string[];
};

/**
 * Splits argv the way getopt does: `--` ends the options, `-nq` is `-n -q`, `-b 64k`, `-b64k`, `--block-size 64k`
 * and `--block-size=64k` are the same, and a value is the next word whatever it looks like.
 * Throws UsageError for an unknown option, a missing value, a value given to a switch, or a value option given twice.
 */
export function splitArgv(argv: readonly string[], flags: Readonly<Record<string, FlagSpec>> = cliFlags): SplitArgv {
	const byLong = new Map(Object.entries(flags).map(([key, spec]) => [kebab(key), {key, spec}]));
	const byShort = new Map(Object.entries(flags).flatMap(([key, spec]) => (spec.shortFlag ? [[spec.shortFlag, kebab(key)] as const] : [])));
	const options: string[] = [];
	const positional: string[] = [];
	const given = new Set<string>();
	/** Adds `--long` (a switch) or `--long=value`; `value` undefined takes the next word. */
	const add = (long: string, written: string, index: number, value: string | undefined): number => {
		const {spec} = byLong.get(long)!;
		if (spec.type === 'boolean') {
			if (value !== undefined) {
				throw new UsageError(`${written} does not take a value; see rblocksync --help`);
			}
			options.push(`--${long}`);
			return index;
		}
		const rule = FILTER_RULES[long];
		if (rule === undefined && given.has(long)) {
			throw new UsageError(`--${long} given more than once`);
		}
		given.add(long);
		if (long === OPTIONAL_VALUE) {
			options.push(`--${long}=${value ?? ''}`);
			return index;
		}
		if (value === undefined) {
			if (index + 1 >= argv.length) {
				throw new UsageError(`${written} needs a value; see rblocksync --help`);
			}
			value = argv[index + 1]!;
			index += 1;
		}
		options.push(rule === undefined ? `--${long}=${value}` : `--filter=${rule}${value}`);
		return index;
	};
	for (let index = 0; index < argv.length; index++) {
		const arg = argv[index]!;
		if (arg === '--') {
			positional.push(...argv.slice(index + 1));
			break;
		}
		if (arg.startsWith('--')) {
			const equals = arg.indexOf('=');
			const name = arg.slice(2, equals === -1 ? undefined : equals);
			const value = equals === -1 ? undefined : arg.slice(equals + 1);
			if (byLong.has(name) && name !== 'filter') {
				index = add(name, `--${name}`, index, value);
			} else if (name.startsWith('no-') && byLong.get(name.slice(3))?.spec.type === 'boolean' && value === undefined) {
				options.push(arg);
			} else {
				throw new UsageError(`unknown option --${name}; see rblocksync --help`);
			}
		} else if (arg.startsWith('-') && arg !== '-') {
			// A group of short options; the first that takes a value takes the rest of the word, or the next word.
			for (let at = 1; at < arg.length; at++) {
				const letter = arg[at]!;
				const long = byShort.get(letter);
				if (long === undefined) {
					throw new UsageError(`unknown option -${letter}${arg.length > 2 ? ` (in ${arg})` : ''}; see rblocksync --help`);
				}
				if (byLong.get(long)!.spec.type === 'boolean') {
					index = add(long, `-${letter}`, index, undefined);
					continue;
				}
				const rest = arg.slice(at + 1).replace(/^=/, '');
				index = add(long, `-${letter}`, index, rest === '' && long !== OPTIONAL_VALUE ? undefined : rest);
				break;
			}
		} else {
			positional.push(arg);
		}
	}
	return {options, positional};
}

/** The flags of `specs` typed: a switch true or false (its default, else false), a value its string (absent when not
 * given), a list every value in order ([] when none). Takes splitArgv's options; the last of a switch's wins. */
export type TypedFlags<Specs extends Readonly<Record<string, FlagSpec>>> = {
	[Key in keyof Specs]: Specs[Key] extends {readonly type: 'boolean'} ? boolean : Specs[Key] extends {readonly isMultiple: true} ? string[] : string | undefined;
};

export function typeFlags<Specs extends Readonly<Record<string, FlagSpec>>>(options: readonly string[], specs: Specs): TypedFlags<Specs> {
	const byLong = new Map(Object.entries(specs).map(([key, spec]) => [kebab(key), {key, spec}]));
	const flags: Record<string, boolean | string | string[]> = {};
	for (const [key, spec] of Object.entries(specs)) {
		if (spec.type === 'boolean') {
			flags[key] = spec.default ?? false;
		} else if (spec.isMultiple) {
			flags[key] = [];
		}
	}
	for (const option of options) {
		const equals = option.indexOf('=');
		const name = option.slice(2, equals === -1 ? undefined : equals);
		const negated = equals === -1 && !byLong.has(name) && name.startsWith('no-');
		const flag = byLong.get(negated ? name.slice(3) : name);
		if (!option.startsWith('--') || flag === undefined || (negated && flag.spec.type !== 'boolean') || (flag.spec.type !== 'boolean' && equals === -1)) {
			throw new UsageError(`unknown option ${option}; see rblocksync --help`);
		}
		if (flag.spec.type === 'boolean') {
			flags[flag.key] = !negated;
		} else if (flag.spec.isMultiple) {
			(flags[flag.key] as string[]).push(option.slice(equals + 1));
		} else {
			flags[flag.key] = option.slice(equals + 1);
		}
	}
	return flags as TypedFlags<Specs>;
}

/** blockSize -> block-size: the long option of a flag key. */
function kebab(key: string): string {
	return key.replace(/[A-Z]/g, letter => `-${letter.toLowerCase()}`);
}
