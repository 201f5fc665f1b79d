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
		identitiesOnly: false, proxyJump: undefined, hashKnownHosts: false,
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

test('should read HashKnownHosts', () => {
	assert.ok(resolveHost(parseSshConfig('Host *\n\tHashKnownHosts yes\n'), {alias: 'x', ...base}).hashKnownHosts);
	assert.not.ok(resolveHost(parseSshConfig('HashKnownHosts no\nHost *\n\tHashKnownHosts yes\n'), {alias: 'x', ...base}).hashKnownHosts);
});

test('should read Include in place: at top level, inside a Host block only for that host, globbed and nested', () => {
	const files: Record<string, string> = {
		'a.conf': 'Host pve\n\tUser from-a\n\tInclude deeper.conf\n',
		'deeper.conf': 'Port 2200\n',
		'inner.conf': 'User from-inner\nHost *\n\tIdentityFile ~/.ssh/inner\n',
	};
	const readInclude = (word: string): string[] =>
		word === '*.conf' ? ['a.conf', 'deeper.conf'].map(name => files[name]!) : files[word] === undefined ? [] : [files[word]!];
	const blocks = parseSshConfig('Include inner-missing.conf *.conf\nHost kvm\n\tInclude inner.conf\n\tHostName 10.1.1.1\nHost *\n\tUser fallback\n', readInclude);
	const pve = resolveHost(blocks, {alias: 'pve', ...base});
	assert.is(pve.user, 'from-a');
	assert.is(pve.port, 2200, 'Include nested in an included Host block applies to that host');
	assert.equal(pve.identityFiles, [], 'inner.conf sits inside Host kvm: not for pve');
	const kvm = resolveHost(blocks, {alias: 'kvm', ...base});
	assert.is(kvm.user, 'from-inner');
	assert.is(kvm.hostName, '10.1.1.1', 'the block holding the Include goes on after it');
	assert.equal(kvm.identityFiles, ['/home/me/.ssh/inner']);
	assert.is(kvm.port, 2200, 'deeper.conf was also included at top level by the glob');
	assert.is(resolveHost(blocks, {alias: 'other', ...base}).user, 'fallback');
});

test('should stop at 16 levels of Include that include themselves', () => {
	let reads = 0;
	const blocks = parseSshConfig('Include self\n', () => {
		reads += 1;
		return ['User looped\nInclude self\n'];
	});
	assert.is(reads, 16);
	assert.is(resolveHost(blocks, {alias: 'x', ...base}).user, 'looped');
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
