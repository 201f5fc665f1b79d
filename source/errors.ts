// Error kinds carry the exit status; `exitCodeOf` is the one place that maps them.

/** Exit statuses, documented in --help, README and the man page. */
export const ExitCode = {
	ok: 0,
	usage: 1,
	io: 2,
	mismatch: 3,
	/** --check found DST different from SRC (not an error: nothing failed, nothing was written). */
	differs: 4,
	interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a one-line message for the user, a kind that decides the exit status. */
export class RblocksyncError extends Error {
	readonly exitCode: ExitCodeValue;
	constructor(message: string, exitCode: ExitCodeValue, options?: {cause?: unknown}) {
		super(message, options);
		this.name = new.target.name;
		this.exitCode = exitCode;
	}
}

/** Bad flags or arguments, or a precondition that failed before DST was touched (exit 1). */
export class UsageError extends RblocksyncError {
	constructor(message: string, options?: {cause?: unknown}) {
		super(message, ExitCode.usage, options);
	}
}

/** An I/O or transfer failure after DST may have been modified (exit 2). */
export class TransferError extends RblocksyncError {
	constructor(message: string, options?: {cause?: unknown}) {
		super(message, ExitCode.io, options);
	}
}

/** A link (an SSH connection or channel, an agent) that ended mid-run without saying why: --retries may reconnect (exit 2). */
export class LinkLostError extends TransferError {}

/** A host or agent that could not be reached or started, its connection or channel gone (exit 1: before any write). */
export class LinkDownError extends UsageError {}

/** A host that refused us for good (its host key, our keys): never retried, also when reconnecting (exit 1). */
export class RefusedError extends UsageError {}

/** --verify found DST different from SRC (exit 3). */
export class VerifyError extends RblocksyncError {
	constructor(message: string) {
		super(message, ExitCode.mismatch);
	}
}

/** SIGINT/SIGTERM stopped the sync (exit 130). */
export class InterruptedError extends RblocksyncError {
	constructor(message = 'interrupted; DST may be partially updated') {
		super(message, ExitCode.interrupted);
	}
}

/** The exit status for any thrown value: unknown errors count as I/O failures. */
export function exitCodeOf(error: unknown): ExitCodeValue {
	return error instanceof RblocksyncError ? error.exitCode : ExitCode.io;
}

/** The cause part of a one-line message: "no such file or directory" for ENOENT, else the code or message. */
export function describeSystemError(error: unknown): string {
	if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') {
		return SYSTEM_ERROR_TEXT[error.code] ?? (error instanceof Error ? error.message : error.code);
	}
	return error instanceof Error ? error.message : String(error);
}

const SYSTEM_ERROR_TEXT: Record<string, string> = {
	ENOENT: 'no such file or directory',
	EACCES: 'permission denied',
	EPERM: 'operation not permitted',
	EISDIR: 'is a directory',
	ENOTDIR: 'not a directory',
	ENOSPC: 'no space left on device',
	EIO: 'input/output error',
	EBUSY: 'device or resource busy',
	EROFS: 'read-only file system',
	EEXIST: 'file exists',
	EDQUOT: 'disk quota exceeded',
	EFBIG: 'file too large',
	ENXIO: 'no such device or address',
};
