import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {CMD, CMD_FLAG, dirtyBitmapContext, encodeClientFlags, encodeExportName, encodeGo, encodeMetaContext, encodeOption, encodeRequest, errnoCode, INFO, OPT} from '../../source/nbd/protocol.js';

const hex = (bytes: Buffer): string => bytes.toString('hex');

const encode = suite('NBD encoders');

encode('should lay out a request header as the spec says (magic, flags, type, cookie, offset, length)', () => {
	const bytes = encodeRequest({type: CMD.WRITE_ZEROES, flags: CMD_FLAG.NO_HOLE, cookie: 0x0102030405, offset: 2 ** 40 + 7, length: 0xfffffffe});
	assert.is(hex(bytes), '25609513' + '0002' + '0006' + '0000000102030405' + '0000010000000007' + 'fffffffe');
	assert.is(hex(encodeRequest({type: CMD.DISC, cookie: 9})), '25609513000000020000000000000009' + '0'.repeat(16) + '00000000');
});

encode('should lay out options: IHAVEOPT, option, length, data', () => {
	assert.is(hex(encodeOption(OPT.STRUCTURED_REPLY)), '49484156454f5054' + '00000008' + '00000000');
	assert.is(hex(encodeClientFlags(3)), '00000003');
	assert.is(hex(encodeExportName('ab')), '49484156454f5054' + '00000001' + '00000002' + '6162');
	// GO: name length, name, number of info requests, the requests.
	assert.is(hex(encodeGo('disk', [INFO.BLOCK_SIZE])), '49484156454f5054' + '00000007' + '0000000c' + '00000004' + hex(Buffer.from('disk')) + '0001' + '0003');
	assert.is(hex(encodeGo('', [])), '49484156454f5054' + '00000007' + '00000006' + '00000000' + '0000');
});

encode('should lay out NBD_OPT_SET_META_CONTEXT: export name, number of queries, each query with its length', () => {
	const bitmap = dirtyBitmapContext('b0');
	assert.is(bitmap, 'qemu:dirty-bitmap:b0');
	const bytes = encodeMetaContext('x', ['base:allocation', bitmap]);
	const data = '00000001' + hex(Buffer.from('x')) + '00000002' + '0000000f' + hex(Buffer.from('base:allocation')) + '00000014' + hex(Buffer.from(bitmap));
	assert.is(hex(bytes), '49484156454f5054' + '0000000a' + (data.length / 2).toString(16).padStart(8, '0') + data);
	assert.is(hex(encodeMetaContext('', [])), '49484156454f5054' + '0000000a' + '00000008' + '00000000' + '00000000');
});

encode('should refuse an export name longer than 4096 bytes or holding NUL', () => {
	assert.throws(() => encodeGo('x'.repeat(4097), []), /at most 4096 bytes/);
	assert.throws(() => encodeExportName('a\0b'), /without NUL/);
});

encode('should map NBD error values to errno codes, unknown ones to EINVAL', () => {
	assert.equal([1, 5, 12, 22, 28, 75, 95, 108, 9999].map(errnoCode), ['EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'ENOTSUP', 'ESHUTDOWN', 'EINVAL']);
});

encode.run();

