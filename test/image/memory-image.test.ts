import {MemoryImage} from '../../source/image/memory-image.js';
import {imageConformance} from './image-conformance.js';

imageConformance('memory', {
	sparse: true,
	create(size) {
		const image = new MemoryImage('mem', size);
		return {image, allocated: () => image.allocatedBytes, cleanup() {}};
	},
});
