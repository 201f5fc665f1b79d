// Runs one uvu test file (loaded through tsx) and prints uvu's own summary; tests that skip print SKIP lines
// (test/helpers/skip.ts) that scripts/test.mjs counts.
import {relative} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

globalThis.UVU_DEFER = 1;
// How test/helpers/skip.ts names the file in its SKIP lines.
globalThis.RBLOCKSYNC_TEST_FILE = relative(fileURLToPath(new URL('..', import.meta.url)), process.argv[2]);
const uvu = await import('uvu');
globalThis.UVU_INDEX = 0;
globalThis.UVU_QUEUE.push([process.argv[2]]);
await import(pathToFileURL(process.argv[2]).href);
await uvu.exec(false);
