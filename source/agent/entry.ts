// Entry of the single-file agent bundle uploaded to hosts without rblocksync installed.
import {runAgent} from './agent.js';

process.exitCode = await runAgent();
