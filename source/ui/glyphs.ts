// The characters the TUI draws with: Unicode where the terminal has it, ASCII on the Linux console.

export type Glyphs = {
	readonly done: string;
	readonly failed: string;
	readonly arrow: string;
	/** Bar cells from empty to full; intermediate entries are eighths (Unicode) or none (ASCII). */
	readonly bar: readonly string[];
};

export const unicodeGlyphs: Glyphs = {
	done: '✓',
	failed: '✗',
	arrow: '→',
	bar: ['░', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'],
};

export const asciiGlyphs: Glyphs = {
	done: '+',
	failed: 'x',
	arrow: '->',
	bar: ['-', '#'],
};

/** ASCII on the Linux virtual console (TERM=linux, a Proxmox host's screen), Unicode elsewhere. */
export function glyphsFor(env: NodeJS.ProcessEnv = process.env): Glyphs {
	return env['TERM'] === 'linux' ? asciiGlyphs : unicodeGlyphs;
}
