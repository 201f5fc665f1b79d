// The rooms of source/ and what each may import (doc/architecture.md): one way only, no cycle, nothing upward.
import fs from 'node:fs';
import path from 'node:path';

/** Modules at the top of source/ that every room may use: they import nothing of ours. */
export const BASE_FILES = new Set(['errors', 'version', 'environment']);

/** What each room may import besides itself and the base files. `root` is the rest of source/'s top level (cli, main, run, options...). */
export const ALLOWED: Record<string, readonly string[]> = {
	blocks: [],
	tree: [],
	native: [],
	protocol: ['blocks'],
	ssh: [],
	nbd: [],
	qmp: [],
	image: ['blocks', 'native', 'nbd', 'qmp', 'tree'],
	delta: ['image', 'blocks', 'native', 'protocol'],
	agent: ['delta', 'image', 'blocks', 'native', 'protocol', 'tree'],
	engine: ['image', 'blocks', 'native'],
	remote: ['agent', 'delta', 'engine', 'image', 'blocks', 'native', 'protocol', 'ssh', 'tree'],
	ui: ['engine', 'blocks', 'tree'],
	root: ['ui', 'remote', 'engine', 'agent', 'delta', 'image', 'protocol', 'ssh', 'nbd', 'qmp', 'native', 'blocks', 'tree'],
};

/** The room of a module path relative to source/ ("engine/run-sync.ts" -> "engine", "main.ts" -> "root" or "base"). */
export function roomOf(relative: string): string {
	const parts = relative.split('/');
	if (parts.length === 1) {
		return BASE_FILES.has(parts[0]!.replace(/\.[^.]+$/, '')) ? 'base' : 'root';
	}
	return parts[0]!;
}

export type Edge = {from: string; to: string};

/** Every relative import (static, type-only and dynamic) between modules of the tree at `dir`, as paths relative to it. */
export function importGraph(dir: string): Edge[] {
	const edges: Edge[] = [];
	const walk = (at: string): void => {
		for (const entry of fs.readdirSync(at, {withFileTypes: true})) {
			const full = path.join(at, entry.name);
			if (entry.isDirectory()) {
				walk(full);
			} else if (/\.(tsx?|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
				const text = fs.readFileSync(full, 'utf8');
				for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
					const target = path.relative(dir, path.resolve(path.dirname(full), match[1]!));
					edges.push({from: path.relative(dir, full), to: target});
				}
			}
		}
	};
	walk(dir);
	return edges;
}

/** The imports that break the rules: into a room not allowed, or out of the tree. */
export function violations(edges: readonly Edge[]): string[] {
	const found: string[] = [];
	for (const {from, to} of edges) {
		const a = roomOf(from);
		const b = roomOf(to);
		if (to.startsWith('..')) {
			found.push(`${from} imports ${to}, outside source/`);
		} else if (b === 'base' || a === b) {
			continue;
		} else if (a === 'base') {
			found.push(`${from} is a base module but imports ${to}`);
		} else if (!(ALLOWED[a] ?? []).includes(b)) {
			found.push(`${from} (${a}) imports ${to} (${b}), which ${a} may not import`);
		}
	}
	return found;
}

/** Cycles between rooms (a -> b -> ... -> a), each as a path of room names. */
export function roomCycles(edges: readonly Edge[]): string[][] {
	const next = new Map<string, Set<string>>();
	for (const {from, to} of edges) {
		const a = roomOf(from);
		const b = roomOf(to);
		if (a !== b) {
			(next.get(a) ?? next.set(a, new Set()).get(a)!).add(b);
		}
	}
	const cycles: string[][] = [];
	const visit = (room: string, trail: string[]): void => {
		for (const b of next.get(room) ?? []) {
			if (b === trail[0]) {
				cycles.push([...trail, b]);
			} else if (!trail.includes(b) && b > trail[0]!) {
				visit(b, [...trail, b]);
			}
		}
	};
	for (const room of next.keys()) {
		visit(room, [room]);
	}
	return cycles;
}
