// Entry of the single-file agent bundle: uploaded to hosts without rblocksync, and loaded in worker threads locally.
import {isMainThread} from 'node:worker_threads';
import {runAgent} from './agent.js';
import {runThreadAgent} from './thread-agent.js';

if (isMainThread) {
	process.exitCode = await runAgent();
} else {
	runThreadAgent();
}
