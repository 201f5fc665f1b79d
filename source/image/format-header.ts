// Which QEMU image format a file's first bytes announce: the magic numbers of QEMU's block drivers
// (block/qcow2.c, vmdk.c, vhdx.c, vdi.c, qed.c), so a container is never copied as if it were the disk.

/** Bytes to read from the start of an image for headerFormat (vdi's signature sits at offset 64). */
export const HEADER_BYTES = 512;

const VMDK_DESCRIPTOR = '# Disk DescriptorFile';

/** The format whose header starts `head` (qcow2, qcow, vmdk, vhdx, vdi, qed), or undefined for anything else. */
export function headerFormat(head: Buffer): string | undefined {
	const at = (offset: number, magic: string): boolean => head.length >= offset + magic.length && head.toString('latin1', offset, offset + magic.length) === magic;
	if (at(0, 'QFI\xfb')) {
		// QCOW_MAGIC; the big-endian version that follows tells qcow (1) from qcow2 (2, 3).
		return head.length >= 8 && head.readUInt32BE(4) === 1 ? 'qcow' : 'qcow2';
	}
	if (at(0, 'KDMV') || at(0, 'COWD') || at(0, VMDK_DESCRIPTOR)) {
		// VMDK4_MAGIC (sparse extent), VMDK3_MAGIC, or a text descriptor.
		return 'vmdk';
	}
	if (at(0, 'vhdxfile')) {
		return 'vhdx';
	}
	if (head.length >= 68 && head.readUInt32LE(64) === 0xbeda107f) {
		// VDI_SIGNATURE, little-endian after the 64-byte text.
		return 'vdi';
	}
	if (at(0, 'QED\0')) {
		return 'qed';
	}
	return undefined;
}

/** The one-line refusal of an image holding a format header with no --src-format/--dst-format given. */
export function headerRefusal(role: 'SRC' | 'DST', path: string, format: string): string {
	const option = role === 'SRC' ? '--src-format' : '--dst-format';
	const disk = role === 'SRC' ? 'copy the disk it holds' : 'write the disk it holds';
	const asIs = role === 'SRC' ? 'copy the file as it is' : 'overwrite the file as it is';
	return `${role} ${path} holds a ${format} image: add ${option} ${format} to ${disk}, or ${option} raw to ${asIs}`;
}
