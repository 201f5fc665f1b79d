// --bitmap NAME on a running VM (--qmp): the dirty bitmaps of the VM's disk through its QEMU, as bitmap.ts's
// BitmapStore. A running QEMU exports a bitmap read-only only while it records nothing, so during a pass NAME is
// disabled and NAME.next records, switched in one transaction: every write lands in one or the other, none is lost.
import {type BitmapStore, nextBitmap} from './bitmap.js';
import type {QmpCommand} from './qmp-session.js';

/** A VM's bitmaps: a BitmapStore that can also turn recording back on. */
export type VmBitmapStore = BitmapStore & {enable(name: string): void};

/** Runs one QMP session (the caller's, which makes its failures one line); throws on the first error. */
export type QmpRunner = (commands: readonly QmpCommand[]) => unknown[];

type NodeBitmaps = {'node-name'?: string; 'dirty-bitmaps'?: Array<{name: string; recording: boolean}>};

/**
 * The bitmaps of block node `node` (the disk's format node) of the VM. `add` of NAME.next disables NAME in the
 * same transaction; `merge` into NAME enables NAME in the same transaction: so NAME ∪ NAME.next always holds
 * every write since the last completed pass, and NAME records again once the rotation is done.
 */
export function qmpBitmaps(run: QmpRunner, node: string, name: string, persistent: boolean): VmBitmapStore {
	const next = nextBitmap(name);
	return {
		enable(bitmap) {
			run([{execute: 'block-dirty-bitmap-enable', arguments: {node, name: bitmap}}]);
		},
		list() {
			const [nodes] = run([{execute: 'query-named-block-nodes', arguments: {flat: true}}]) as [NodeBitmaps[]];
			return (nodes.find(entry => entry['node-name'] === node)?.['dirty-bitmaps'] ?? []).map(bitmap => ({name: bitmap.name, enabled: bitmap.recording}));
		},
		add(bitmap) {
			const add = {type: 'block-dirty-bitmap-add', data: {node, name: bitmap, persistent}};
			run([{execute: 'transaction', arguments: {actions: bitmap === next ? [add, {type: 'block-dirty-bitmap-disable', data: {node, name}}] : [add]}}]);
		},
		clear(bitmap) {
			run([{execute: 'block-dirty-bitmap-clear', arguments: {node, name: bitmap}}]);
		},
		merge(from, into) {
			const merge = {type: 'block-dirty-bitmap-merge', data: {node, target: into, bitmaps: [from]}};
			run([{execute: 'transaction', arguments: {actions: into === name ? [{type: 'block-dirty-bitmap-enable', data: {node, name}}, merge] : [merge]}}]);
		},
		remove(bitmap) {
			run([{execute: 'block-dirty-bitmap-remove', arguments: {node, name: bitmap}}]);
		},
	};
}

/**
 * A pass that ended without its commit (failed, interrupted, a dry run): NAME.next merged back into NAME, which
 * records again, and NAME.next removed; the VM's bitmaps are as before the pass, plus every write since.
 */
export function settleBitmaps(store: BitmapStore, name: string): void {
	const next = nextBitmap(name);
	if (store.list().some(bitmap => bitmap.name === next)) {
		store.merge(next, name);
		store.remove(next);
	}
}

/**
 * NAME on the VM's disk before a pass: added when missing (persistent in a qcow2; a raw disk keeps it in QEMU until
 * the VM stops), and enabled when it records nothing with no NAME.next beside it. Either way the bitmap does not
 * cover the writes since the last pass: `fresh`, and the pass must be full.
 */
export function readyBitmap(store: VmBitmapStore, name: string): {fresh: boolean} {
	const bitmaps = store.list();
	const found = bitmaps.find(bitmap => bitmap.name === name);
	if (!found) {
		store.add(name);
		return {fresh: true};
	}
	if (!found.enabled && !bitmaps.some(bitmap => bitmap.name === nextBitmap(name))) {
		store.enable(name);
		return {fresh: true};
	}
	return {fresh: false};
}
