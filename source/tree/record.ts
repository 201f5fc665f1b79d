// The tree's quick check: what the last run over the same SRC and DST left equal, file by file, as both listings'
// stamps (dev:ino:size:mtime:ctime). A file whose SRC and DST stamps are both the recorded ones was not written since
// (any write, truncate, chmod, touch -r or replacement moves ctime, which no one can set): it is skipped, unread.

export type RecordedFile = {readonly src: string; readonly dst: string};
export type TreeRecord = {readonly version: 1; readonly files: Readonly<Record<string, RecordedFile>>};

export const EMPTY_RECORD: TreeRecord = {version: 1, files: {}};

/** A SRC stamp taken within this long of its ctime may miss a write in the same clock tick: not recorded. */
export const RECENT_MS = 2000;

/** The record in a file's text; an unreadable or foreign one is empty (every file is then compared). */
export function parseRecord(text: string): TreeRecord {
	try {
		const value = JSON.parse(text) as unknown;
		if (typeof value !== 'object' || value === null || (value as {version?: unknown}).version !== 1) {
			return EMPTY_RECORD;
		}
		const files = (value as {files?: unknown}).files;
		if (typeof files !== 'object' || files === null) {
			return EMPTY_RECORD;
		}
		const kept: Record<string, RecordedFile> = {};
		for (const [path, file] of Object.entries(files as Record<string, unknown>)) {
			const {src, dst} = (file ?? {}) as {src?: unknown; dst?: unknown};
			if (typeof src === 'string' && typeof dst === 'string' && src !== '' && dst !== '') {
				kept[path] = {src, dst};
			}
		}
		return {version: 1, files: kept};
	} catch {
		return EMPTY_RECORD;
	}
}

/** Whether the file at `path` is as the last run left it on both sides. */
export function unchangedSince(record: TreeRecord, path: string, srcStamp: string | undefined, dstStamp: string | undefined): boolean {
	const file = Object.hasOwn(record.files, path) ? record.files[path] : undefined;
	return file !== undefined && srcStamp !== undefined && dstStamp !== undefined && file.src === srcStamp && file.dst === dstStamp;
}

/** Whether a SRC stamp is old enough to vouch for the file (its ctime well before the listing, on the same clock). */
export function recordable(changedMs: number, listedAtMs: number): boolean {
	return changedMs < listedAtMs - RECENT_MS;
}
