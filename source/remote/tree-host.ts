// A directory tree on one host for a run over many files: its listing and the driver's changes around the files'
// syncs (directories, --delete, attributes), here through image/tree-fs.ts, over SSH through an agent's LIST and FSOP.
import {TransferError, UsageError} from '../errors.js';
import {listTree, makeDirectories, removeFile, setAttributes} from '../image/tree-fs.js';
import {Capability, decode, encode, EntryKindCode, FsOp, type Message, PROTOCOL_VERSION} from '../protocol/messages.js';
import {helloMessage, versionMismatch} from '../agent/agent-core.js';
import {badRelativePath, type EntryKind, type FileAttrs, type Listing, type TreeEntry} from '../tree/plan.js';
import type {Link} from './link.js';
import {prefixOf} from './session.js';

export interface TreeHost {
	/** Every entry below root; undefined when root does not exist. Throws UsageError when it is no directory or unreadable. */
	list(root: string): Promise<Listing | undefined>;
	/** Creates root and relative's directories below it (never through a symlink). */
	mkdir(root: string, relative: string): Promise<void>;
	/** Removes the regular file relative below root. */
	remove(root: string, relative: string): Promise<void>;
	/** Gives the file SRC's mode and mtime (and owner, as root); resolves its stamp after. */
	attrs(root: string, relative: string, attrs: FileAttrs): Promise<string>;
	close(): void;
}

/** This host's trees. */
export class LocalTreeHost implements TreeHost {
	async list(root: string): Promise<Listing | undefined> {
		try {
			return listTree(root);
		} catch (error) {
			throw new UsageError(error instanceof Error ? error.message : String(error));
		}
	}
	async mkdir(root: string, relative: string): Promise<void> {
		makeDirectories(root, relative);
	}
	async remove(root: string, relative: string): Promise<void> {
		removeFile(root, relative);
	}
	async attrs(root: string, relative: string, attrs: FileAttrs): Promise<string> {
		return setAttributes(root, relative, attrs);
	}
	close(): void {}
}

const KIND_BY_CODE = new Map<number, EntryKind>(Object.entries(EntryKindCode).map(([kind, code]) => [code, kind as EntryKind]));

/** The refusal of an agent whose HELLO lacks the tree capability (an rblocksync from before runs over many files). */
export function tooOldForTrees(program: string): string {
	return `the rblocksync there (${program}) is too old for runs over many files (no LIST, FSOP or RESET): upgrade it, or sync one file per run`;
}

/** An entry from a remote agent's ENTRY frame, or the reason it cannot be one (the agent is not trusted with paths). */
export function entryFromMessage(message: Extract<Message, {type: 'entry'}>): TreeEntry | string {
	const kind = KIND_BY_CODE.get(message.kind);
	if (kind === undefined) {
		return `unknown entry kind ${message.kind}`;
	}
	const bad = badRelativePath(message.path);
	if (bad !== undefined) {
		return `entry ${JSON.stringify(message.path)} ${bad}`;
	}
	const {type: _type, kind: _kind, ...rest} = message;
	return {...rest, kind};
}

/** A tree on a remote host, through one agent that answers LIST and FSOP one at a time. */
export class RemoteTreeHost implements TreeHost {
	private queue: Promise<unknown> = Promise.resolve();
	private pending: ((message: Message | Error) => void) | undefined;
	private closed: string | undefined;

	constructor(private readonly link: Link, private readonly warn: (message: string) => void) {
		link.onFrame = frame => {
			let message: Message | Error;
			try {
				message = decode(frame);
			} catch (error) {
				message = new TransferError(`${prefixOf(link)}protocol error: ${error instanceof Error ? error.message : String(error)}`);
			}
			if (!(message instanceof Error) && message.type === 'warn') {
				this.warn(`${link.label}: ${message.message}`);
				return;
			}
			this.pending?.(message);
		};
		link.onClose = reason => {
			this.closed = reason ?? 'the agent ended';
			this.pending?.(new TransferError(`${prefixOf(link)}${this.closed}`));
		};
	}

	/** One request at a time: `exchange` sends, then sees every frame until it returns true (done). */
	private request<T>(send: Message | undefined, receive: (message: Message) => T | undefined): Promise<T> {
		const run = (): Promise<T> => new Promise<T>((resolve, reject) => {
			if (this.closed !== undefined) {
				reject(new TransferError(`${prefixOf(this.link)}${this.closed}`));
				return;
			}
			this.pending = message => {
				if (message instanceof Error) {
					this.pending = undefined;
					reject(message);
					return;
				}
				if (message.type === 'error') {
					this.pending = undefined;
					reject(new UsageError(`${prefixOf(this.link)}${message.message}`));
					return;
				}
				try {
					const result = receive(message);
					if (result !== undefined) {
						this.pending = undefined;
						resolve(result);
					}
				} catch (error) {
					this.pending = undefined;
					this.link.close();
					reject(error);
				}
			};
			if (send) {
				this.link.send(encode(send));
			}
		});
		const next = this.queue.then(run, run);
		this.queue = next.catch(() => {});
		return next;
	}

	/** HELLO once. */
	async greet(): Promise<void> {
		await this.request(helloMessage(), message => {
			if (message.type !== 'hello') {
				throw new TransferError(`${prefixOf(this.link)}protocol error: expected HELLO, got ${message.type}`);
			}
			if (message.protocol !== PROTOCOL_VERSION) {
				throw new UsageError(`${prefixOf(this.link)}${versionMismatch(message)}`);
			}
			if ((message.caps & Capability.tree) === 0) {
				throw new UsageError(`${prefixOf(this.link)}${tooOldForTrees(message.program)}`);
			}
			this.link.greeted = message.caps;
			return true;
		});
	}

	async list(root: string): Promise<Listing | undefined> {
		const entries: TreeEntry[] = [];
		return this.request({type: 'list', path: root}, message => {
			if (message.type === 'entry') {
				const entry = entryFromMessage(message);
				if (typeof entry === 'string') {
					throw new TransferError(`${prefixOf(this.link)}protocol error: ${entry}`);
				}
				entries.push(entry);
				return undefined;
			}
			if (message.type === 'listed') {
				if (message.count !== entries.length) {
					throw new TransferError(`${prefixOf(this.link)}protocol error: LISTED says ${message.count} entries, ${entries.length} came`);
				}
				return {listing: message.missing ? undefined : {entries, nowMs: message.nowMs}};
			}
			throw new TransferError(`${prefixOf(this.link)}protocol error: unexpected ${message.type} in a listing`);
		}).then(result => result.listing);
	}

	private async fsop(op: number, root: string, path: string, attrs: FileAttrs = {mode: 0, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0}): Promise<string> {
		const reply = await this.request({type: 'fsop', op, root, path, ...attrs}, message => {
			if (message.type !== 'ack') {
				throw new TransferError(`${prefixOf(this.link)}protocol error: unexpected ${message.type} after FSOP`);
			}
			return message;
		});
		if (reply.error !== '') {
			throw new TransferError(`${prefixOf(this.link)}${reply.error}`);
		}
		return reply.stamp;
	}

	async mkdir(root: string, relative: string): Promise<void> {
		await this.fsop(FsOp.mkdir, root, relative);
	}
	async remove(root: string, relative: string): Promise<void> {
		await this.fsop(FsOp.remove, root, relative);
	}
	attrs(root: string, relative: string, attrs: FileAttrs): Promise<string> {
		return this.fsop(FsOp.attrs, root, relative, attrs);
	}
	close(): void {
		this.link.close();
	}
}
