import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {formatEndpoint, parseEndpoint} from '../../source/endpoint.js';

const parse = suite('parseEndpoint');

parse('should keep paths without a colon before the first slash local', () => {
	assert.equal(parseEndpoint('disk.img'), {kind: 'local', path: 'disk.img'});
	assert.equal(parseEndpoint('/dev/sdb'), {kind: 'local', path: '/dev/sdb'});
	assert.equal(parseEndpoint('./a:b'), {kind: 'local', path: './a:b'});
	assert.equal(parseEndpoint('/x/a:b'), {kind: 'local', path: '/x/a:b'});
});

parse('should read host:path and user@host:path as remote', () => {
	assert.equal(parseEndpoint('pve:/dev/lvm/vm-100'), {kind: 'remote', host: 'pve', path: '/dev/lvm/vm-100'});
	assert.equal(parseEndpoint('root@pve:img with space'), {kind: 'remote', host: 'pve', user: 'root', path: 'img with space'});
});

parse('should read bracketed IPv6 hosts', () => {
	assert.equal(parseEndpoint('[::1]:/img'), {kind: 'remote', host: '::1', path: '/img'});
	assert.equal(parseEndpoint('me@[fe80::1]:x'), {kind: 'remote', host: 'fe80::1', user: 'me', path: 'x'});
});

parse('should read ssh:// URLs with user and port', () => {
	assert.equal(parseEndpoint('ssh://root@kvm2:2222/var/img'), {kind: 'remote', host: 'kvm2', user: 'root', port: 2222, path: '/var/img'});
	assert.equal(parseEndpoint('ssh://[::1]:22/a%20b'), {kind: 'remote', host: '::1', port: 22, path: '/a b'});
	assert.equal(parseEndpoint('ssh://h/p'), {kind: 'remote', host: 'h', path: '/p'});
});

parse('should reject malformed remote specs with a message naming the problem', () => {
	assert.throws(() => parseEndpoint('host:'), /empty path after the host/);
	assert.throws(() => parseEndpoint('@host:/x'), /empty user name/);
	assert.throws(() => parseEndpoint('ssh://host'), /needs a path/);
	assert.throws(() => parseEndpoint('ssh://host:99999/x'), /port must be/);
	assert.throws(() => parseEndpoint(''), /empty path/);
});

parse('should keep local what has no colon before its first slash, brackets included', () => {
	assert.equal(parseEndpoint('[backup].img'), {kind: 'local', path: '[backup].img'});
	assert.equal(parseEndpoint('user@[x'), {kind: 'local', path: 'user@[x'});
	assert.equal(parseEndpoint('./[::1]:x'), {kind: 'local', path: './[::1]:x'});
	assert.equal(parseEndpoint(':x'), {kind: 'local', path: ':x'});
});

parse('should keep the user apart from a bracketed host and a path holding @ or colons', () => {
	assert.equal(parseEndpoint('me@[2001:db8::1]:a@b:c'), {kind: 'remote', host: '2001:db8::1', user: 'me', path: 'a@b:c'});
	assert.equal(parseEndpoint('pve:/dev/a:b'), {kind: 'remote', host: 'pve', path: '/dev/a:b'});
	assert.equal(parseEndpoint('a@b@pve:x'), {kind: 'remote', host: 'pve', user: 'a@b', path: 'x'});
	assert.equal(parseEndpoint('ssh://me@[2001:db8::1]/x'), {kind: 'remote', host: '2001:db8::1', user: 'me', path: '/x'});
});

/** The message parseEndpoint throws for spec. */
function refusal(spec: string): string {
	try {
		parseEndpoint(spec);
	} catch (error) {
		return (error as Error).message;
	}
	throw new Error(`${spec} was accepted`);
}

parse('should refuse each malformed remote spec with a message that says what is wrong', () => {
	const local = (spec: string) => ` (write ./${spec} for a local file)`;
	assert.is(refusal('user@[::1/tmp/x'), 'user@[::1/tmp/x: unclosed [ in the host (write [2001:db8::1]:path, or ./user@[::1/tmp/x for a local file)');
	assert.is(refusal('[::1:/x'), '[::1:/x: unclosed [ in the host (write [2001:db8::1]:path, or ./[::1:/x for a local file)');
	assert.is(refusal('[::1]/x'), '[::1]/x: expected : and a path after ] (write [2001:db8::1]:path, or ./[::1]/x for a local file)');
	assert.is(refusal('[::1]x:y'), '[::1]x:y: expected : and a path after ] (write [2001:db8::1]:path, or ./[::1]x:y for a local file)');
	assert.is(refusal('[]:/x'), '[]:/x: empty host name');
	assert.is(refusal('me@:/x'), 'me@:/x: empty host name');
	assert.is(refusal('@pve:/x'), '@pve:/x: empty user name before @');
	assert.is(refusal('@[::1]:/x'), '@[::1]:/x: empty user name before @');
	assert.is(refusal('pve:'), 'pve:: empty path after the host');
	assert.is(refusal('[::1]:'), '[::1]:: empty path after the host');
	assert.is(refusal('my host:/x'), `my host:/x: a host name cannot contain blanks${local('my host:/x')}`);
	assert.is(refusal('pv[e:/x'), `pv[e:/x: unexpected [ in the host${local('pv[e:/x')}`);
	assert.is(refusal('pv]e:/x'), `pv]e:/x: unexpected ] in the host${local('pv]e:/x')}`);
	assert.is(refusal('[a[b]:/x'), `[a[b]:/x: unexpected [ in the host${local('[a[b]:/x')}`);
});

parse('should refuse each malformed ssh:// URL with a message that says what is wrong', () => {
	assert.is(refusal('ssh://pve'), 'ssh://pve: an ssh:// URL needs a path after the host');
	assert.is(refusal('ssh:///x'), 'ssh:///x: empty host name');
	assert.is(refusal('ssh://me@/x'), 'ssh://me@/x: empty host name');
	assert.is(refusal('ssh://@pve/x'), 'ssh://@pve/x: empty user name before @');
	assert.is(refusal('ssh://:22/x'), 'ssh://:22/x: empty host name');
	assert.is(refusal('ssh://pve:/x'), 'ssh://pve:/x: port must be a number from 1 to 65535');
	assert.is(refusal('ssh://pve:0/x'), 'ssh://pve:0/x: port must be a number from 1 to 65535');
	assert.is(refusal('ssh://pve:65536/x'), 'ssh://pve:65536/x: port must be a number from 1 to 65535');
	assert.is(refusal('ssh://pve:22a/x'), 'ssh://pve:22a/x: port must be a number from 1 to 65535');
	assert.is(refusal('ssh://[::1]:x/y'), 'ssh://[::1]:x/y: port must be a number from 1 to 65535');
	assert.is(refusal('ssh://[::1/x'), 'ssh://[::1/x: unclosed [ in the host (write ssh://[2001:db8::1]/path)');
	assert.is(refusal('ssh://[::1]x/y'), 'ssh://[::1]x/y: unexpected text after ]');
	assert.is(refusal('ssh://[]/x'), 'ssh://[]/x: empty host name');
	assert.is(refusal('ssh://2001:db8::1/x'), 'ssh://2001:db8::1/x: an IPv6 address in an ssh:// URL needs brackets (ssh://[2001:db8::1]/path)');
	assert.is(refusal('ssh://me:secret@pve/x'), 'ssh://me:secret@pve/x: a password in an ssh:// URL is not supported (use a key or the agent)');
	assert.is(refusal('ssh://pve/a%zz'), 'ssh://pve/a%zz: malformed %-escape (write %25 for a % sign)');
	assert.is(refusal('ssh://my host/x'), 'ssh://my host/x: a host name cannot contain blanks');
});

parse('should format endpoints back the way users write them', () => {
	assert.is(formatEndpoint(parseEndpoint('root@pve:/x')), 'root@pve:/x');
	assert.is(formatEndpoint(parseEndpoint('[::1]:/x')), '[::1]:/x');
	assert.is(formatEndpoint(parseEndpoint('a.img')), 'a.img');
});

parse.run();
