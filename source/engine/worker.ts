// Worker-thread entry: runs one range job given in workerData.
import {parentPort, workerData} from 'node:worker_threads';
import {runRange} from './run-range.js';
import type {WorkerInput, WorkerMessage} from './worker-protocol.js';

const port = parentPort!;
const post = (message: WorkerMessage): void => port.postMessage(message);
runRange(workerData as WorkerInput, post);
