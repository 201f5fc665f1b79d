import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {
	blockingHolder, describeHolder, destinationInUseMessage, guessVmId, type Holder, parseFdinfo, parseLockLine, processName,
	qemuLockState, sourceInUseMessage, writingHolder,
} from '../../source/image/holders.js';

const locks = suite('parseLockLine');

locks('should read an OFD lock as /proc/locks prints it, device numbers in hex', () => {
	assert.equal(parseLockLine('1: OFDLCK ADVISORY  READ -1 fe:00:2146351 100 101'), {
		kind: 'OFDLCK', exclusive: false, pid: -1, major: 0xfe, minor: 0, ino: 2146351, start: 100, end: 101,
	});
	assert.equal(parseLockLine('12: POSIX  ADVISORY  WRITE 4242 103:0a:77 0 EOF'), {
		kind: 'POSIX', exclusive: true, pid: 4242, major: 0x103, minor: 0x0a, ino: 77, start: 0, end: Number.POSITIVE_INFINITY,
	});
});

locks('should read fdinfo\'s "lock:" lines, and skip waiters and anything else', () => {
	assert.is(parseLockLine('lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:2146351 203 203')?.start, 203);
	assert.is(parseLockLine('1: -> POSIX  ADVISORY  WRITE 4243 fe:00:77 0 EOF'), undefined);
	assert.is(parseLockLine(''), undefined);
	assert.is(parseLockLine('pos:\t0'), undefined);
	assert.is(parseLockLine('1: OFDLCK ADVISORY READ -1 zz:00:1 100 101'), undefined);
});

const qemu = suite('qemuLockState');
const file = {major: 0xfe, minor: 0, ino: 2146351};
const line = (text: string) => parseLockLine(text)!;

qemu('should see a writing QEMU by byte 101, a reading one by its other bytes, on this file only', () => {
	// qemu-system-x86_64 with a writable disk: 100-101 held (read, write), 201 (write) not shared.
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  READ -1 fe:00:2146351 201 201'), line('2: OFDLCK ADVISORY  READ -1 fe:00:2146351 100 101')], file), {locked: true, writing: true});
	// qemu-nbd --read-only: byte 100 (consistent read) held, 201 not shared.
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  READ -1 fe:00:2146351 100 100'), line('2: OFDLCK ADVISORY  READ -1 fe:00:2146351 201 201')], file), {locked: true, writing: false});
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  READ -1 fe:00:2146352 100 101')], file), {locked: false, writing: false});
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  READ -1 fe:01:2146351 100 101')], file), {locked: false, writing: false});
});

qemu('should leave out flock and POSIX locks, and OFD locks outside QEMU\'s bytes', () => {
	assert.equal(qemuLockState([line('1: FLOCK  ADVISORY  WRITE 99 fe:00:2146351 0 EOF'), line('2: POSIX  ADVISORY  WRITE 99 fe:00:2146351 0 EOF')], file), {locked: false, writing: false});
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  WRITE -1 fe:00:2146351 0 99'), line('2: OFDLCK ADVISORY  READ -1 fe:00:2146351 300 400')], file), {locked: false, writing: false});
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  WRITE -1 fe:00:2146351 0 EOF')], file), {locked: true, writing: true});
	// Without a file: every lock given is on it (an fd's fdinfo).
	assert.equal(qemuLockState([line('1: OFDLCK ADVISORY  READ -1 08:01:5 101 101')]), {locked: true, writing: true});
});

const fdinfo = suite('parseFdinfo');

fdinfo('should tell writers from readers by O_ACCMODE of the octal flags, and keep the lock lines', () => {
	const qemuFd = 'pos:\t67108864\nflags:\t02100002\nmnt_id:\t27\nino:\t2146351\nlock:\t1: OFDLCK ADVISORY  READ -1 fe:00:2146351 100 101\nlock:\t2: OFDLCK ADVISORY  READ -1 fe:00:2146351 203 203\n';
	const parsed = parseFdinfo(qemuFd);
	assert.is(parsed.writable, true);
	assert.equal(parsed.locks.map(lock => [lock.start, lock.end]), [[100, 101], [203, 203]]);
	assert.is(parseFdinfo('pos:\t0\nflags:\t0100000\nmnt_id:\t24\n').writable, false);
	assert.is(parseFdinfo('pos:\t0\nflags:\t0100001\n').writable, true);
	assert.is(parseFdinfo('pos:\t0\nflags:\t0100003\n').writable, false, 'O_ACCMODE 3 is no write mode');
	assert.equal(parseFdinfo(''), {writable: false, locks: []});
});

const vm = suite('guessVmId');

vm('should read Proxmox\'s -id, libvirt\'s -name guest=, and a plain -name', () => {
	assert.is(guessVmId(['/usr/bin/kvm', '-id', '100', '-name', 'web,debug-threads=on', '-no-shutdown']), '100');
	assert.is(guessVmId(['/usr/bin/qemu-system-x86_64', '-name', 'guest=web1,debug-threads=on', '-S']), 'web1');
	assert.is(guessVmId(['qemu-system-x86_64', '-name', 'web2']), 'web2');
	assert.is(guessVmId(['qemu-system-x86_64', '-name', 'debug-threads=on,guest=db']), 'db');
	assert.is(guessVmId(['qemu-system-x86_64', '-name', 'guest=a,,b,debug-threads=on']), 'a,b', 'a doubled comma is one comma of the value');
	assert.is(guessVmId(['qemu-system-x86_64', '--name=guest=c']), 'c');
	assert.is(guessVmId(['qemu-system-x86_64', '-name', 'debug-threads=on']), undefined);
	assert.is(guessVmId(['qemu-system-x86_64', '-drive', 'file=x']), undefined);
	assert.is(guessVmId(['qemu-system-x86_64', '-name']), undefined);
	assert.is(guessVmId([]), undefined);
});

vm('should name a process by argv[0]\'s base name, comm when argv is empty', () => {
	assert.is(processName(['/usr/bin/qemu-system-x86_64', '-S'], 'qemu-system-x86\n'), 'qemu-system-x86_64');
	assert.is(processName([], 'kworker/0:1\n'), 'kworker/0:1');
	assert.is(processName([], ''), '?');
});

const holders = suite('holders and messages');
const holder = (fields: Partial<Holder> & {pid: number; name: string}): Holder => ({writable: false, qemuLock: {locked: false, writing: false}, vm: undefined, ...fields});

holders('should refuse for a QEMU lock first, then a QEMU writer, then any writer; never for a reader', () => {
	const reader = holder({pid: 1, name: 'cat'});
	const writer = holder({pid: 2, name: 'python3', writable: true});
	const vmWriter = holder({pid: 3, name: 'qemu-system-x86_64', writable: true, vm: '100'});
	const locked = holder({pid: 4, name: 'qemu-storage-daemon', qemuLock: {locked: true, writing: false}});
	assert.is(blockingHolder([reader]), undefined);
	assert.is(blockingHolder([]), undefined);
	assert.is(blockingHolder([reader, writer]), writer);
	assert.is(blockingHolder([writer, vmWriter]), vmWriter);
	assert.is(blockingHolder([writer, vmWriter, locked]), locked);
	assert.is(writingHolder([locked, reader]), undefined, 'a QEMU that only reads SRC changes nothing');
	assert.is(writingHolder([reader, writer]), writer);
	const lockedWriter = holder({pid: 5, name: 'qemu-kvm', qemuLock: {locked: true, writing: true}});
	assert.is(writingHolder([writer, lockedWriter]), lockedWriter);
});

holders('should word the refusal and the warning naming the process, its pid and the VM', () => {
	const vmHolder = holder({pid: 4242, name: 'qemu-system-x86_64', writable: true, vm: '100', qemuLock: {locked: true, writing: true}});
	assert.is(describeHolder(vmHolder), 'qemu-system-x86_64 (pid 4242, VM 100?)');
	assert.is(destinationInUseMessage('/dev/pve/vm-100-disk-0', vmHolder), 'DST /dev/pve/vm-100-disk-0 is in use by qemu-system-x86_64 (pid 4242, VM 100?): stop the VM or sync to another volume');
	assert.is(destinationInUseMessage('d.img', holder({pid: 7, name: 'python3', writable: true})), 'DST d.img is open for writing by python3 (pid 7): stop it or sync to another volume');
	assert.is(destinationInUseMessage('d.img', undefined), 'DST d.img is in use by a QEMU process (it holds QEMU\'s lock on the image; no process here shows it open): stop the VM or sync to another volume');
	assert.is(sourceInUseMessage('/dev/pve/vm-100-disk-0', vmHolder), 'SRC /dev/pve/vm-100-disk-0 is open for writing by qemu-system-x86_64 (pid 4242, VM 100?): the copy is crash-consistent at best; for a consistent one, make the last pass with the VM stopped, or paused with --qmp (each pass sends only what changed): see RUNNING VMS in rblocksync(1)');
	assert.match(sourceInUseMessage('s.img', holder({pid: 8, name: 'dd', writable: true})), /^SRC s\.img is open for writing by dd \(pid 8\): the copy is crash-consistent at best; for a consistent one, sync again once it has stopped \(the second pass sends only what changed\)$/);
});

for (const each of [locks, qemu, fdinfo, vm, holders]) {
	each.run();
}
