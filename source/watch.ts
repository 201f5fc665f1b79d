// --watch: after the first pass, sync each file of the local SRC trees that changed, once writes to it have been quiet
// for --debounce (default 2 s). fs.watch's recursive mode where Node has it (not on Linux before Node 20), else one
// watcher per directory (new directories get theirs). Ctrl-C ends it with 130 after the file being synced.
import fs from 'node:fs';
import path from 'node:path';
import {ExitCode} from './errors.js';
import type {Options} from './options.js';
import type {ManyReporter} from './ui/many-reporter.js';
import {runMany} from './many.js';
import {baseName} from './tree/plan.js';

/** Whether fs.watch takes {recursive: true} here: Linux since Node 20 (19.1), macOS and Windows always. */
export function recursiveWatchWorks(platform = process.platform, version = process.versions.node): boolean {
	if (platform !== 'linux') {
		return platform === 'darwin' || platform === 'win32';
	}
	const [major = 0, minor = 0] = version.split('.').map(Number);
	return major > 19 || (major === 19 && minor >= 1);
}

/** Paths changed under one root, each synced once quiet for `quietMs`. */
class Debouncer {
	private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
	constructor(private readonly quietMs: number, private readonly ready: (path: string) => void) {}
	touch(path: string): void {
		clearTimeout(this.timers.get(path));
		this.timers.set(path, setTimeout(() => {
			this.timers.delete(path);
			this.ready(path);
		}, this.quietMs));
	}
	clear(): void {
		this.timers.forEach(timer => clearTimeout(timer));
		this.timers.clear();
	}
}

/** Watches `root`: `changed` gets each path relative to it that an event names. */
function watchRoot(root: string, changed: (relative: string) => void): () => void {
	const watchers = new Map<string, fs.FSWatcher>();
	const add = (relative: string): void => {
		if (watchers.has(relative)) {
			return;
		}
		const dir = relative === '' ? root : path.join(root, relative);
		try {
			const watcher = fs.watch(dir, {recursive: recursiveWatchWorks() && relative === ''}, (_event, name) => {
				if (name === null) {
					return;
				}
				const inRoot = relative === '' ? name.toString() : `${relative}/${name.toString()}`;
				changed(inRoot);
				if (!recursiveWatchWorks()) {
					// A new directory gets its own watcher (and what is already in it is looked at once).
					try {
						if (fs.lstatSync(path.join(root, inRoot)).isDirectory()) {
							walk(inRoot);
						}
					} catch {
						// Gone again.
					}
				}
			});
			watcher.on('error', () => {
				watcher.close();
				watchers.delete(relative);
			});
			watchers.set(relative, watcher);
		} catch {
			// A directory that went away meanwhile.
		}
	};
	const walk = (relative: string): void => {
		add(relative);
		let entries: fs.Dirent[];
		try {
			entries = fs.readdirSync(relative === '' ? root : path.join(root, relative), {withFileTypes: true});
		} catch {
			return;
		}
		for (const entry of entries) {
			const inRoot = relative === '' ? entry.name : `${relative}/${entry.name}`;
			if (entry.isDirectory()) {
				walk(inRoot);
			} else if (entry.isFile() && relative !== '') {
				changed(inRoot);
			}
		}
	};
	if (recursiveWatchWorks()) {
		add('');
	} else {
		walk('');
	}
	return () => watchers.forEach(watcher => watcher.close());
}

/** After the first pass: watches until `signal`, then resolves 130 once the pass under way is over. */
export async function watchTree(options: Options, reporter: ManyReporter, signal: AbortSignal): Promise<number> {
	const pending = new Set<string>();
	let wake: (() => void) | undefined;
	const stops: Array<() => void> = [];
	const debouncers: Debouncer[] = [];
	for (const source of options.sources) {
		// Paths as many.ts names them under DSTDIR: SRCDIR/ by themselves, SRCDIR under its name.
		const prefix = source.path.endsWith('/') ? '' : `${baseName(source.path)}/`;
		const debouncer = new Debouncer(options.debounceMs, relative => {
			pending.add(`${prefix}${relative}`);
			wake?.();
		});
		debouncers.push(debouncer);
		stops.push(watchRoot(source.path, relative => debouncer.touch(relative)));
	}
	reporter.note(`watching ${options.sources.map(source => source.path).join(', ')} (changes synced once quiet for ${options.debounceMs / 1000} s; Ctrl-C ends)`);
	try {
		while (!signal.aborted) {
			if (pending.size === 0) {
				await new Promise<void>(resolve => {
					wake = resolve;
					signal.addEventListener('abort', () => resolve(), {once: true});
				});
				wake = undefined;
				continue;
			}
			const only = new Set(pending);
			pending.clear();
			// Not stopped by Ctrl-C: the file under way is finished first (a second Ctrl-C still exits at once).
			try {
				await runMany({...options, watch: false}, reporter, new AbortController().signal, only);
			} catch (error) {
				reporter.warn(`watch: ${error instanceof Error ? error.message : String(error)}`);
			}
		}
	} finally {
		stops.forEach(stop => stop());
		debouncers.forEach(debouncer => debouncer.clear());
	}
	return ExitCode.interrupted;
}
