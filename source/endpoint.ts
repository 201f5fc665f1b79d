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

/** Parses one positional argument; throws Error with a user-facing message on malformed remote specs. */
export function parseEndpoint(spec: string): Endpoint {
	if (spec === '') {
		throw new Error('empty path');
	}
	if (spec.startsWith('ssh://')) {
		return parseSshUrl(spec);
	}
	// scp rule: a colon before any slash makes it remote.
	const colon = spec.indexOf(':');
	const slash = spec.indexOf('/');
	const bracket = spec.indexOf('[');
	if (bracket !== -1 && (slash === -1 || bracket < slash) && (colon === -1 || bracket < colon || spec.slice(0, bracket).endsWith('@'))) {
		const close = spec.indexOf(']', bracket);
		if (close !== -1 && spec[close + 1] === ':') {
			const user = bracket > 0 ? spec.slice(0, bracket - 1) : undefined;
			return remote(spec, user, spec.slice(bracket + 1, close), spec.slice(close + 2));
		}
	}
	if (colon <= 0 || (slash !== -1 && slash < colon)) {
		return {kind: 'local', path: spec};
	}
	const authority = spec.slice(0, colon);
	const at = authority.lastIndexOf('@');
	const user = at === -1 ? undefined : authority.slice(0, at);
	const host = at === -1 ? authority : authority.slice(at + 1);
	return remote(spec, user, host, spec.slice(colon + 1));
}

function parseSshUrl(spec: string): RemoteEndpoint {
	const rest = spec.slice('ssh://'.length);
	const slash = rest.indexOf('/');
	if (slash === -1) {
		throw new Error(`${spec}: an ssh:// URL needs a path after the host`);
	}
	const authority = rest.slice(0, slash);
	const path = decodeURIComponent(rest.slice(slash));
	const at = authority.lastIndexOf('@');
	const user = at === -1 ? undefined : decodeURIComponent(authority.slice(0, at));
	let hostPort = at === -1 ? authority : authority.slice(at + 1);
	let port: number | undefined;
	let host: string;
	if (hostPort.startsWith('[')) {
		const close = hostPort.indexOf(']');
		if (close === -1) {
			throw new Error(`${spec}: unbalanced [ in host`);
		}
		host = hostPort.slice(1, close);
		hostPort = hostPort.slice(close + 1);
		if (hostPort.startsWith(':')) {
			port = parsePort(spec, hostPort.slice(1));
		} else if (hostPort !== '') {
			throw new Error(`${spec}: unexpected text after ]`);
		}
	} else {
		const colon = hostPort.lastIndexOf(':');
		host = colon === -1 ? hostPort : hostPort.slice(0, colon);
		if (colon !== -1) {
			port = parsePort(spec, hostPort.slice(colon + 1));
		}
	}
	return remote(spec, user, host, path, port);
}

function parsePort(spec: string, text: string): number {
	const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
	if (!(port >= 1 && port <= 65_535)) {
		throw new Error(`${spec}: port must be a number from 1 to 65535`);
	}
	return port;
}

function remote(spec: string, user: string | undefined, host: string, path: string, port?: number): RemoteEndpoint {
	if (host === '') {
		throw new Error(`${spec}: empty host name`);
	}
	if (user === '') {
		throw new Error(`${spec}: empty user name before @`);
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
