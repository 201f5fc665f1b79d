// A compressible image like text or an OS's files: lines of words drawn from a small vocabulary (zstd -1 ~3-4x).
import {randomBytes} from 'node:crypto';
import {closeSync, openSync, writeSync} from 'node:fs';

export function makeTextImage(path: string, size: number): void {
	const vocabulary = Array.from({length: 2000}, () => randomBytes(2 + (randomBytes(1)[0]! % 10)).toString('base64url'));
	const fd = openSync(path, 'w');
	try {
		const piece = 1024 * 1024;
		const picks = randomBytes(piece);
		for (let at = 0; at < size; at += piece) {
			let text = '';
			for (let i = 0; text.length < piece; i += 2) {
				text += vocabulary[((picks[i % piece]! << 8) | picks[(i + 1) % piece]!) % vocabulary.length]!;
				text += i % 24 === 0 ? '\n' : ' ';
			}
			picks.reverse();
			writeSync(fd, Buffer.from(text.slice(0, Math.min(piece, size - at))), 0, Math.min(piece, size - at), at);
		}
	} finally {
		closeSync(fd);
	}
}
