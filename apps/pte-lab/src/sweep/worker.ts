/**
 * A sweep worker (worker_threads): runs one point at a time with runScenario and posts back its
 * RunResult, or the error it raised. The pool (pool.ts) starts it from the build (dist/sweep/worker.js).
 */
import { parentPort } from 'node:worker_threads';
import { isPteError } from '@pte/core';
import { runScenario, type RunOptions } from '../run-scenario.js';
import type { FromWorker, ToWorker } from './pool.js';

const port = parentPort;
if (port === null) throw new Error('sweep worker: not started as a worker thread');

port.on('message', (m: ToWorker) => {
  let reply: FromWorker;
  try {
    reply = { id: m.id, ok: true, result: runScenario(m.options as RunOptions) };
  } catch (e) {
    reply = isPteError(e)
      ? { id: m.id, ok: false, error: { code: e.code, message: e.message, hint: e.hint } }
      : { id: m.id, ok: false, error: { message: e instanceof Error ? e.message : String(e) } };
  }
  port.postMessage(reply);
});
