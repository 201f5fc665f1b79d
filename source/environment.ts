// Every RBLOCKSYNC_* environment variable is read here and nowhere else: resolveOptions takes the driver's,
// the native loader its own two (it also runs in agents and threads, which have no options). Imports nothing.

/** The driver's knobs, for tests, benchmarks and bug reports. */
export type EnvironmentKnobs = {
	/** RBLOCKSYNC_TRACE=1: a timeline of the phases on stderr. */
	readonly trace: boolean;
	/** RBLOCKSYNC_LOCAL_THREADS=0: the local role of a remote sync runs in-process, not in a worker thread. */
	readonly localThreads: boolean;
	/** RBLOCKSYNC_REMOTE_AGENT=upload: upload the agent even where rblocksync is installed. */
	readonly uploadAgent: boolean;
	/** RBLOCKSYNC_SSH_KEEPALIVE_MS: the SSH keepalive interval (15 s; a dead link fails after 3). */
	readonly keepaliveMs: number;
};

export function environmentKnobs(env: NodeJS.ProcessEnv): EnvironmentKnobs {
	const keepalive = Number(env['RBLOCKSYNC_SSH_KEEPALIVE_MS'] ?? 15_000);
	return {
		trace: env['RBLOCKSYNC_TRACE'] === '1',
		localThreads: env['RBLOCKSYNC_LOCAL_THREADS'] !== '0',
		uploadAgent: env['RBLOCKSYNC_REMOTE_AGENT'] === 'upload',
		keepaliveMs: Number.isFinite(keepalive) && keepalive > 0 ? keepalive : 15_000,
	};
}

/** How this process finds its native helper. */
export type NativeKnobs = {
	/** RBLOCKSYNC_NATIVE=FILE: the only file to try (a wrong override must show, not fall back silently). */
	readonly path: string | undefined;
	/** RBLOCKSYNC_NO_NATIVE=1: run without it (tests of the fallbacks). */
	readonly disabled: boolean;
};

export function nativeKnobs(env: NodeJS.ProcessEnv): NativeKnobs {
	return {path: env['RBLOCKSYNC_NATIVE'] || undefined, disabled: env['RBLOCKSYNC_NO_NATIVE'] === '1'};
}

/** RBLOCKSYNC_NBD_FILES=0: a formatted SRC is read only through its NBD server, never from its files (image/host-map.ts). Read where the agent opens it. */
export function nbdFilesKnob(env: NodeJS.ProcessEnv): boolean {
	return env['RBLOCKSYNC_NBD_FILES'] !== '0';
}
