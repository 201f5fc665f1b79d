// Reads of /proc and /sys that may fail (a process gone, a file this kernel lacks, no permission): each answers
// an empty value instead, for the scans that look at many such files and skip what they cannot see.
import fs from 'node:fs';

/** The text of `path`, or '' when it cannot be read. */
export function readOrEmpty(path: string): string {
	try {
		return fs.readFileSync(path, 'utf8');
	} catch {
		return '';
	}
}

/** The names in directory `path`, or none when it cannot be listed. */
export function listOrEmpty(path: string): string[] {
	try {
		return fs.readdirSync(path);
	} catch {
		return [];
	}
}

/** kill(pid, 0): EPERM still means the process exists. */
export function processExists(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as {code?: string}).code === 'EPERM';
	}
}
