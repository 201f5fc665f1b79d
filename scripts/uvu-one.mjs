// Runs one uvu test file (loaded through tsx) and prints uvu's own summary.
import {pathToFileURL} from 'node:url';

globalThis.UVU_DEFER = 1;
const uvu = await import('uvu');
globalThis.UVU_INDEX = 0;
globalThis.UVU_QUEUE.push([process.argv[2]]);
await import(pathToFileURL(process.argv[2]).href);
await uvu.exec(false);
