// Argument fix-ups meow cannot express.

/** `-z`/`--compress` take an optional level: a bare one becomes `--compress=` so it never swallows SRC. */
export function normalizeArgv(argv: readonly string[]): string[] {
	const out: string[] = [];
	let positionalOnly = false;
	for (const arg of argv) {
		if (positionalOnly) {
			out.push(arg);
		} else if (arg === '--') {
			positionalOnly = true;
			out.push(arg);
		} else if (arg === '-z' || arg === '--compress') {
			out.push('--compress=');
		} else if (/^-z\d$/.test(arg)) {
			out.push(`--compress=${arg.slice(2)}`);
		} else {
			out.push(arg);
		}
	}
	return out;
}
