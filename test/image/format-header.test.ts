import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {HEADER_BYTES, headerFormat, headerRefusal} from '../../source/image/format-header.js';

const header = suite('headerFormat');

/** HEADER_BYTES of zeros with `magic` written at `offset`. */
function head(magic: Buffer | string, offset = 0): Buffer {
	const bytes = Buffer.alloc(HEADER_BYTES);
	(typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic).copy(bytes, offset);
	return bytes;
}

header('should name each format by the magic of its QEMU driver', () => {
	assert.is(headerFormat(head(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))), 'qcow2');
	assert.is(headerFormat(head(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 2]))), 'qcow2');
	assert.is(headerFormat(head(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 1]))), 'qcow');
	assert.is(headerFormat(head('KDMV')), 'vmdk');
	assert.is(headerFormat(head('COWD')), 'vmdk');
	assert.is(headerFormat(head('# Disk DescriptorFile\nversion=1\n')), 'vmdk');
	assert.is(headerFormat(head('vhdxfile')), 'vhdx');
	assert.is(headerFormat(head(Buffer.from([0x7f, 0x10, 0xda, 0xbe]), 64)), 'vdi');
	assert.is(headerFormat(head('QED\0')), 'qed');
});

header('should see nothing in zeros, random-looking data, a short file or a magic at the wrong offset', () => {
	assert.is(headerFormat(Buffer.alloc(HEADER_BYTES)), undefined);
	assert.is(headerFormat(Buffer.alloc(0)), undefined);
	assert.is(headerFormat(Buffer.from('QFI')), undefined);
	assert.is(headerFormat(head('QED ')), undefined);
	assert.is(headerFormat(head(Buffer.from([0x7f, 0x10, 0xda, 0xbe]), 0)), undefined);
	assert.is(headerFormat(head('vhdxfile', 1)), undefined);
	assert.is(headerFormat(Buffer.from([0x7f, 0x10, 0xda, 0xbe]).subarray(0, 3)), undefined);
});

header('should say what to add, for SRC and for DST', () => {
	assert.is(headerRefusal('SRC', 'vm.qcow2', 'qcow2'), 'SRC vm.qcow2 holds a qcow2 image: add --src-format qcow2 to copy the disk it holds, or --src-format raw to copy the file as it is');
	assert.is(headerRefusal('DST', 'disk.vmdk', 'vmdk'), 'DST disk.vmdk holds a vmdk image: add --dst-format vmdk to write the disk it holds, or --dst-format raw to overwrite the file as it is');
});

header.run();
