// The QEMU Machine Protocol (qemu/qemu docs/interop/qmp-spec.rst) as a pure codec: the server sends one JSON
// object per line (the greeting, then a return or an error for each command, and events at any time); the
// client sends commands, each with an id its answer echoes. No sockets here: the client is client.ts.

/** What one line from the server is. */
export type QmpMessage =
	| {readonly kind: 'greeting'; readonly version: string}
	| {readonly kind: 'return'; readonly id: unknown; readonly value: unknown}
	| {readonly kind: 'error'; readonly id: unknown; readonly errorClass: string; readonly desc: string}
	| {readonly kind: 'event'; readonly event: string};

/** A command for execute: its name and arguments (absent: none). */
export type QmpCommand = {readonly execute: string; readonly arguments?: Record<string, unknown>};

/** A command's answer: its return value, or QEMU's error class and description. */
export type QmpResult = {readonly ok: true; readonly value: unknown} | {readonly ok: false; readonly errorClass: string; readonly desc: string};

/** A line that is no QMP message (not JSON, or an object of no known shape): the peer is not a QEMU monitor. */
export class QmpProtocolError extends Error {}

/** One command as the bytes to send: JSON on one line, with `id` for matching its answer. */
export function encodeCommand(command: QmpCommand, id: number): string {
	return `${JSON.stringify({execute: command.execute, ...(command.arguments ? {arguments: command.arguments} : {}), id})}\n`;
}

/** The meaning of one parsed line. */
export function classify(value: unknown): QmpMessage {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw new QmpProtocolError(`not a QMP message: ${JSON.stringify(value)}`);
	}
	const object = value as Record<string, unknown>;
	if ('QMP' in object) {
		const version = ((object.QMP as {version?: {qemu?: {major?: number; minor?: number; micro?: number}}} | undefined)?.version?.qemu);
		return {kind: 'greeting', version: version ? `${version.major}.${version.minor}.${version.micro}` : 'unknown'};
	}
	if ('return' in object) {
		return {kind: 'return', id: object.id, value: object.return};
	}
	if ('error' in object) {
		const error = object.error as {class?: unknown; desc?: unknown} | null;
		return {kind: 'error', id: object.id, errorClass: String(error?.class ?? 'GenericError'), desc: String(error?.desc ?? 'no description')};
	}
	if (typeof object.event === 'string') {
		return {kind: 'event', event: object.event};
	}
	throw new QmpProtocolError(`not a QMP message: ${JSON.stringify(value).slice(0, 200)}`);
}

/** Longest line taken from the server: a query of a VM with many disks stays far below it. */
export const MAX_LINE = 16 * 1024 * 1024;

/** Splits the server's stream into messages, whatever the chunking; a partial line waits for the next chunk. */
export class QmpDecoder {
	private pending = '';

	push(chunk: string): QmpMessage[] {
		this.pending += chunk;
		const messages: QmpMessage[] = [];
		for (let end = this.pending.indexOf('\n'); end >= 0; end = this.pending.indexOf('\n')) {
			const line = this.pending.slice(0, end).trim();
			this.pending = this.pending.slice(end + 1);
			if (line === '') {
				continue;
			}
			let value: unknown;
			try {
				value = JSON.parse(line);
			} catch {
				throw new QmpProtocolError(`not a QMP message: ${line.slice(0, 200)}`);
			}
			messages.push(classify(value));
		}
		if (this.pending.length > MAX_LINE) {
			throw new QmpProtocolError(`a line of more than ${MAX_LINE} bytes`);
		}
		return messages;
	}
}

/** The result a return or error message gives its command. */
export function resultOf(message: Extract<QmpMessage, {kind: 'return' | 'error'}>): QmpResult {
	return message.kind === 'return' ? {ok: true, value: message.value} : {ok: false, errorClass: message.errorClass, desc: message.desc};
}
