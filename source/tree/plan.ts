// The pure part of a run over many files: which SRC entries become which DST files, the directories to create,
// what is skipped with a warning, what --delete removes, and how many workers each file gets.
import {PathFilter} from './glob.js';

export type EntryKind = 'file' | 'dir' | 'symlink' | 'device' | 'fifo' | 'socket' | 'other';

/** One entry of a tree listing; `path` relative to the listed root, components joined by '/'. */
export type TreeEntry = {
	readonly path: string;
	readonly kind: EntryKind;
	readonly size: number;
	readonly mode: number;
	readonly uid: number;
	readonly gid: number;
	readonly mtimeSec: number;
	readonly mtimeNsec: number;
	/** "dev:ino:size:mtime-ns:ctime-ns" as the listing's lstat saw it: any write, chmod, touch or replacement changes it. */
	readonly stamp: string;
	/** ctime in milliseconds, on the listed host's clock: a stamp taken right after a change may not see the next one. */
	readonly changedMs: number;
};

/** A listing: its entries, and the listed host's clock when it was taken. */
export type Listing = {readonly entries: TreeEntry[]; readonly nowMs: number};

/** What the driver sets on a DST file after it was synced: SRC's permission bits, owner and mtime. */
export type FileAttrs = Pick<TreeEntry, 'mode' | 'uid' | 'gid' | 'mtimeSec' | 'mtimeNsec'>;

/** Why a relative path from a listing (a remote agent's, so untrusted) cannot name a file under its root; undefined when it can. */
export function badRelativePath(path: string): string | undefined {
	if (path === '' || path.startsWith('/') || path.endsWith('/')) {
		return 'not a relative path';
	}
	if (path.includes('\0')) {
		return 'holds a NUL byte';
	}
	if (path.split('/').some(part => part === '' || part === '.' || part === '..')) {
		return 'holds an empty, . or .. component';
	}
	return undefined;
}

/** `root` and `relative` joined with one slash (`relative` '' is the root itself). */
export function joinPath(root: string, relative: string): string {
	if (relative === '') {
		return root;
	}
	return root.endsWith('/') ? `${root}${relative}` : `${root}/${relative}`;
}

/** The last component of a path (`/dev/pve/vm-100-disk-0` -> `vm-100-disk-0`), trailing slashes aside. */
export function baseName(path: string): string {
	const trimmed = path.replace(/\/+$/, '');
	return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

export type TreePlan = {
	/** Regular files to sync, by relative path. */
	readonly files: TreeEntry[];
	/** Directories to create under DSTDIR, parents first. */
	readonly dirs: string[];
	/** Entries left alone with a warning: symlinks, devices, fifos, sockets (never followed). */
	readonly skipped: Array<{path: string; kind: EntryKind}>;
	/** DST regular files SRC no longer has (with --delete; excluded paths are kept, as rsync does). */
	readonly deletions: string[];
	/** SRC files whose DST path is something else than a file (a directory, a symlink): refused. */
	readonly conflicts: Array<{path: string; reason: string}>;
};

/**
 * Plans one tree: SRC's listing filtered by the rules, against DST's listing (undefined: DSTDIR does not exist yet).
 * `prefix`: where SRC's root lands under DSTDIR ('' for `SRCDIR/`, the directory's name for `SRCDIR`).
 */
export function planTree(src: readonly TreeEntry[], dst: readonly TreeEntry[] | undefined, filter: PathFilter, options: {readonly delete: boolean; readonly prefix?: string}): TreePlan {
	const prefix = options.prefix ?? '';
	const at = (path: string): string => (prefix === '' ? path : `${prefix}/${path}`);
	const dstByPath = new Map((dst ?? []).map(entry => [entry.path, entry]));
	const files: TreeEntry[] = [];
	const dirs: string[] = prefix === '' ? [] : prefix.split('/').map((_, index, parts) => parts.slice(0, index + 1).join('/'));
	const skipped: TreePlan['skipped'] = [];
	const conflicts: TreePlan['conflicts'] = [];
	const wanted = new Set<string>(dirs);
	for (const entry of [...src].sort((a, b) => compare(a.path, b.path))) {
		if (badRelativePath(entry.path) !== undefined || !filter.includesWithParents(entry.path, entry.kind === 'dir')) {
			continue;
		}
		const target = at(entry.path);
		const blocker = blockedBy(target, dstByPath);
		if (blocker !== undefined) {
			// DST has something else than a directory on the way (a symlink could lead out of DSTDIR): not written.
			wanted.add(target);
			if (entry.kind === 'file') {
				conflicts.push({path: target, reason: `${blocker.path} is ${article(blocker.kind)} in DST, not a directory`});
			}
		} else if (entry.kind === 'dir') {
			const existing = dstByPath.get(target);
			if (existing && existing.kind !== 'dir') {
				conflicts.push({path: target, reason: `${article(existing.kind)} in DST, not a directory`});
			} else {
				dirs.push(target);
			}
			wanted.add(target);
		} else if (entry.kind === 'file') {
			wanted.add(target);
			const existing = dstByPath.get(target);
			if (existing && existing.kind !== 'file') {
				conflicts.push({path: target, reason: `${article(existing.kind)} in DST, not a regular file; not overwritten`});
			} else {
				files.push({...entry, path: target});
			}
		} else {
			skipped.push({path: target, kind: entry.kind});
		}
	}
	const deletions: string[] = [];
	if (options.delete && dst) {
		for (const entry of dst) {
			// Only regular files go; a symlink (wherever it points), a device or a directory stays.
			if (entry.kind !== 'file' || wanted.has(entry.path) || badRelativePath(entry.path) !== undefined) {
				continue;
			}
			if (prefix !== '' && !entry.path.startsWith(`${prefix}/`)) {
				continue;
			}
			const inSrc = prefix === '' ? entry.path : entry.path.slice(prefix.length + 1);
			if (filter.includesWithParents(inSrc, false)) {
				deletions.push(entry.path);
			}
		}
		deletions.sort(compare);
	}
	return {files, dirs, skipped, deletions, conflicts};
}

/** The first directory above `path` that DST holds as something else than a directory. */
function blockedBy(path: string, dst: ReadonlyMap<string, TreeEntry>): {path: string; kind: EntryKind} | undefined {
	const parts = path.split('/');
	for (let depth = 1; depth < parts.length; depth++) {
		const above = dst.get(parts.slice(0, depth).join('/'));
		if (above && above.kind !== 'dir') {
			return {path: above.path, kind: above.kind};
		}
	}
	return undefined;
}

/** Byte order of the UTF-8 paths (stable whatever the locale). */
export function compare(a: string, b: string): number {
	return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Bytes per worker range a big file gets before it is split: smaller files run side by side on one worker each. */
export const SPLIT_BYTES = 64 * 1024 * 1024;

/** The workers a file of `size` bytes gets out of the run's `workers`. */
export function workersFor(size: number, workers: number): number {
	return Math.max(1, Math.min(workers, Math.ceil(size / SPLIT_BYTES)));
}

/** "a symlink", "a directory", ... */
export function article(kind: EntryKind): string {
	return kind === 'dir' ? 'a directory' : kind === 'symlink' ? 'a symlink' : kind === 'device' ? 'a device' : kind === 'fifo' ? 'a fifo'
		: kind === 'socket' ? 'a socket' : kind === 'file' ? 'a regular file' : 'a special file';
}

/** The warning for one entry of SRC's tree that is not synced. */
export function skippedWarning(path: string, kind: EntryKind): string {
	return `${path}: skipped: ${article(kind)}${kind === 'symlink' ? ' (not followed)' : ''}`;
}

/** How bad each exit status is, for a run over many files: interrupted, then an I/O failure, a verify mismatch, a refusal, --check's "differs". */
const SEVERITY = [0, 4, 1, 3, 2, 130];

/** The worst of the files' exit statuses (0 for none). */
export function worstExitCode(codes: readonly number[]): number {
	let worst = 0;
	for (const code of codes) {
		if (SEVERITY.indexOf(code) > SEVERITY.indexOf(worst)) {
			worst = code;
		}
	}
	return worst;
}
