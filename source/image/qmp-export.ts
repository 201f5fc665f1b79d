// A disk of a running VM (--qmp SOCKET) as an NBD export of that VM's own QEMU: found by SRC's path among
// the VM's block nodes, exported read-only on a private Unix socket, and removed when the run ends. Each
// step is one short QMP session (qmp-session.ts): the monitor socket is never held between them.
import fs from 'node:fs';
import {processExists} from './proc-files.js';
import os from 'node:os';
import path from 'node:path';
import {UsageError} from '../errors.js';
import {qmpRun, type QmpCommand, type QmpResult, QmpSessionError} from './qmp-session.js';

/** One block node as query-block or query-named-block-nodes describe it. */
type NodeInfo = {'node-name'?: string; drv?: string; file?: string; image?: {filename?: string}};
type BlockInfo = {device?: string; qdev?: string; inserted?: NodeInfo};

/**
 * The disk SRC's path names: the node to export (the guest's view), how errors name it, and the format node
 * under it that keeps dirty bitmaps (persistent ones only in a qcow2).
 */
export type VmDisk = {readonly node: string; readonly label: string; readonly file: string; readonly drv: string; readonly bitmapNode?: string; readonly bitmapDrv?: string};

/** Protocol drivers: the node under a format node (raw, qcow2), never the one to export when a format node has the same file. */
const PROTOCOL_DRIVERS = new Set(['file', 'host_device', 'host_cdrom', 'nbd', 'rbd', 'iscsi', 'nfs', 'ssh', 'http', 'https', 'gluster']);

/** What the export's id starts with: an id of ours, and whose (this host's boot, this process). */
export const EXPORT_PREFIX = 'rblocksync-';

function fail(socket: string, what: string, result: QmpResult | undefined): never {
	const said = result && !result.ok ? result.desc : 'no answer';
	throw new UsageError(`--qmp ${socket}: ${what}: ${said}`);
}

/** Runs one session; a session that fails as a whole (no VM, a busy or dead monitor) is one line, exit 1. */
function session(socket: string, commands: readonly QmpCommand[], keepGoing = false): QmpResult[] {
	try {
		return qmpRun(socket, commands, {keepGoing});
	} catch (error) {
		if (error instanceof QmpSessionError) {
			throw new UsageError(`--qmp ${socket}: ${error.message}`, {cause: error});
		}
		throw error;
	}
}

function samePath(a: string | undefined, b: string): boolean {
	if (a === undefined || a === '') {
		return false;
	}
	if (a === b) {
		return true;
	}
	try {
		return fs.realpathSync(a) === fs.realpathSync(b);
	} catch {
		return false;
	}
}

/**
 * The disk of the VM whose file is `file` (the path QEMU opened, or a symlink to it such as Proxmox's
 * /dev/pve/vm-100-disk-0): a guest device's root node first (query-block: what the guest sees, filters
 * included), else the format node of a -blockdev no device uses. Throws UsageError listing the VM's disks.
 */
export function findDisk(devices: readonly BlockInfo[], nodes: readonly NodeInfo[], file: string, socket: string): VmDisk {
	const disk = findRoot(devices, nodes, file, socket);
	const format = nodes.find(node => node['node-name'] === disk.node && !PROTOCOL_DRIVERS.has(node.drv ?? '') && !FILTER_DRIVERS.has(node.drv ?? ''))
		?? nodes.find(node => node['node-name'] && samePath(node.file, disk.file) && !PROTOCOL_DRIVERS.has(node.drv ?? '') && !FILTER_DRIVERS.has(node.drv ?? ''));
	return format ? {...disk, bitmapNode: format['node-name']!, bitmapDrv: format.drv ?? ''} : disk;
}

/** Filter drivers: a guest device's root node may be one, above the format node. */
const FILTER_DRIVERS = new Set(['throttle', 'copy-on-read', 'preallocate', 'compress', 'blkdebug', 'blklogwrites', 'blkverify', 'copy-before-write', 'snapshot-access']);

function findRoot(devices: readonly BlockInfo[], nodes: readonly NodeInfo[], file: string, socket: string): VmDisk {
	for (const device of devices) {
		const inserted = device.inserted;
		if (inserted?.['node-name'] && (samePath(inserted.file, file) || samePath(inserted.image?.filename, file))) {
			return {node: inserted['node-name'], label: deviceLabel(device) || inserted['node-name'], file: inserted.file ?? file, drv: inserted.drv ?? ''};
		}
	}
	const matching = nodes.filter(node => node['node-name'] && (samePath(node.file, file) || samePath(node.image?.filename, file)));
	const chosen = matching.find(node => !PROTOCOL_DRIVERS.has(node.drv ?? '')) ?? matching[0];
	if (chosen) {
		return {node: chosen['node-name']!, label: chosen['node-name']!, file: chosen.file ?? file, drv: chosen.drv ?? ''};
	}
	throw new UsageError(`SRC ${file} is no disk of the VM at ${socket}; its disks: ${listDisks(devices, nodes) || 'none'}`);
}

/** The guest device's id (its qdev path's, /machine/peripheral/ID/...), else the drive's (Proxmox: drive-scsi0). */
function deviceLabel(device: BlockInfo): string {
	const qdev = device.qdev ?? '';
	return (qdev.includes('/') ? /^\/machine\/peripheral\/([^/]+)/.exec(qdev)?.[1] : qdev) || device.device || '';
}

/** "scsi0 (/dev/pve/vm-100-disk-0), ..." for the refusal: the guest's devices, else the format nodes. */
function listDisks(devices: readonly BlockInfo[], nodes: readonly NodeInfo[]): string {
	const attached = devices.filter(device => device.inserted?.file).map(device => `${deviceLabel(device) || device.inserted!['node-name']} (${device.inserted!.file})`);
	if (attached.length > 0) {
		return attached.join(', ');
	}
	return nodes.filter(node => node.file && !PROTOCOL_DRIVERS.has(node.drv ?? '')).map(node => `${node['node-name']} (${node.file})`).join(', ');
}

/** This host's boot id (the export ids of this host's runs carry it), or "" where /proc does not tell. */
function bootTag(): string {
	try {
		return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 8);
	} catch {
		return '';
	}
}

/**
 * An export id: rblocksync-BOOT-PID-N, and a trailing "-s" when this run started the NBD server. A later run
 * on this host removes the exports (and such a server) of a run that died without cleaning up (SIGKILL).
 */
function exportId(startsServer: boolean, serial: number): string {
	return `${EXPORT_PREFIX}${bootTag()}-${process.pid}-${serial}${startsServer ? '-s' : ''}`;
}

/** The owner of an export id of ours, if it ran on this boot of this host and is dead: its export may go. */
export function staleExport(id: string, boot = bootTag(), isAlive = processExists): {startedServer: boolean} | undefined {
	const match = /^rblocksync-([0-9a-f]*)-(\d+)-\d+(-s)?$/.exec(id);
	if (!match || match[1] !== boot || boot === '' || isAlive(Number(match[2]))) {
		return undefined;
	}
	return {startedServer: match[3] !== undefined};
}

let serial = 0;

/** A live export: the NBD socket and export name to read; remove() takes it away (and the server if this run started it). */
export type VmExport = {readonly socket: string; readonly exportName: string; readonly disk: VmDisk; remove(): void};

export type ExportOptions = {
	/** Dirty bitmaps of the disk's node to export with it (qemu:dirty-bitmap:NAME). */
	readonly bitmaps?: readonly string[];
	/** Called with the disk found and a runner of QMP commands, before the export is added (--bitmap's pass begins there). */
	readonly beforeExport?: (disk: VmDisk, run: (commands: readonly QmpCommand[]) => unknown[]) => void;
};

/** Runs commands in one session; the first error is one line naming the command (exit 1). */
export function qmpRunner(socket: string): (commands: readonly QmpCommand[]) => unknown[] {
	return commands => {
		const results = session(socket, commands);
		return results.map((result, index) => result.ok ? result.value : fail(socket, commands[index]!.execute, result));
	};
}

/**
 * Exports the disk SRC's path names, read-only, on a socket in a fresh 0700 directory. The VM's NBD server
 * is started for it unless one runs already (Proxmox runs one during a migration: never ours to stop),
 * and then this run refuses rather than export on a server whose address it does not know.
 */
export function exportDisk(socket: string, file: string, options: ExportOptions = {}): VmExport {
	const [devices, nodes, exports] = session(socket, [{execute: 'query-block'}, {execute: 'query-named-block-nodes', arguments: {flat: true}}, {execute: 'query-block-exports'}]);
	if (!devices?.ok || !nodes?.ok || !exports?.ok) {
		fail(socket, 'cannot list the VM\'s disks', [devices, nodes, exports].find(result => result && !result.ok));
	}
	const disk = findDisk(devices.value as BlockInfo[], nodes.value as NodeInfo[], file, socket);
	removeStale(socket, exports.value as Array<{id: string}>);
	options.beforeExport?.(disk, qmpRunner(socket));
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rblocksync-qmp-'));
	fs.chmodSync(dir, 0o700);
	const nbdSocket = path.join(dir, 'nbd.sock');
	const id = exportId(true, ++serial);
	const exportArguments = {type: 'nbd', id, 'node-name': disk.node, name: id, writable: false, ...(options.bitmaps?.length ? {bitmaps: options.bitmaps} : {})};
	let results: QmpResult[];
	try {
		results = startAndExport(socket, nbdSocket, exportArguments);
	} catch (error) {
		fs.rmSync(dir, {recursive: true, force: true});
		throw error;
	}
	const [started, added] = results;
	if (!started?.ok) {
		fs.rmSync(dir, {recursive: true, force: true});
		if (started && /already running/i.test(started.desc)) {
			throw new UsageError(`--qmp ${socket}: the VM runs an NBD server already (Proxmox's, for a migration or backup?); rblocksync exports only on a server of its own and never stops another's: run again once it is gone`);
		}
		fail(socket, 'nbd-server-start', started);
	}
	if (!added?.ok) {
		try {
			session(socket, [{execute: 'nbd-server-stop'}]);
		} finally {
			fs.rmSync(dir, {recursive: true, force: true});
		}
		fail(socket, `cannot export ${disk.label} (node ${disk.node})`, added);
	}
	let removed = false;
	return {
		socket: nbdSocket, exportName: id, disk,
		remove() {
			if (removed) {
				return;
			}
			removed = true;
			try {
				// hard: connections of this run still open (a worker killed mid-read) are dropped with the export.
				session(socket, [{execute: 'block-export-del', arguments: {id, mode: 'hard'}}, {execute: 'nbd-server-stop'}], true);
				waitGone(socket, id);
			} finally {
				fs.rmSync(dir, {recursive: true, force: true});
			}
		},
	};
}

/**
 * nbd-server-start, then block-export-add. A server that runs already may be the previous run's, whose agent is
 * still removing it (a driver does not wait for a remote agent's end): tried again for a while when an export of
 * a living run of ours is there, and briefly in any case; a server still there after that is not ours to use.
 */
function startAndExport(socket: string, nbdSocket: string, exportArguments: Record<string, unknown>): QmpResult[] {
	const sleeper = new Int32Array(new SharedArrayBuffer(4));
	const started = Date.now();
	for (;;) {
		const results = session(socket, [{execute: 'nbd-server-start', arguments: {addr: {type: 'unix', data: {path: nbdSocket}}}}, {execute: 'block-export-add', arguments: exportArguments}]);
		const [start] = results;
		if (start?.ok || !/already running/i.test(start?.desc ?? '')) {
			return results;
		}
		const [exports] = session(socket, [{execute: 'query-block-exports'}]);
		const ours = exports?.ok && (exports.value as Array<{id: string}>).some(entry => ownerAlive(entry.id));
		if (Date.now() - started > (ours ? 15_000 : 2000)) {
			return results;
		}
		Atomics.wait(sleeper, 0, 0, 100);
	}
}

/** An export id of a run of ours on this boot of this host that is still alive. */
function ownerAlive(id: string): boolean {
	const match = /^rblocksync-([0-9a-f]*)-(\d+)-\d+(-s)?$/.exec(id);
	return match !== null && match[1] === bootTag() && match[1] !== '' && processExists(Number(match[2]));
}

/** block-export-del ends the export asynchronously: its bitmaps stay busy until it is gone (a few polls at most). */
function waitGone(socket: string, id: string): void {
	const sleeper = new Int32Array(new SharedArrayBuffer(4));
	for (const until = Date.now() + 5000; Date.now() < until; Atomics.wait(sleeper, 0, 0, 20)) {
		const [exports] = session(socket, [{execute: 'query-block-exports'}]);
		if (!exports?.ok || !(exports.value as Array<{id: string}>).some(entry => entry.id === id)) {
			return;
		}
	}
}

/** The exports of runs of this host that died without removing them, and the servers they started. */
function removeStale(socket: string, exports: ReadonlyArray<{id: string}>): void {
	const commands: QmpCommand[] = [];
	let server = false;
	for (const {id} of exports) {
		const stale = staleExport(id);
		if (stale) {
			commands.push({execute: 'block-export-del', arguments: {id, mode: 'hard'}});
			server ||= stale.startedServer;
		}
	}
	if (server) {
		commands.push({execute: 'nbd-server-stop'});
	}
	if (commands.length > 0) {
		session(socket, commands, true);
	}
}
