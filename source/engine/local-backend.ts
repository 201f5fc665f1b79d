// Both images on this host: compared byte by byte in worker threads (one per range), no hashing.
import fs from 'node:fs';
import {fileURLToPath} from 'node:url';
import {Worker} from 'node:worker_threads';
import type {Range} from '../blocks/blocks.js';
import {batchBytesFor} from '../blocks/blocks.js';
import {describeSystemError, TransferError} from '../errors.js';
import type {Image, WritableImage} from '../image/image.js';
import {LocalImage} from '../image/local-image.js';
import {type DestinationPlan, openDestination, type OpenedSource, openSource, planDestination, refuseFormatHeader, sourceInUseWarning, syncCreatedEntry} from '../image/preflight.js';
import {sourceChange, sourceChangedMessage} from '../image/source-version.js';
import type {Phase, PrepareHooks, Prepared, RangeHooks, SyncBackend} from './backend.js';
import {throwIfStoppedBeforeDst} from './run-sync.js';
import {runRange} from './run-range.js';
import {type ImageHandle, STOP, type WorkerInput, type WorkerMessage} from './worker-protocol.js';

export type LocalOptions = {
	readonly truncate: boolean;
	readonly blockSize: number;
	readonly dryRun: boolean;
	readonly copy: boolean;
	readonly force: boolean;
	/** undefined: not given, so an image holding a format header is refused; else raw (the only format read here). */
	readonly srcFormat?: string | undefined;
	readonly dstFormat?: string | undefined;
};

/** The compiled worker entry beside this module (dist/engine/worker.js, or the bundle's worker file). */
function workerUrl(): URL | undefined {
	for (const name of ['./worker.js', './rblocksync-worker.mjs']) {
		const url = new URL(name, import.meta.url);
		if (url.protocol === 'file:' && fs.existsSync(fileURLToPath(url))) {
			return url;
		}
	}
	return undefined;
}

/** Local SRC onto local DST. */
export class LocalBackend implements SyncBackend {
	readonly setupBytesSent = 0;
	private source: OpenedSource | undefined;
	private plan: DestinationPlan | undefined;
	private dst: Image | undefined;
	private writable: WritableImage | undefined;
	private knownEnd = 0;
	private size = 0;
	/** Per phase: [0] stop flag, [1] write lock, shared by every thread of the phase. */
	private shared: {phase: Phase; buffer: SharedArrayBuffer} | undefined;
	private readonly url = workerUrl();

	constructor(private readonly srcPath: string, private readonly dstPath: string, private readonly options: LocalOptions) {}

	async prepare(hooks: PrepareHooks): Promise<Prepared> {
		if (this.options.srcFormat === undefined) {
			refuseFormatHeader('SRC', this.srcPath);
		}
		if (this.options.dstFormat === undefined) {
			refuseFormatHeader('DST', this.dstPath);
		}
		this.source = openSource(this.srcPath, hooks.warn);
		if (this.source.warning) {
			hooks.warn(this.source.warning);
		}
		const writer = sourceInUseWarning(this.srcPath);
		if (writer) {
			hooks.warn(writer);
		}
		this.size = this.source.image.size;
		this.plan = planDestination(this.dstPath, this.size, this.source.identity, this.options);
		throwIfStoppedBeforeDst(hooks.signal);
		const opened = openDestination(this.plan, this.options, true, hooks.warn);
		this.dst = opened.image;
		this.writable = opened.writable;
		this.knownEnd = opened.knownData.end;
		return {src: this.srcPath, dst: this.dstPath, direction: 'local', size: this.size, dstExtraBytes: this.plan.extraBytes};
	}

	async runRange(range: Range, index: number, phase: Phase, hooks: RangeHooks): Promise<{completed: boolean}> {
		if (this.shared?.phase !== phase) {
			this.shared = {phase, buffer: new SharedArrayBuffer(8)};
		}
		const shared = this.shared.buffer;
		const flags = new Int32Array(shared);
		const stop = (): void => {
			Atomics.store(flags, STOP, 1);
			Atomics.notify(flags, STOP);
		};
		hooks.signal.addEventListener('abort', stop);
		if (hooks.signal.aborted) {
			stop();
		}
		const sync = phase === 'sync';
		const input: WorkerInput = {
			src: handle(this.source!.image),
			dst: handle(this.dst!),
			write: sync && this.writable !== undefined,
			job: {
				...range, blockSize: this.options.blockSize, batchBytes: batchBytesFor(this.options.blockSize),
				copy: sync && this.options.copy, dstKnownData: {start: 0, end: sync ? this.knownEnd : this.size},
			},
			shared,
		};
		try {
			const ended = await (this.url ? runInThread(this.url, input, index, hooks) : runHere(input, hooks));
			if (ended.type === 'error') {
				const partial = input.write ? '; DST may be partially updated' : '';
				throw new TransferError(`worker ${index + 1}: ${ended.message}${partial}`);
			}
			return {completed: ended.completed};
		} finally {
			hooks.signal.removeEventListener('abort', stop);
		}
	}

	async endPhase(phase: Phase, ok: boolean): Promise<void> {
		if (phase !== 'sync' || !this.writable) {
			return;
		}
		try {
			this.writable.sync();
		} catch (error) {
			throw new TransferError(`DST ${this.dstPath}: flushing to disk failed: ${describeSystemError(error)}; DST may be partially updated`, {cause: error});
		}
		if (ok) {
			try {
				syncCreatedEntry(this.plan!);
			} catch (error) {
				throw new TransferError(`DST ${this.dstPath}: flushing its directory entry failed: ${describeSystemError(error)}; DST may be lost on a crash`, {cause: error});
			}
		}
	}

	async checkSource(failed: boolean): Promise<void> {
		let change: string | undefined;
		try {
			change = sourceChange(this.srcPath, this.source!.image.fd, this.source!.version);
		} catch (error) {
			if (failed) {
				return;
			}
			throw new TransferError(`SRC ${this.srcPath}: checking it after the sync failed: ${describeSystemError(error)}`, {cause: error});
		}
		if (change !== undefined) {
			throw new TransferError(sourceChangedMessage(this.srcPath), {cause: new Error(change)});
		}
	}

	async beforeVerify(): Promise<void> {
		for (const image of [this.source?.image, this.dst]) {
			if (image instanceof LocalImage) {
				image.dropCache();
			}
		}
	}

	sample(): void {}

	async close(): Promise<void> {
		this.dst?.close();
		this.source?.image.close();
	}
}

type Ended = Extract<WorkerMessage, {type: 'done' | 'error'}>;

/** Applies a worker's message to its state; returns it when it ends the job. */
function apply(message: WorkerMessage, hooks: RangeHooks): Ended | undefined {
	switch (message.type) {
		case 'warn':
			hooks.warn(message.message);
			return undefined;
		case 'progress':
			Object.assign(hooks.state, message.counters);
			return undefined;
		default:
			Object.assign(hooks.state, message.counters);
			return message;
	}
}

function runInThread(url: URL, input: WorkerInput, index: number, hooks: RangeHooks): Promise<Ended> {
	return new Promise(resolve => {
		let ended: Ended | undefined;
		const worker = new Worker(url, {workerData: input});
		worker.on('message', (message: WorkerMessage) => {
			ended ??= apply(message, hooks);
		});
		worker.on('error', failure => {
			ended ??= {type: 'error', message: failure.message, code: undefined, counters: hooks.state};
		});
		worker.on('exit', code => {
			resolve(ended ?? {type: 'error', message: `worker ${index + 1} exited unexpectedly (code ${code})`, code: undefined, counters: hooks.state});
		});
	});
}

/** Without a compiled worker (running from source): the same job on this thread. */
async function runHere(input: WorkerInput, hooks: RangeHooks): Promise<Ended> {
	let ended: Ended | undefined;
	runRange(input, message => {
		ended ??= apply(message, hooks);
	});
	await new Promise(resolve => setImmediate(resolve));
	return ended!;
}

function handle(image: Image): ImageHandle {
	if (!(image instanceof LocalImage)) {
		// A dry run against a missing DST: a closed fd is never read because knownData is empty.
		return {fd: -1, name: image.name, kind: 'file', size: 0};
	}
	return {fd: image.fd, name: image.name, kind: image.kind === 'block' ? 'block' : 'file', size: image.size};
}
