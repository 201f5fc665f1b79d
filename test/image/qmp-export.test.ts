import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {findDisk, staleExport} from '../../source/image/qmp-export.js';
import {UsageError} from '../../source/errors.js';

const test = suite('the disk of a VM (--qmp): finding it, stale exports');

// As query-block and query-named-block-nodes describe a Proxmox VM: an LVM volume on scsi0 (a -drive), a qcow2 on virtio1.
const devices = [
	{device: 'drive-scsi0', qdev: 'scsi0', inserted: {'node-name': '#block164', drv: 'raw', file: '/dev/pve/vm-100-disk-0'}},
	{device: '', qdev: '/machine/peripheral/virtio1/virtio-backend', inserted: {'node-name': 'fmt1', drv: 'qcow2', file: '/var/lib/vz/images/100/vm-100-disk-1.qcow2'}},
	{device: 'ide2', qdev: 'ide2'},
];
const nodes = [
	{'node-name': 'fmt1', drv: 'qcow2', file: '/var/lib/vz/images/100/vm-100-disk-1.qcow2'},
	{'node-name': 'proto1', drv: 'file', file: '/var/lib/vz/images/100/vm-100-disk-1.qcow2'},
	{'node-name': 'spare', drv: 'raw', file: '/srv/spare.raw'},
	{'node-name': 'spare-file', drv: 'file', file: '/srv/spare.raw'},
];

test('should take a guest device\'s root node for the file it uses, named by the device', () => {
	assert.equal(findDisk(devices, nodes, '/dev/pve/vm-100-disk-0', 'S'), {node: '#block164', label: 'scsi0', file: '/dev/pve/vm-100-disk-0', drv: 'raw'});
	assert.is(findDisk(devices, nodes, '/var/lib/vz/images/100/vm-100-disk-1.qcow2', 'S').label, 'virtio1');
});

test('should take the format node of a -blockdev no device uses, never its protocol node', () => {
	assert.equal(findDisk(devices, nodes, '/srv/spare.raw', 'S'), {node: 'spare', label: 'spare', file: '/srv/spare.raw', drv: 'raw', bitmapNode: 'spare', bitmapDrv: 'raw'});
});

test('should keep dirty bitmaps on the format node under a filter the guest device sees (a throttle group)', () => {
	const throttled = [{device: '', qdev: 'virtio2', inserted: {'node-name': 'throttle2', drv: 'throttle', file: '/srv/os.qcow2'}}];
	const under = [{'node-name': 'throttle2', drv: 'throttle', file: '/srv/os.qcow2'}, {'node-name': 'os-fmt', drv: 'qcow2', file: '/srv/os.qcow2'}, {'node-name': 'os-file', drv: 'file', file: '/srv/os.qcow2'}];
	assert.equal(findDisk(throttled, under, '/srv/os.qcow2', 'S'), {node: 'throttle2', label: 'virtio2', file: '/srv/os.qcow2', drv: 'throttle', bitmapNode: 'os-fmt', bitmapDrv: 'qcow2'});
	assert.is(findDisk(devices, nodes, '/var/lib/vz/images/100/vm-100-disk-1.qcow2', 'S').bitmapNode, 'fmt1');
});

test('should match a symlink to the file QEMU opened', () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-qmp-find-'));
	try {
		fs.writeFileSync(path.join(dir, 'disk.raw'), '');
		fs.symlinkSync(path.join(dir, 'disk.raw'), path.join(dir, 'link'));
		const disk = findDisk([{device: 'd', inserted: {'node-name': 'n', drv: 'raw', file: path.join(dir, 'disk.raw')}}], [], path.join(dir, 'link'), 'S');
		assert.is(disk.node, 'n');
	} finally {
		fs.rmSync(dir, {recursive: true, force: true});
	}
});

test('should refuse a path that is no disk of the VM, listing the guest\'s disks', () => {
	assert.throws(() => findDisk(devices, nodes, '/dev/pve/vm-101-disk-0', '/var/run/qemu-server/100.qmp'), (error: unknown) => error instanceof UsageError
		&& error.message === 'SRC /dev/pve/vm-101-disk-0 is no disk of the VM at /var/run/qemu-server/100.qmp; its disks: scsi0 (/dev/pve/vm-100-disk-0), virtio1 (/var/lib/vz/images/100/vm-100-disk-1.qcow2)');
	assert.throws(() => findDisk([], nodes, '/x', 'S'), /its disks: fmt1 \(\/var\/lib\/vz\/images\/100\/vm-100-disk-1.qcow2\), spare \(\/srv\/spare.raw\)$/);
	assert.throws(() => findDisk([], [], '/x', 'S'), /its disks: none$/);
});

test('should call stale only an export of ours from this boot whose process is gone', () => {
	const dead = (): boolean => false;
	const living = (): boolean => true;
	assert.equal(staleExport('rblocksync-9ba95376-734-1-s', '9ba95376', dead), {startedServer: true});
	assert.equal(staleExport('rblocksync-9ba95376-734-2', '9ba95376', dead), {startedServer: false});
	assert.is(staleExport('rblocksync-9ba95376-734-1-s', '9ba95376', living), undefined);
	assert.is(staleExport('rblocksync-0badb007-734-1-s', '9ba95376', dead), undefined, 'another boot (or host): its pid means nothing here');
	assert.is(staleExport('pve-backup-1', '9ba95376', dead), undefined);
	assert.is(staleExport('rblocksync--734-1-s', '', dead), undefined);
});

test.run();
