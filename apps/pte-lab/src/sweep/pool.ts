import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PteError, type PteErrorCode } from '@pte/core';
import type { RunResult } from '@pte/machine';
import { runScenario, type RunOptions } from '../run-scenario.js';
import type { SweepPoint } from './points.js';

/** A point for a worker to run. */
export interface ToWorker {
  readonly id: number;
  readonly options: RunOptions;
}

/** A worker's answer: the point's RunResult, or the error it raised. */
export type FromWorker =
  | { readonly id: number; readonly ok: true; readonly result: RunResult }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code?: PteErrorCode; readonly message: string; readonly hint?: string | undefined } };

/**
 * The worker entry, resolved relative to this module: `worker.js` beside it in the build; when this
 * module runs from the sources (tests compile src/ on the fly), the built one in dist/sweep/.
 * Undefined when there is no build.
 */
export function workerFile(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const f of [join(here, 'worker.js'), join(here, '..', '..', 'dist', 'sweep', 'worker.js')]) if (existsSync(f)) return f;
  return undefined;
}

/** Runs sweep points, in-process (one job) or on worker threads; cancel() stops it between points. */
export interface PointRun {
  /** Resolves when every point has run; rejects on the first point that fails. */
  readonly done: Promise<void>;
  /** How many jobs actually run points (1 when in-process). */
  readonly jobs: number;
  cancel(): void;
}

function pointError(p: SweepPoint, e: { code?: PteErrorCode; message: string; hint?: string | undefined }): Error {
  const where = `sweep point ${p.vary.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return e.code !== undefined ? new PteError(e.code, `${where}: ${e.message}`, e.hint) : new Error(`${where}: ${e.message}`);
}

/**
 * Run `points` on up to `jobs` worker threads (in-process when one job would do, or when there is no
 * built worker), calling `onResult` as each finishes, in completion order.
 */
export function runPoints(points: readonly SweepPoint[], jobs: number, onResult: (p: SweepPoint, r: RunResult) => void): PointRun {
  const n = Math.min(jobs, points.length);
  const file = n >= 2 ? workerFile() : undefined;
  return file === undefined ? runInProcess(points, onResult) : runOnWorkers(file, n, points, onResult);
}

/** Run one point in this thread; an error names the point. */
function runHere(p: SweepPoint): RunResult {
  try {
    return runScenario(p.options);
  } catch (e) {
    throw e instanceof PteError ? pointError(p, e) : pointError(p, { message: e instanceof Error ? e.message : String(e) });
  }
}

function runInProcess(points: readonly SweepPoint[], onResult: (p: SweepPoint, r: RunResult) => void): PointRun {
  let cancelled = false;
  const done = (async () => {
    for (const p of points) {
      // Yield between points so a SIGINT handler can run.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (cancelled) return;
      onResult(p, runHere(p));
    }
  })();
  return { done, jobs: 1, cancel: () => void (cancelled = true) };
}

/** Up to `n` workers, each given the next point as it finishes one (messages queue while it loads). */
function runOnWorkers(file: string, n: number, points: readonly SweepPoint[], onResult: (p: SweepPoint, r: RunResult) => void): PointRun {
  const workers: Worker[] = [];
  let finished = false;
  const stopAll = () => {
    finished = true;
    for (const w of workers) void w.terminate();
  };
  const done = new Promise<void>((resolve, reject) => {
    let next = 0;
    let completed = 0;
    const fail = (e: Error) => {
      if (finished) return;
      stopAll();
      reject(e);
    };
    const dispatch = (w: Worker) => {
      if (finished || next >= points.length) return;
      const id = next++;
      const msg: ToWorker = { id, options: points[id]!.options };
      w.postMessage(msg);
    };
    for (let i = 0; i < n; i++) {
      const w = new Worker(file);
      workers.push(w);
      w.on('message', (m: FromWorker) => {
        if (finished) return;
        const p = points[m.id]!;
        if (!m.ok) return fail(pointError(p, m.error));
        onResult(p, m.result);
        if (++completed === points.length) {
          stopAll();
          resolve();
        } else dispatch(w);
      });
      w.on('error', (e) => fail(new Error(`sweep worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        if (!finished) fail(new Error(`sweep worker exited early (code ${code})`));
      });
      dispatch(w);
    }
  });
  return { done, jobs: n, cancel: stopAll };
}
