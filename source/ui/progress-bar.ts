// A progress bar as a plain string: exactly `width` cells, partial cells where the glyphs allow.
import type {Glyphs} from './glyphs.js';

/** Renders fraction (clamped to 0..1) as `width` cells of glyphs.bar. */
export function renderBar(fraction: number, width: number, glyphs: Pick<Glyphs, 'bar'>): string {
	if (width <= 0) {
		return '';
	}
	const cells = glyphs.bar;
	const steps = cells.length - 1;
	const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
	const units = Math.floor(clamped * width * steps + 1e-9);
	const full = Math.floor(units / steps);
	const partial = units % steps;
	const empty = cells[0]!;
	let bar = cells[steps]!.repeat(full);
	if (full < width) {
		bar += partial > 0 ? cells[partial]! : empty;
		bar += empty.repeat(width - full - 1);
	}
	return bar;
}
