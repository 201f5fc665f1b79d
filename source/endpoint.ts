// SRC/DST syntax, scp-style: `[user@]host:path`, `ssh://[user@]host[:port]/path`, `[v6]:path`, else local.

export type LocalEndpoint = {readonly kind: 'local'; readonly path: string};
export type RemoteEndpoint = {
	readonly kind: 'remote';
	readonly host: string;
	readonly user?: string;
	readonly port?: number;
	readonly path: string;
};
export type Endpoint = LocalEndpoint | RemoteEndpoint;

/**
 * Parses one positional argument; throws Error with a user-facing message on malformed remote specs.
 * scp's rule decides what is remote: a colon before any slash (`./a:b` and `/x/a:b` stay local, and so does
 * `[a].img`). What is remote must then be well formed: `[user@]host:path` or `[user@][v6addr]:path`.
 */
export function parseEndpoint(spec: string): Endpoint {
	if (spec === '') {
		throw new Error('empty path');
	}
	if (spec.startsWith('ssh://')) {
		return parseSshUrl(spec);
	}
	const colon = spec.indexOf(':');
	const slash = spec.indexOf('/');
	if (colon <= 0 || (slash !== -1 && slash < colon)) {
		return {kind: 'local', path: spec};
	}
	// The user name ends at the last @ before the colon; the host may be [bracketed] (its colons do not count).
	const at = spec.lastIndexOf('@', colon);
	const user = at === -1 ? undefined : spec.slice(0, at);
	const hostStart = at + 1;
	if (spec[hostStart] === '[') {
		const close = spec.indexOf(']', hostStart);
		if (close === -1 || (slash !== -1 && slash < close)) {
			throw new Error(`${spec}: unclosed [ in the host (write [2001:db8::1]:path, or ./${spec} for a local file)`);
		}
		if (spec[close + 1] !== ':') {
			throw new Error(`${spec}: expected : and a path after ] (write [2001:db8::1]:path, or ./${spec} for a local file)`);
		}
		return remote(spec, user, checkedHost(spec, spec.slice(hostStart + 1, close)), spec.slice(close + 2));
	}
	return remote(spec, user, checkedHost(spec, spec.slice(hostStart, colon)), spec.slice(colon + 1));
}

function parseSshUrl(spec: string): RemoteEndpoint {
	const rest = spec.slice('ssh://'.length);
	const slash = rest.indexOf('/');
	if (slash === -1) {
		throw new Error(`${spec}: an ssh:// URL needs a path after the host`);
	}
	const authority = rest.slice(0, slash);
	const path = decode(spec, rest.slice(slash));
	const at = authority.lastIndexOf('@');
	const user = at === -1 ? undefined : decode(spec, authority.slice(0, at));
	if (user?.includes(':')) {
		throw new Error(`${spec}: a password in an ssh:// URL is not supported (use a key or the agent)`);
	}
	let hostPort = at === -1 ? authority : authority.slice(at + 1);
	let port: number | undefined;
	let host: string;
	if (hostPort.startsWith('[')) {
		const close = hostPort.indexOf(']');
		if (close === -1) {
			throw new Error(`${spec}: unclosed [ in the host (write ssh://[2001:db8::1]/path)`);
		}
		host = checkedHost(spec, hostPort.slice(1, close));
		hostPort = hostPort.slice(close + 1);
		if (hostPort.startsWith(':')) {
			port = parsePort(spec, hostPort.slice(1));
		} else if (hostPort !== '') {
			throw new Error(`${spec}: unexpected text after ]`);
		}
	} else {
		const colon = hostPort.indexOf(':');
		if (colon !== -1 && hostPort.indexOf(':', colon + 1) !== -1) {
			throw new Error(`${spec}: an IPv6 address in an ssh:// URL needs brackets (ssh://[2001:db8::1]/path)`);
		}
		host = checkedHost(spec, colon === -1 ? hostPort : hostPort.slice(0, colon));
		if (colon !== -1) {
			port = parsePort(spec, hostPort.slice(colon + 1));
		}
	}
	return remote(spec, user, host, path, port);
}

/** The host as written: none holds blanks, and one without brackets holds no bracket. */
function checkedHost(spec: string, host: string): string {
	// Only an scp-style spec can be a local file meant otherwise; an ssh:// URL is remote for sure.
	const local = spec.startsWith('ssh://') ? '' : ` (write ./${spec} for a local file)`;
	if (/\s/.test(host)) {
		throw new Error(`${spec}: a host name cannot contain blanks${local}`);
	}
	const bracket = /[[\]]/.exec(host);
	if (bracket) {
		throw new Error(`${spec}: unexpected ${bracket[0]} in the host${local}`);
	}
	return host;
}

function decode(spec: string, text: string): string {
	try {
		return decodeURIComponent(text);
	} catch {
		throw new Error(`${spec}: malformed %-escape (write %25 for a % sign)`);
	}
}

function parsePort(spec: string, text: string): number {
	const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
	if (!(port >= 1 && port <= 65_535)) {
		throw new Error(`${spec}: port must be a number from 1 to 65535`);
	}
	return port;
}

function remote(spec: string, user: string | undefined, host: string, path: string, port?: number): RemoteEndpoint {
	if (user === '') {
		throw new Error(`${spec}: empty user name before @`);
	}
	if (host === '') {
		throw new Error(`${spec}: empty host name`);
	}
	if (path === '') {
		throw new Error(`${spec}: empty path after the host`);
	}
	return {kind: 'remote', host, path, ...(user === undefined ? {} : {user}), ...(port === undefined ? {} : {port})};
}

/** How an endpoint is shown to the user: `pve:/dev/x`, `root@kvm2:/img`, or the local path. */
export function formatEndpoint(endpoint: Endpoint): string {
	if (endpoint.kind === 'local') {
		return endpoint.path;
	}
	const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
	return `${endpoint.user === undefined ? '' : `${endpoint.user}@`}${host}:${endpoint.path}`;
}
