import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {matchPatternList, parseSshConfig, resolveHost} from '../../source/ssh/config.js';

const test = suite('resolveHost');

const config = parseSshConfig(`
# global
IdentitiesOnly no
Host pve pve?.lan
	HostName 10.0.0.%h
	User root
	Port 2222
	IdentityFile ~/.ssh/pve_%r_%h
Host *.lan !bad.lan
	User admin
	IdentityFile "~/.ssh/lan key"
Match host foo
	User matched
Host=jump
	ProxyJump bastion
Host *
	Port 22
	IdentitiesOnly yes
	IdentityFile %d/.ssh/id_all
`);
const base = {home: '/home/me', localUser: 'me'};

test('should take the first value of each keyword and accumulate identity files', () => {
	const host = resolveHost(config, {alias: 'pve', ...base});
	assert.equal(host, {
		alias: 'pve', hostName: '10.0.0.pve', user: 'root', port: 2222,
		identityFiles: ['/home/me/.ssh/pve_root_10.0.0.pve', '/home/me/.ssh/id_all'],
		identitiesOnly: false, proxyJump: undefined,
	});
});

test('should let the endpoint and flags win over the file', () => {
	const host = resolveHost(config, {alias: 'pve1.lan', user: 'ops', port: 7, identity: '/k', ...base});
	assert.is(host.user, 'ops');
	assert.is(host.port, 7);
	assert.equal(host.identityFiles, ['/k', '/home/me/.ssh/pve_ops_10.0.0.pve1.lan', '/home/me/.ssh/lan key', '/home/me/.ssh/id_all']);
});

test('should honour negated patterns and skip Match blocks', () => {
	assert.is(resolveHost(config, {alias: 'bad.lan', ...base}).user, 'me');
	assert.is(resolveHost(config, {alias: 'good.lan', ...base}).user, 'admin');
	assert.is(resolveHost(config, {alias: 'foo', ...base}).user, 'me');
	assert.is(resolveHost(config, {alias: 'jump', ...base}).proxyJump, 'bastion');
	assert.is(resolveHost(config, {alias: 'other', ...base}).port, 22);
});

test('should match pattern lists like OpenSSH', () => {
	assert.ok(matchPatternList(['*.example.com'], 'A.Example.com'));
	assert.ok(matchPatternList(['h?st'], 'host'));
	assert.not.ok(matchPatternList(['h?st'], 'hoost'));
	assert.not.ok(matchPatternList(['*', '!secret'], 'secret'));
	assert.not.ok(matchPatternList(['!secret'], 'other'));
	assert.ok(matchPatternList(['1.2.3.*'], '1.2.3.4'));
	assert.not.ok(matchPatternList(['1.2.3.*'], '1.2.3x4'.replace('x', '')));
});

test.run();
