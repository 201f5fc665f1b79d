// Reads the option list and exit statuses out of the --help text and out of the man page source,
// so tests can hold the two (and the bash completion) to the same story.
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';

/** An option as documented: its long name ("--block-size") and its short one ("-b") if any. */
export type DocumentedOption = {long: string; short?: string};

export const manPagePath = fileURLToPath(new URL('../../man/rblocksync.1', import.meta.url));
export const completionPath = fileURLToPath(new URL('../../completions/rblocksync.bash', import.meta.url));

/** The lines of one section of the help text: after `heading`, up to the next blank line. */
function helpSection(help: string, heading: string): string[] {
	const lines = help.split('\n');
	const start = lines.findIndex(line => line.trim() === heading);
	if (start < 0) {
		throw new Error(`the help text has no "${heading}" section`);
	}
	const end = lines.findIndex((line, index) => index > start && line.trim() === '');
	return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Options listed under "Options" in the help text, in order. */
export function helpOptions(help: string): DocumentedOption[] {
	return helpSection(help, 'Options').map(line => {
		const match = /^\s+(?:(-[a-zA-Z]), )?(--[a-z][a-z-]*)/.exec(line);
		if (!match) {
			throw new Error(`cannot read an option from the help line "${line.trim()}"`);
		}
		return match[1] ? {long: match[2]!, short: match[1]} : {long: match[2]!};
	});
}

/** Exit statuses listed under "Exit status" in the help text. */
export function helpExitCodes(help: string): number[] {
	return helpSection(help, 'Exit status').map(line => Number(/^\s+(\d+)\s/.exec(line)?.[1] ?? Number.NaN));
}

/** Roff source without font changes and escapes that hide option names ("\-\-hash" -> "--hash"). */
function plainRoff(line: string): string {
	return line.replace(/\\-/g, '-').replace(/\\f(?:\[[^\]]*\]|[A-Z])/g, '').replace(/\\c/g, '').replace(/"/g, ' ');
}

/** The source lines of a man page section, from `.SH NAME` up to the next `.SH`. */
function manSection(roff: string, name: string): string[] {
	const lines = roff.split('\n');
	const start = lines.findIndex(line => /^\.SH\s/.test(line) && line.slice(3).trim().replace(/"/g, '') === name);
	if (start < 0) {
		throw new Error(`the man page has no ${name} section`);
	}
	const end = lines.findIndex((line, index) => index > start && /^\.SH\s/.test(line));
	return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The tag lines of a section: the line after each `.TP`. */
function manTags(roff: string, section: string): string[] {
	const lines = manSection(roff, section);
	return lines.flatMap((line, index) => (line === '.TP' && lines[index + 1] !== undefined ? [plainRoff(lines[index + 1]!)] : []));
}

/** Options tagged in the OPTIONS section of the man page, in order. */
export function manOptions(roff: string): DocumentedOption[] {
	return manTags(roff, 'OPTIONS').map(tag => {
		const long = /(--[a-z][a-z-]*)/.exec(tag)?.[1];
		if (!long) {
			throw new Error(`cannot read an option from the man page tag "${tag}"`);
		}
		const short = /(?:^|\s)(-[a-zA-Z])(?=[\s,]|$)/.exec(tag.replace(/^\.\w+/, ''))?.[1];
		return short ? {long, short} : {long};
	});
}

/** Exit statuses tagged in the EXIT STATUS section of the man page. */
export function manExitCodes(roff: string): number[] {
	return manTags(roff, 'EXIT STATUS').map(tag => Number(/(\d+)/.exec(tag)?.[1] ?? Number.NaN));
}

/** "-b, --block-size" or "--truncate": how a difference is named in a failure. */
export function describeOption(option: DocumentedOption): string {
	return option.short ? `${option.short}, ${option.long}` : option.long;
}

export function readManPage(): string {
	return readFileSync(manPagePath, 'utf8');
}
