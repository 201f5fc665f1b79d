// known_hosts as OpenSSH reads it (plain, hashed |1|salt|hash, [host]:port, @revoked): pure lookup and formatting.
import {createHash, createHmac} from 'node:crypto';
import {matchPatternList} from './config.js';

export type KnownHostsVerdict =
	| {readonly kind: 'known'}
	| {readonly kind: 'unknown'}
	| {readonly kind: 'changed'; readonly line: number}
	| {readonly kind: 'revoked'; readonly line: number};

/** How OpenSSH names a host in known_hosts: `host`, or `[host]:port` off port 22. */
export function hostEntryName(host: string, port: number): string {
	return port === 22 ? host : `[${host}]:${port}`;
}

/** "SHA256:..." as ssh-keygen -l prints it. */
export function fingerprint(keyBlob: Buffer): string {
	return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob ("ssh-ed25519", ...). */
export function keyTypeOf(keyBlob: Buffer): string {
	const length = keyBlob.length >= 4 ? keyBlob.readUInt32BE(0) : 0;
	return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/**
 * The known_hosts line that trusts this key; with a `salt` (20 random bytes) the host is hashed as
 * OpenSSH's HashKnownHosts writes it: `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 */
export function knownHostsLine(host: string, port: number, keyBlob: Buffer, salt?: Buffer): string {
	const name = hostEntryName(host, port);
	const field = salt ? `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}` : name;
	return `${field} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}`;
}

function hostMatches(field: string, name: string): boolean {
	if (field.startsWith('|1|')) {
		const [, , salt, hash] = field.split('|');
		if (salt === undefined || hash === undefined) {
			return false;
		}
		return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
	}
	return matchPatternList(field.split(','), name);
}

type Entry = {line: number; marker: string | undefined; hosts: string; type: string; key: string};

function parseEntries(text: string): Entry[] {
	const entries: Entry[] = [];
	text.split(/\r?\n/).forEach((raw, index) => {
		const fields = raw.trim().split(/\s+/);
		if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) {
			return;
		}
		const marker = fields[0].startsWith('@') ? fields.shift() : undefined;
		const [hosts, type, key] = fields;
		if (hosts !== undefined && type !== undefined && key !== undefined) {
			entries.push({line: index + 1, marker, hosts, type, key});
		}
	});
	return entries;
}

/** Key types known_hosts holds for this host (to prefer them in the key exchange, as OpenSSH does). */
export function knownKeyTypes(text: string, host: string, port: number): string[] {
	const name = hostEntryName(host, port);
	return [...new Set(parseEntries(text).filter(e => e.marker === undefined && hostMatches(e.hosts, name)).map(e => e.type))];
}

/** Checks a server key: a revoked key, or any other key for this host, is never accepted. */
export function checkKnownHosts(text: string, host: string, port: number, keyBlob: Buffer): KnownHostsVerdict {
	const name = hostEntryName(host, port);
	const key = keyBlob.toString('base64');
	const type = keyTypeOf(keyBlob);
	let changed: number | undefined;
	let known = false;
	for (const entry of parseEntries(text)) {
		if (entry.marker === '@revoked') {
			if (entry.key === key) {
				return {kind: 'revoked', line: entry.line};
			}
			continue;
		}
		if (entry.marker !== undefined || !hostMatches(entry.hosts, name)) {
			continue; // @cert-authority: certificates are not supported; the plain key must be listed.
		}
		if (entry.key === key) {
			known = true;
		} else if (entry.type === type) {
			changed ??= entry.line;
		}
	}
	if (known) {
		return {kind: 'known'};
	}
	return changed === undefined ? {kind: 'unknown'} : {kind: 'changed', line: changed};
}
