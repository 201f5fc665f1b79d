// Coalescing of ascending byte runs, shared by every writer and by SOURCE's zero ranges. Pure.

/** Merges ascending byte runs that touch and hands each finished run to `emit` (one syscall or frame per run). */
export class RunCoalescer {
	private start = -1;
	private end = -1;

	constructor(private readonly emit: (start: number, length: number) => void) {}

	/** Adds [start, end); runs must come in ascending order. */
	add(start: number, end: number): void {
		if (this.start >= 0 && this.end === start) {
			this.end = end;
			return;
		}
		this.flush();
		this.start = start;
		this.end = end;
	}

	/** Emits the run being built, if any. */
	flush(): void {
		if (this.start >= 0) {
			const start = this.start;
			this.start = -1;
			this.emit(start, this.end - start);
		}
	}
}
