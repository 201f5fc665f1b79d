// What NbdImage (the caller's thread) and its NBD worker thread say to each other: one operation at a
// time, the answer on a MessagePort read with receiveMessageOnPort, a wake-up through a SharedArrayBuffer.
import type {NbdExport} from '../nbd/client.js';
import type {QmpCommand, QmpResult} from '../qmp/client.js';

/** One extent of a metadata context, in absolute offsets. */
export type Span = {start: number; end: number; flags: number};

export type Operation =
	| {op: 'open'; socket: string; exportName: string; metaContexts: readonly string[]; timeoutMs: number; readRequestBytes?: number}
	/**
	 * `data`: a new, larger shared data area, kept by the thread from now on. `pieces`: [position, length, ...] read
	 * one after another (`length` their sum), all in flight together, into `into` (a buffer of the image's read-ahead).
	 */
	| {op: 'read'; position: number; length: number; data?: SharedArrayBuffer}
	| {op: 'read'; position: number; length: number; pieces: number[]; into: SharedArrayBuffer}
	| {op: 'write'; position: number; length: number; data?: SharedArrayBuffer}
	| {op: 'zero'; position: number; length: number; noHole: boolean}
	| {op: 'trim'; position: number; length: number}
	| {op: 'flush'}
	| {op: 'extents'; start: number; end: number; context: string}
	| {op: 'close'}
	/** One QMP session (qmp-session.ts), on a thread of its own that ends after it. */
	| {op: 'qmp'; socket: string; commands: readonly QmpCommand[]; timeoutMs: number; keepGoing: boolean};

export type Answer =
	| {ok: true; info?: NbdExport; spans?: Span[]; results?: QmpResult[]}
	| {ok: false; message: string; code: string | undefined};

/** Index in the Int32Array over the signal buffer: 0 while an operation runs, 1 once its answer is posted. */
export const SIGNAL = 0;
