// The agent's state machine, apart from its streams: HELLO, OPEN, then one role. Also runs in-process for local endpoints.
import {createHasher} from '../delta/hash.js';
import {nativeOps} from '../native/native.js';
import type {Frame} from '../protocol/frame.js';
import {baseCounters, Capability, decode, encode, EntryKindCode, ErrorKind, FsOp, type Message, openFlags, PROTOCOL_VERSION, Role, WIDE_SESSION} from '../protocol/messages.js';
import {listTree, makeDirectories, removeFile, setAttributes} from '../image/tree-fs.js';
import {describeSystemError, TransferError} from '../errors.js';
import {ProtocolError} from '../protocol/frame.js';
import {VERSION} from '../version.js';
import {geometryFor} from '../delta/chunks.js';
import {SourceRole} from '../delta/source-role.js';
import {DestRole} from '../delta/dest-role.js';
import {checkSource, dropCacheFor, errorMessage, type OpenedRole, openRole, readBootId, type RoleHost, type RoleOpener, stampOf} from '../delta/open-role.js';
import {commitSourceBitmap} from '../image/formatted-image.js';
import type {Image} from '../image/image.js';
import {LocalImage} from '../image/local-image.js';
import {cacheDir, commitCache, dropCache, type HeldCache, prepareCache, workerCache} from '../delta/dest-cache.js';
import type {FileRangeCache} from '../delta/digest-cache-file.js';
import {quickStamp, sourceChangedMessage, versionString} from '../image/source-version.js';

/** Hash names this build can use, for HELLO. */
export const HASHES = 'blake3,sha256';

/** What this program says in HELLO; `checkpoints`: a driver that reads CHECKPOINT (--retries above 0). */
export function helloMessage(checkpoints = true): Message {
	return {type: 'hello', protocol: PROTOCOL_VERSION, caps: (nativeOps() ? Capability.holes : 0) | Capability.keyed | Capability.readCounters | Capability.quickCheck | Capability.compressAuto | (checkpoints ? Capability.checkpoints : 0) | Capability.tree | (nativeOps()?.zstd ? Capability.zstd : 0) | Capability.wideSession, program: VERSION, hashes: HASHES};
}

/** The one-line refusal when two protocol versions differ (both sides use the same words). */
export function versionMismatch(theirs: {protocol: number; program: string}): string {
	return `the other side speaks protocol ${theirs.protocol} (rblocksync ${theirs.program}); this rblocksync ${VERSION} speaks protocol ${PROTOCOL_VERSION}`;
}

/** One agent's life: HELLO, OPEN (prepare, then optionally one session), the role, then finish(ok). */
export class AgentCore {
	/** ended: a worker's session is over (its image closed); the driver ends the agent, or RESETs it for another session. */
	private state: 'hello' | 'open' | 'opening' | 'session' | 'ended' | 'finished' = 'hello';
	private queue: Frame[] = [];
	private role: SourceRole | DestRole | undefined;
	private image: Image | undefined;
	/** What a prepare OPEN opened, kept open for its lock until the agent ends (and, for SRC, to check it at the end). */
	private held: {role: Role; opened: OpenedRole} | undefined;
	/** DST's preparing agent: the digest cache it took over, committed at the driver's second prepare OPEN. */
	private heldCache: HeldCache | undefined;
	/** SRC's quick-check stamp in this run, as the driver sent it before DST's prepare OPEN ('' when none). */
	private srcStamp = '';
	/** A DEST worker's range of the digest cache. */
	private rangeCache: FileRangeCache | undefined;
	/** The driver's HELLO said it reads STATS and DONE with the read counters, and SOURCE's STATS. */
	private driverCountsReads = false;
	/** The driver takes CHECKPOINT (its HELLO had Capability.checkpoints): a DEST worker sends them. */
	private driverCheckpoints = false;

	private readonly host: RoleHost;
	/** Set by RESET: the driver reuses this agent, which then outlives its sessions. */
	private reusable = false;

	/** out: frames to the driver; finish: the agent's work is over (exit status 0 on success). */
	constructor(private readonly out: (bytes: Buffer) => void, private readonly finish: (ok: boolean) => void, bootId = readBootId(), private readonly opener: RoleOpener = openRole) {
		this.host = {
			bootId,
			warn: message => {
				// The missing native helper is announced once by the driver from HELLO's capabilities.
				if (!message.startsWith('native helper unavailable')) {
					this.send({type: 'warn', message});
				}
			},
		};
	}

	/** Handles one frame from the driver. Never throws: failures become an ERROR frame and finish(false). */
	push(frame: Frame): void {
		if (this.state === 'opening') {
			this.queue.push(frame);
			return;
		}
		try {
			this.handle(decode(frame));
		} catch (error) {
			this.fail(error);
		}
	}

	/** The driver went away (end of stdin): close the image. */
	end(): void {
		if (this.state === 'ended' || (this.reusable && this.state === 'open' && !this.held)) {
			this.close(true);
		} else if (this.state !== 'finished') {
			this.role instanceof SourceRole && this.role.stop();
			this.close(false);
		}
	}

	private handle(message: Message): void {
		switch (this.state) {
			case 'hello':
				if (message.type !== 'hello') {
					throw new Error(`expected HELLO, got ${message.type}`);
				}
				if (message.protocol !== PROTOCOL_VERSION) {
					this.send({type: 'error', kind: ErrorKind.precondition, message: versionMismatch(message)});
					this.close(false);
					return;
				}
				this.driverCountsReads = (message.caps & Capability.readCounters) !== 0;
				this.driverCheckpoints = (message.caps & Capability.checkpoints) !== 0;
				this.send(helloMessage());
				this.state = 'open';
				return;
			case 'ended':
				if (message.type !== 'reset') {
					throw new Error(`unexpected ${message.type} message after the session's end`);
				}
				this.reset();
				return;
			case 'open':
				if (message.type === 'cache') {
					// The driver, before DST's prepare OPEN: SRC's quick-check stamp in this run.
					this.srcStamp = message.status;
					return;
				}
				if (message.type === 'reset') {
					this.reset();
					return;
				}
				if (message.type === 'list' || message.type === 'fsop') {
					// A tree run's requests: answered at once, the agent then waits for the next one (or an OPEN).
					this.tree(message);
					return;
				}
				if (message.type !== 'open') {
					throw new Error(`expected OPEN, got ${message.type}`);
				}
				this.state = 'opening';
				void this.open(message);
				return;
			case 'session':
				if (message.type === 'done' && this.role instanceof SourceRole) {
					this.sessionOver();
					return;
				}
				this.role!.handle(message);
				return;
			default:
				throw new Error(`unexpected ${message.type} message`);
		}
	}

	private tree(message: Extract<Message, {type: 'list' | 'fsop'}>): void {
		if (message.type === 'list') {
			const listing = listTree(message.path);
			for (const entry of listing?.entries ?? []) {
				this.send({type: 'entry', ...entry, kind: EntryKindCode[entry.kind]});
			}
			this.send({type: 'listed', count: listing?.entries.length ?? 0, missing: listing === undefined, nowMs: listing?.nowMs ?? Date.now()});
			return;
		}
		try {
			let stamp = '';
			if (message.op === FsOp.mkdir) {
				makeDirectories(message.root, message.path);
			} else if (message.op === FsOp.remove) {
				removeFile(message.root, message.path);
			} else if (message.op === FsOp.attrs) {
				stamp = setAttributes(message.root, message.path, message);
			} else {
				throw new Error(`unknown FSOP ${message.op}`);
			}
			this.send({type: 'ack', error: '', stamp});
		} catch (error) {
			this.send({type: 'ack', error: error instanceof Error && !('code' in error) ? error.message : `${message.path}: ${describeSystemError(error)}`, stamp: ''});
		}
	}

	private async open(open: Extract<Message, {type: 'open'}>): Promise<void> {
		try {
			const flags = openFlags(open.flags);
			if (flags.prepare && this.held) {
				// A second prepare OPEN: the driver's check, after every worker's range, that SRC did not change.
				if (this.held.role === Role.dest && open.role === Role.dest && ((flags.cache && this.heldCache) || open.bitmap !== undefined)) {
					// After a successful run: DST's digest cache is put in place, bound to DST as it is now; with
					// --bitmap OPENED carries DST's stamp now, for the record of this pass.
					if (flags.cache && this.heldCache) {
						this.send({type: 'cache', status: commitCache(this.heldCache, this.held.opened.image)});
					}
					const {pass: _before, ...reply} = this.held.opened.reply;
					const stamp = open.bitmap === undefined ? '' : stampOf(open.path);
					this.send(stamp ? {...reply, pass: stamp} : reply);
					this.state = 'open';
					this.flushQueue();
					return;
				}
				if (this.held.role !== Role.source || open.role !== Role.source) {
					throw new Error('a second prepare OPEN only checks the SRC this agent holds');
				}
				if (open.pass !== undefined) {
					// The commit (a prepare OPEN carrying the record of this pass):
					// after a successful run (and --verify), SRC's bitmap rotated and the record kept beside it.
					const {bitmap, served} = this.held.opened;
					if (!bitmap || !served) {
						throw new Error('a commit OPEN for a SRC this agent holds no bitmap of');
					}
					commitSourceBitmap(served, bitmap, open.pass);
					this.send(this.held.opened.reply);
					this.state = 'open';
					this.flushQueue();
					return;
				}
				this.send(checkSource(this.held.opened));
				this.state = 'open';
				this.flushQueue();
				return;
			}
			const hasher = await createHasher(open.hash === 'sha256' ? 'sha256' : 'blake3');
			const opened = this.opener(open, this.host);
			if (!opened) {
				throw new Error('nothing to open');
			}
			if (opened.warning) {
				this.send({type: 'warn', message: opened.warning});
			}
			if (flags.prepare && open.role === Role.dest && flags.cache && !flags.dryRun) {
				// Before any worker writes: the old cache is taken out of use; CACHE says whether it stands for DST.
				const cache = prepareCache(open, opened.image, open.cacheDir ?? cacheDir(), opened.created === true, this.srcStamp, hasher);
				if (cache.warning) {
					this.send({type: 'warn', message: cache.warning});
				}
				this.heldCache = cache.held;
				this.send({type: 'cache', status: cache.status, ...(cache.bytesRead ? {bytesRead: cache.bytesRead} : {})});
			}
			if (flags.prepare && open.role === Role.source && flags.cache && opened.source && (open.format === undefined || open.format === 'raw')) {
				// SRC's quick-check stamp, for DEST's cache (empty for a device, or when SRC was written too recently).
				this.send({type: 'cache', status: quickStamp(opened.source.version, this.host.bootId, BigInt(Date.now()) * 1_000_000n)});
			}
			const version = flags.prepare && open.role === Role.source && opened.source ? versionString(opened.source.version) : undefined;
			if (open.version !== undefined && version !== undefined && version !== open.version) {
				// SRC's preparing agent after a reconnect: SRC must be what the run's first one saw.
				throw new TransferError(sourceChangedMessage(opened.source!.image.name));
			}
			// SRC's version goes to a driver that may reconnect (it reads the trailing string).
			this.send(version !== undefined && this.driverCheckpoints ? {...opened.reply, version} : opened.reply);
			if (flags.prepare) {
				// Holds the image's lock (DST's, and a device's O_EXCL; SRC's shared one) until this agent
				// ends, after the last worker; SRC's also answers the driver's check (a second prepare OPEN).
				this.held = {role: open.role, opened};
				// The same agent may then serve a worker's session (older drivers did so): wait for the next OPEN.
				this.state = 'open';
				this.flushQueue();
				return;
			}
			this.image = opened.image;
			dropCacheFor(open, opened);
			const geometry = geometryFor(open.blockSize);
			const job = {start: open.start, end: open.end, srcSize: open.srcSize, dryRun: flags.dryRun, copy: flags.copy, wide: open.session === WIDE_SESSION};
			if (open.role === Role.source) {
				const role = new SourceRole(opened.image, geometry, hasher, {...job, compress: open.compress, bitmap: open.bitmap !== undefined, reportReads: this.driverCountsReads}, m => this.send(m));
				role.onError = error => this.fail(error);
				this.role = role;
			} else {
				this.rangeCache = flags.cache && !flags.dryRun ? workerCache(open, opened.image, open.cacheDir ?? cacheDir()) : undefined;
				const role = new DestRole(opened.image, opened.writable, geometry, hasher, {...job, keyed: flags.keyed, checkpoints: this.driverCheckpoints}, m => {
					this.send(m);
					if (m.type === 'done') {
						this.sessionOver();
					}
				}, this.rangeCache);
				this.role = role;
				this.state = 'session';
				role.begin();
			}
			this.state = this.state === 'finished' || this.state === 'ended' ? this.state : 'session';
		} catch (error) {
			this.fail(error);
			return;
		}
		this.flushQueue();
	}

	private flushQueue(): void {
		const queued = this.queue;
		this.queue = [];
		for (const frame of queued) {
			this.push(frame);
		}
	}

	private send(message: Message): void {
		if (this.state === 'finished') {
			return;
		}
		if ((message.type === 'stats' || message.type === 'done') && !this.driverCountsReads) {
			// An older driver decodes the eight counters of protocol 1 only (and SOURCE sends it no STATS).
			this.out(encode({type: message.type, counters: baseCounters(message.counters)}));
			return;
		}
		this.out(encode(message));
	}

	private fail(error: unknown): void {
		if (this.state === 'finished') {
			return;
		}
		this.role instanceof SourceRole && this.role.stop();
		// In a session every frame comes from the peer (relayed): a malformed or forbidden one is the peer's fault.
		this.send(error instanceof ProtocolError && this.state === 'session'
			? {type: 'error', kind: ErrorKind.protocol, message: error.message}
			: errorMessage(error, this.image?.name));
		this.close(false);
	}

	/** A worker's session ended well: the agent ends, or (after a RESET) waits for the next session. */
	private sessionOver(): void {
		if (this.reusable) {
			this.endSession();
		} else {
			this.close(true);
		}
	}

	/** A worker's session ended well: its image closed (a DEST's lock with it), the agent kept for a RESET or its end. */
	private endSession(): void {
		try {
			this.rangeCache?.close();
		} finally {
			this.rangeCache = undefined;
			const image = this.image;
			this.image = undefined;
			this.role = undefined;
			this.state = 'ended';
			try {
				image?.close();
			} catch {
				// The session's DONE went out after DST's fdatasync: nothing of it is lost.
			}
		}
	}

	/** RESET: from then on a session's end leaves the agent waiting for the next one (a run over many files reuses it); and
	 * whatever this agent holds (a prepare OPEN's image and lock, an uncommitted digest cache) is let go; it waits for the next OPEN. */
	private reset(): void {
		this.reusable = true;
		this.srcStamp = '';
		dropCache(this.heldCache);
		this.heldCache = undefined;
		const held = this.held?.opened.image;
		this.held = undefined;
		try {
			held?.close();
		} catch {
			// Its run is over and reported.
		}
		this.state = 'open';
		this.send({type: 'ack', error: '', stamp: ''});
	}

	private close(ok: boolean): void {
		if (this.state === 'finished') {
			return;
		}
		this.state = 'finished';
		try {
			this.rangeCache?.close();
		} catch {
			// A worker's records that did not reach the file: the run fails or its records are incomplete either way.
		}
		dropCache(this.heldCache);
		const dest = (this.role instanceof DestRole ? this.image : undefined) ?? (this.held?.role === Role.dest ? this.held.opened.image : undefined);
		if (!ok && dest instanceof LocalImage) {
			// A DEST ended before its run did (interrupted, a failure elsewhere): what it wrote reaches the disk before its
			// image closes, as the local engine flushes DST before it exits 130.
			try {
				dest.sync();
			} catch {
				// The run fails anyway; its first error is the one reported.
			}
		}
		for (const image of [this.image, this.held?.opened.image]) {
			try {
				image?.close();
			} catch {
				// Closing after a failure: the first error is the one reported.
			}
		}
		this.finish(ok);
	}
}
