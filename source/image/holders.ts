// Who else uses an image, read from the text /proc gives (pure): lock lines (/proc/locks, fdinfo's "lock:"),
// fdinfo's open flags, a process's command line (its name, the VM it runs), and the one-line messages.

/**
 * QEMU's image locks (block/file-posix.c, file.locking): an OFD read lock on byte 100 + i for each
 * permission bit i it holds on the image, and on byte 200 + i for each one it does not share with others.
 * Bit 1 is BLK_PERM_WRITE: byte 101 locked means a QEMU writes the image. [100, 300) covers every bit of
 * every QEMU version (libvirt's own lock is byte 0, outside it).
 */
export const QEMU_LOCK = {start: 100, end: 300, writeByte: 101} as const;

/**
 * The bytes a VM writing its disk locks (consistent read 100, write 101, write not shared 201), which the
 * run takes on the DST it writes: a QEMU started meanwhile then finds the image in use and refuses to
 * open it ("Failed to get "write" lock"), as it would for another VM.
 */
export const QEMU_WRITER_BYTES = [100, 101, 201] as const;

/** One lock as /proc/locks (or a "lock:" line of /proc/PID/fdinfo/FD) shows it; `end` inclusive, Infinity for EOF. */
export type LockLine = {
	readonly kind: string;
	readonly exclusive: boolean;
	/** -1 for an OFD lock: the kernel ties it to no process. */
	readonly pid: number;
	readonly major: number;
	readonly minor: number;
	readonly ino: number;
	readonly start: number;
	readonly end: number;
};

/**
 * Parses "1: OFDLCK ADVISORY  READ -1 fe:00:2146351 100 101" (device numbers in hex, as the kernel
 * prints them; a leading "lock:\t" is allowed). undefined for anything else, and for "1: -> ..." (a
 * waiter's request, not a held lock).
 */
export function parseLockLine(line: string): LockLine | undefined {
	const match = /^(?:lock:\s*)?\d+:\s+(\S+)\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s+(\d+)\s+(\d+|EOF)\s*$/i.exec(line);
	if (!match) {
		return undefined;
	}
	return {
		kind: match[1]!,
		exclusive: match[2] === 'WRITE',
		pid: Number(match[3]),
		major: Number.parseInt(match[4]!, 16),
		minor: Number.parseInt(match[5]!, 16),
		ino: Number(match[6]),
		start: Number(match[7]),
		end: match[8] === 'EOF' ? Number.POSITIVE_INFINITY : Number(match[8]),
	};
}

/**
 * QEMU's locks among `locks` on the file (major, minor, ino; undefined: every lock given is on the file,
 * as an fd's fdinfo lists them): whether any is held, and whether one says "writes".
 */
export function qemuLockState(locks: readonly LockLine[], file?: {major: number; minor: number; ino: number}): {locked: boolean; writing: boolean} {
	let locked = false;
	let writing = false;
	for (const lock of locks) {
		if (lock.kind !== 'OFDLCK' || (file && (lock.major !== file.major || lock.minor !== file.minor || lock.ino !== file.ino))) {
			continue;
		}
		if (lock.start < QEMU_LOCK.end && lock.end >= QEMU_LOCK.start) {
			locked = true;
		}
		if (lock.start <= QEMU_LOCK.writeByte && lock.end >= QEMU_LOCK.writeByte) {
			writing = true;
		}
	}
	return {locked, writing};
}

/** What /proc/PID/fdinfo/FD says of one open file: whether it was opened for writing, and its locks. */
export type FdInfo = {readonly writable: boolean; readonly locks: readonly LockLine[]};

/** Parses fdinfo's text: "flags:\t0100002" (octal; O_ACCMODE 1 is O_WRONLY, 2 O_RDWR) and its "lock:" lines. */
export function parseFdinfo(text: string): FdInfo {
	const flags = /^flags:\s*([0-7]+)\s*$/m.exec(text);
	const mode = flags ? Number.parseInt(flags[1]!, 8) & 3 : 0;
	const locks = text.split('\n').filter(line => line.startsWith('lock:')).map(parseLockLine).filter((lock): lock is LockLine => lock !== undefined);
	return {writable: mode === 1 || mode === 2, locks};
}

/** A process's name: the base name of argv[0] (comm is cut at 15 bytes: "qemu-system-x86"), else comm. */
export function processName(argv: readonly string[], comm: string): string {
	const first = argv[0] ?? '';
	const base = first.slice(first.lastIndexOf('/') + 1);
	return base || comm.trim() || '?';
}

/** True for QEMU's programs (a VM, qemu-storage-daemon, qemu-nbd, qemu-img), by name or by the lock it took. */
export function isQemu(name: string): boolean {
	return /^(qemu|kvm)/.test(name);
}

/**
 * The VM a QEMU command line runs, as the admin names it: Proxmox's "-id 100", else libvirt's
 * "-name guest=web1,debug-threads=on" or a plain "-name web1" (QEMU doubles a comma inside a value).
 */
export function guessVmId(argv: readonly string[]): string | undefined {
	const value = (option: string): string | undefined => {
		for (let i = 0; i < argv.length; i++) {
			const arg = argv[i]!;
			if ((arg === `-${option}` || arg === `--${option}`) && i + 1 < argv.length) {
				return argv[i + 1];
			}
			for (const prefix of [`-${option}=`, `--${option}=`]) {
				if (arg.startsWith(prefix)) {
					return arg.slice(prefix.length);
				}
			}
		}
		return undefined;
	};
	const id = value('id');
	if (id) {
		return id;
	}
	const name = value('name');
	if (!name) {
		return undefined;
	}
	const parts = name.replace(/,,/g, '\0').split(',').map(part => part.replace(/\0/g, ','));
	const guest = parts.find(part => part.startsWith('guest='));
	if (guest) {
		return guest.slice('guest='.length) || undefined;
	}
	return parts[0] && !parts[0].includes('=') ? parts[0] : undefined;
}

/** Another process that has an image open (or holds QEMU's lock on it). */
export type Holder = {
	readonly pid: number;
	readonly name: string;
	/** Opened for writing (O_WRONLY or O_RDWR). */
	readonly writable: boolean;
	/** Holds QEMU's image lock on it (`writing`: the lock that says it writes). */
	readonly qemuLock: {locked: boolean; writing: boolean};
	readonly vm: string | undefined;
};

/** "qemu-system-x86_64 (pid 4242, VM 100?)": the question mark because the VM id is read off a command line. */
export function describeHolder(holder: Holder): string {
	return `${holder.name} (pid ${holder.pid}${holder.vm === undefined ? '' : `, VM ${holder.vm}?`})`;
}

/** A QEMU process, or one that holds QEMU's lock: a VM (or QEMU's tools) using the image. */
function isVm(holder: Holder): boolean {
	return holder.qemuLock.locked || isQemu(holder.name);
}

/**
 * The holder that makes writing DST unsafe, the one to name: a QEMU (by its lock, else by its name),
 * else any process with DST open for writing. A process that only reads DST is no reason to refuse.
 */
export function blockingHolder(holders: readonly Holder[]): Holder | undefined {
	return holders.find(holder => holder.qemuLock.locked) ?? holders.find(holder => isQemu(holder.name) && holder.writable) ?? holders.find(holder => holder.writable);
}

/** The holder writing SRC during the copy: a QEMU holding the write lock, else any writer. */
export function writingHolder(holders: readonly Holder[]): Holder | undefined {
	return holders.find(holder => holder.qemuLock.writing) ?? holders.find(holder => holder.writable);
}

/**
 * The refusal for a DST another process uses; `holder` undefined: QEMU's lock is held (F_OFD_GETLK or
 * /proc/locks says so) by a process this host does not show (another user's, another PID namespace).
 */
export function destinationInUseMessage(path: string, holder: Holder | undefined): string {
	if (holder === undefined) {
		return `DST ${path} is in use by a QEMU process (it holds QEMU's lock on the image; no process here shows it open): stop the VM or sync to another volume`;
	}
	if (isVm(holder)) {
		return `DST ${path} is in use by ${describeHolder(holder)}: stop the VM or sync to another volume`;
	}
	return `DST ${path} is open for writing by ${describeHolder(holder)}: stop it or sync to another volume`;
}

/**
 * The warning for a SRC written while it is copied (`holder` undefined: QEMU's write lock, its process not
 * shown). A VM's points to the passes of RUNNING VMS in the man page (the last with the VM stopped, or
 * paused with --qmp).
 */
export function sourceInUseMessage(path: string, holder: Holder | undefined): string {
	const head = `SRC ${path} is open for writing by ${holder === undefined ? 'a QEMU process (it holds QEMU\'s write lock on the image)' : describeHolder(holder)}: the copy is crash-consistent at best; `;
	if (holder !== undefined && !isVm(holder)) {
		return `${head}for a consistent one, sync again once it has stopped (the second pass sends only what changed)`;
	}
	return `${head}for a consistent one, make the last pass with the VM stopped, or paused with --qmp (each pass sends only what changed): see RUNNING VMS in rblocksync(1)`;
}
