// Pure formatting helpers shared by the plain, JSON and ink reporters.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; whole bytes below 1 KiB. */
export function formatBytes(bytes: number): string {
	let value = bytes;
	let unit = 0;
	while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
		value /= 1024;
		unit += 1;
	}
	return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
}

/** Compact bytes for tight columns: 0 -> "0", 1536 -> "1.5K", 2^30 -> "1G" (one decimal below 10). */
export function formatBytesShort(bytes: number): string {
	let value = bytes;
	let unit = 0;
	while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
		value /= 1024;
		unit += 1;
	}
	const suffix = unit === 0 ? '' : UNITS[unit]!.charAt(0);
	const digits = unit > 0 && value < 10 && Math.round(value * 10) % 10 !== 0 ? 1 : 0;
	return `${value.toFixed(digits)}${suffix}`;
}

/** Bytes per second as "123 MiB/s"; "-" when time is zero. */
export function formatRate(bytes: number, seconds: number): string {
	return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '-';
}

/** 3725 -> "1:02:05", 65 -> "1:05". */
export function formatDuration(seconds: number): string {
	if (!Number.isFinite(seconds) || seconds < 0) {
		return '--:--';
	}
	const s = Math.round(seconds);
	const h = Math.floor(s / 3600);
	const m = Math.floor((s % 3600) / 60);
	const rest = String(s % 60).padStart(2, '0');
	return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** Percent with one decimal, clamped to 0..100. */
export function formatPercent(done: number, total: number): string {
	const value = total > 0 ? Math.min(100, Math.max(0, (done / total) * 100)) : 100;
	return `${value.toFixed(1)}%`;
}

/** part/whole as a percentage with enough decimals to show small wire ratios: "0.012%". */
export function formatRatio(part: number, whole: number): string {
	if (whole <= 0) {
		return '-';
	}
	const value = (part / whole) * 100;
	return `${value.toFixed(value >= 10 ? 1 : 3)}%`;
}
