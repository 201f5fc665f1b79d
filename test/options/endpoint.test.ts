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

parse('should format endpoints back the way users write them', () => {
	assert.is(formatEndpoint(parseEndpoint('root@pve:/x')), 'root@pve:/x');
	assert.is(formatEndpoint(parseEndpoint('[::1]:/x')), '[::1]:/x');
	assert.is(formatEndpoint(parseEndpoint('a.img')), 'a.img');
});

parse.run();
