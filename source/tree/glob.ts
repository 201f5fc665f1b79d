// --include/--exclude as rsync reads them: the first rule whose pattern matches a path decides; no match includes it.
// A pattern without a slash (a trailing one aside) or ** matches a name in any directory; with one it matches the
// path's end at a component boundary, or the whole path when it starts with /; a trailing / matches directories only.
// *, ? and [...] stay inside one component, ** crosses slashes.

export type FilterRule = {readonly include: boolean; readonly pattern: string};
type Compiled = {readonly include: boolean; readonly dirOnly: boolean; readonly wholePath: boolean; readonly regex: RegExp};

/** A glob as a regular expression source (no anchors). */
export function globSource(glob: string): string {
	let out = '';
	for (let at = 0; at < glob.length; at++) {
		const char = glob[at]!;
		if (char === '*') {
			if (glob[at + 1] === '*') {
				out += '.*';
				at++;
			} else {
				out += '[^/]*';
			}
		} else if (char === '?') {
			out += '[^/]';
		} else if (char === '[') {
			const close = glob.indexOf(']', at + 2);
			if (close === -1) {
				out += '\\[';
				continue;
			}
			let body = glob.slice(at + 1, close);
			const negated = body.startsWith('!') || body.startsWith('^');
			if (negated) {
				body = body.slice(1);
			}
			out += `[${negated ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
			at = close;
		} else if (char === '\\' && at + 1 < glob.length) {
			out += escape(glob[++at]!);
		} else {
			out += escape(char);
		}
	}
	return out;
}

function escape(char: string): string {
	return /[.+^${}()|[\]\\/]/.test(char) ? `\\${char}` : char;
}

function compile(rule: FilterRule): Compiled {
	let pattern = rule.pattern;
	const dirOnly = pattern.endsWith('/') && pattern.length > 1;
	if (dirOnly) {
		pattern = pattern.slice(0, -1);
	}
	const anchored = pattern.startsWith('/');
	if (anchored) {
		pattern = pattern.slice(1);
	}
	const wholePath = anchored || pattern.includes('/') || pattern.includes('**');
	const source = globSource(pattern);
	const regex = new RegExp(anchored ? `^${source}$` : wholePath ? `(?:^|/)${source}$` : `^${source}$`, 'u');
	return {include: rule.include, dirOnly, wholePath, regex};
}

/** The rules' verdict on relative paths ("a/b.img", no leading slash); `directory` for a directory's own path. */
export class PathFilter {
	private readonly rules: readonly Compiled[];

	constructor(rules: readonly FilterRule[]) {
		this.rules = rules.map(compile);
	}

	get empty(): boolean {
		return this.rules.length === 0;
	}

	/** Whether `path` itself is included (its directories are the caller's to check: an excluded one prunes its contents). */
	includes(path: string, directory: boolean): boolean {
		const name = path.slice(path.lastIndexOf('/') + 1);
		for (const rule of this.rules) {
			if (rule.dirOnly && !directory) {
				continue;
			}
			if (rule.regex.test(rule.wholePath ? path : name)) {
				return rule.include;
			}
		}
		return true;
	}

	/** Whether `path` and every directory above it are included (rsync never descends into an excluded directory). */
	includesWithParents(path: string, directory: boolean): boolean {
		const parts = path.split('/');
		for (let depth = 1; depth < parts.length; depth++) {
			if (!this.includes(parts.slice(0, depth).join('/'), true)) {
				return false;
			}
		}
		return this.includes(path, directory);
	}
}
