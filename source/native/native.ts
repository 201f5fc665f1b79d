// Placeholder until the native helper lands (branch native): same API, never loaded.
export interface NativeOps {
	punchHole(fd: number, offset: number, length: number): void;
	seekData(fd: number, offset: number): number;
	seekHole(fd: number, offset: number): number;
	blockDeviceSize(fd: number): number;
	zeroOut(fd: number, offset: number, length: number): void;
	fadvise(fd: number, offset: number, length: number, advice: 'normal' | 'sequential' | 'dontneed'): void;
}
export function nativeOps(): NativeOps | undefined {
	return undefined;
}
export function nativeLoadError(): string | undefined {
	return 'not built';
}
