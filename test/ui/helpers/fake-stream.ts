// A recording stream that can pretend to be a terminal of a given size.
import {Writable} from 'node:stream';

export class FakeStream extends Writable {
	chunks: string[] = [];
	isTTY: boolean;
	columns: number;
	rows: number;

	constructor({isTTY = false, columns = 100, rows = 40}: {isTTY?: boolean; columns?: number; rows?: number} = {}) {
		super();
		this.isTTY = isTTY;
		this.columns = columns;
		this.rows = rows;
	}

	override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
		this.chunks.push(String(chunk));
		callback();
	}

	get text(): string {
		return this.chunks.join('');
	}

	resize(columns: number, rows = this.rows): void {
		this.columns = columns;
		this.rows = rows;
		this.emit('resize');
	}
}

/** Any ANSI/VT escape or other C0 control except newline. */
// eslint-disable-next-line no-control-regex
export const CONTROL = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/;
