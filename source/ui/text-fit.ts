// Pure helpers that make text fit a terminal width: truncation and word-flow of tokens.

/** Shortens text to at most `width` characters, replacing its middle with "…" (paths keep both ends). */
export function truncateMiddle(text: string, width: number): string {
	if (text.length <= width) {
		return text;
	}
	if (width <= 1) {
		return width === 1 ? '…' : '';
	}
	const keep = width - 1;
	const head = Math.ceil(keep / 2);
	return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

/** Shortens text to at most `width` characters, ending in "…" when cut. */
export function truncateEnd(text: string, width: number): string {
	if (text.length <= width) {
		return text;
	}
	return width <= 0 ? '' : `${text.slice(0, width - 1)}…`;
}

/** Lays tokens out on as few lines as fit `width`, `gap` spaces apart; a token wider than a line is cut. */
export function flowTokens(tokens: readonly string[], width: number, gap = 2): string[] {
	const lines: string[] = [];
	let line = '';
	for (const raw of tokens) {
		const token = truncateEnd(raw, width);
		if (line === '') {
			line = token;
		} else if (line.length + gap + token.length <= width) {
			line += ' '.repeat(gap) + token;
		} else {
			lines.push(line);
			line = token;
		}
	}
	if (line !== '') {
		lines.push(line);
	}
	return lines;
}
