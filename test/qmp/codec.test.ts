import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {classify, encodeCommand, QmpDecoder, QmpProtocolError, resultOf} from '../../source/qmp/codec.js';

const test = suite('QMP codec');

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}\r\n';
const STREAM = `${GREETING}{"return": {}, "id": 0}\r\n{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BLOCK_EXPORT_DELETED", "data": {"id": "x"}}\r\n`
	+ '{"return": [{"id": "rblocksync-1", "node-name": "disk0"}], "id": 1}\r\n{"id": 2, "error": {"class": "GenericError", "desc": "NBD server already running"}}\r\n';

test('should encode a command as one JSON line with its id, arguments only when given', () => {
	assert.is(encodeCommand({execute: 'query-block'}, 3), '{"execute":"query-block","id":3}\n');
	assert.is(encodeCommand({execute: 'block-export-del', arguments: {id: 'e', mode: 'hard'}}, 4), '{"execute":"block-export-del","arguments":{"id":"e","mode":"hard"},"id":4}\n');
});

test('should decode the greeting, returns, errors and events whatever the chunking', () => {
	const expected = [
		{kind: 'greeting', version: '7.2.22'},
		{kind: 'return', id: 0, value: {}},
		{kind: 'event', event: 'BLOCK_EXPORT_DELETED'},
		{kind: 'return', id: 1, value: [{id: 'rblocksync-1', 'node-name': 'disk0'}]},
		{kind: 'error', id: 2, errorClass: 'GenericError', desc: 'NBD server already running'},
	];
	for (let split = 0; split <= STREAM.length; split += 1) {
		const decoder = new QmpDecoder();
		const messages = [...decoder.push(STREAM.slice(0, split)), ...decoder.push(STREAM.slice(split))];
		assert.equal(messages, expected, `split at ${split}`);
	}
	const bytewise = new QmpDecoder();
	assert.equal([...STREAM].flatMap(character => bytewise.push(character)), expected);
});

test('should give each command its result: the value, or the error class and description', () => {
	assert.equal(resultOf({kind: 'return', id: 1, value: [1]}), {ok: true, value: [1]});
	assert.equal(resultOf({kind: 'error', id: 1, errorClass: 'DeviceNotFound', desc: 'no'}), {ok: false, errorClass: 'DeviceNotFound', desc: 'no'});
	assert.equal(classify({error: null}), {kind: 'error', id: undefined, errorClass: 'GenericError', desc: 'no description'});
});

test('should refuse what no QEMU monitor sends: not JSON, not an object, no known member', () => {
	for (const line of ['SSH-2.0-OpenSSH_9.2\r\n', '[1,2]\n', '42\n', '{"hello": 1}\n', 'null\n']) {
		assert.throws(() => new QmpDecoder().push(line), (error: unknown) => error instanceof QmpProtocolError && /^not a QMP message: /.test((error as Error).message), line);
	}
});

test('should skip empty lines and keep a partial line for the next chunk', () => {
	const decoder = new QmpDecoder();
	assert.equal(decoder.push('\r\n\n{"return": 1, "id"'), []);
	assert.equal(decoder.push(': 5}\n'), [{kind: 'return', id: 5, value: 1}]);
});

test.run();
