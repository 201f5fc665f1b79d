// An agent opener over memory images (no files): the digest protocol's roles in-process, for the backend contract suite.
import {UsageError as SourceUsageError} from '../../source/errors.js';
import {MemoryImage} from '../../source/image/memory-image.js';
import type {RoleOpener} from '../../source/delta/open-role.js';
import {ImageKindCode, openFlags, Role} from '../../source/protocol/messages.js';

/**
 * Opens SRC and DST by name in `images`; DST is created or resized as --truncate says, like preflight does for files.
 * `UsageError`: the class refusals are thrown as (the caller's copy of errors.js: source/ or dist/).
 */
export function memoryOpener(images: Map<string, MemoryImage>, UsageError: new (message: string) => Error = SourceUsageError): RoleOpener {
	return open => {
		const flags = openFlags(open.flags);
		if (open.role === Role.source) {
			const image = images.get(open.path);
			if (!image) {
				throw new UsageError(`SRC ${open.path}: no such file or directory`);
			}
			return {image, writable: undefined, reply: {type: 'opened', size: image.size, kind: ImageKindCode.memory, dstExtraBytes: 0, identity: ''}};
		}
		let image = images.get(open.path);
		if (!image || image.size !== open.srcSize) {
			if (!flags.truncate) {
				throw new UsageError(image ? `DST ${open.path} is ${image.size} bytes, SRC is ${open.srcSize}; use --truncate to resize it` : `DST ${open.path} does not exist; use --truncate to create it`);
			}
			if (!flags.dryRun) {
				if (image) {
					image.truncate(open.srcSize);
				} else {
					image = new MemoryImage(open.path, open.srcSize);
					images.set(open.path, image);
				}
			}
		}
		const shown = image ?? new MemoryImage(open.path, 0);
		const writable = flags.dryRun || flags.prepare ? undefined : image;
		return {image: shown, writable, reply: {type: 'opened', size: open.srcSize, kind: ImageKindCode.memory, dstExtraBytes: 0, identity: ''}};
	};
}
