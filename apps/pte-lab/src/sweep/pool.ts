import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { PteError, type PteErrorCode } from '@pte/core';
import { type RunResult } from '@pte/machine';
import { runScenario, type RunOptions } from '../run-scenario.js';
import type { SweepPoint } from './points.js';
import { pickPoint } from './schedule.js';

/** A point for a worker to run. */
export interface ToWorker {
  readonly id: number;
  readonly options: RunOptions;
}

/** A worker's answer: the point's RunResult, or the error it raised. */
export type FromWorker =
  | { readonly id: number; readonly ok: true; readonly result: RunResult }
  | {
      readonly id: number;
      readonly ok: false;
      readonly error: { readonly code?: PteErrorCode; readonly message: string; readonly hint?: string | undefined };
    };

/**
 * The worker entry, resolved relative to this module: `worker.js` beside it in the build; when this
 * module runs from the sources (tests compile src/ on the fly), the built one in dist/sweep/.
 * Undefined when there is no build.
 */
export function workerFile(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const f of [join(here, 'worker.js'), join(here, '..', '..', 'dist', 'sweep', 'worker.js')])
    if (existsSync(f)) return f;
  return undefined;
}

/** Runs sweep points, in-process (one job) or also on worker threads; cancel() stops it between points. */
export interface PointRun {
  /** Resolves when every point has run; rejects on the first point that fails. */
  readonly done: Promise<void>;
  /** How many jobs ran points: this thread plus the workers it started (1 when in-process). */
  readonly jobs: number;
  cancel(): void;
}

/** When runPoints starts its workers. */
export interface PoolOptions {
  /**
   * The workers start once the points left would take this thread at least this many milliseconds
   * (estimated from its time per point so far, after WARM_MS of running or this many ms, whichever is less). A worker's
   * first result comes ~0.1 s after it starts (module loading) and it runs at full speed only after
   * its own JIT warm-up (~0.3 s of compile CPU for this model), while this thread is already warm,
   * so a short remainder runs fastest here alone. Default 1000; 0 starts them after the first point.
   */
  readonly spawnIfLeftMs?: number;
}

/**
 * This thread's own JIT warm-up: its first points run several times slower than the rest (16 MiB
 * points: 14–72 ms cold, 7–10 ms warm), so the estimate waits for this much running.
 */
const WARM_MS = 250;

/** Points a worker holds (one running, one queued), so it never waits for this thread to yield. */
const PREFETCH = 2;

function pointError(p: SweepPoint, e: { code?: PteErrorCode; message: string; hint?: string | undefined }): Error {
  const where = `sweep point ${p.vary.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return e.code !== undefined
    ? new PteError(e.code, `${where}: ${e.message}`, e.hint)
    : new Error(`${where}: ${e.message}`);
}

/**
 * Run `points` on up to `jobs` jobs, calling `onResult` as each finishes, in completion order. This
 * thread runs points itself; with two or more jobs (and a built worker) it starts `jobs - 1`
 * worker threads once the rest of the sweep looks long enough (PoolOptions.spawnIfLeftMs). Every job takes its next point with
 * pickPoint (the same platform as its last, while there is one).
 */
export function runPoints(
  points: readonly SweepPoint[],
  jobs: number,
  onResult: (p: SweepPoint, r: RunResult) => void,
  options: PoolOptions = {},
): PointRun {
  const n = Math.min(jobs, points.length);
  const file = n >= 2 ? workerFile() : undefined;
  const spawnIfLeftMs = options.spawnIfLeftMs ?? 1000;
  const left = points.map((p, id) => ({ p, id }));
  const on: (string | undefined)[] = [undefined]; // the platform each job is on; 0 is this thread
  const workers: Worker[] = [];
  const held: number[] = [0];
  let finished = false;
  let completed = 0;
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nothing to run (every point resumed from the journal): done at once; no point would ever
  // complete to settle it.
  if (points.length === 0) {
    finished = true;
    resolve();
  }
  const stopAll = () => {
    finished = true;
    for (const w of workers) void w.terminate();
  };
  const fail = (e: Error) => {
    if (finished) return;
    stopAll();
    reject(e);
  };
  const complete = (p: SweepPoint, r: RunResult) => {
    onResult(p, r);
    if (++completed === points.length) {
      stopAll();
      resolve();
    }
  };
  /** Job `j` takes its next point off the list, or undefined when none is left. */
  const take = (j: number) => {
    const busy = on.filter((x, i): x is string => i !== j && x !== undefined);
    const k = pickPoint(
      left.map((x) => x.p),
      on[j],
      busy,
    );
    if (k < 0) return undefined;
    const t = left.splice(k, 1)[0]!;
    on[j] = t.p.options.platform ?? '';
    return t;
  };
  const feed = (j: number, w: Worker) => {
    while (!finished && held[j]! < PREFETCH) {
      const t = take(j);
      if (t === undefined) return;
      held[j]!++;
      const msg: ToWorker = { id: t.id, options: t.p.options };
      w.postMessage(msg);
    }
  };
  const spawn = (f: string) => {
    for (let j = 1; j < n; j++) {
      const w = new Worker(f);
      workers.push(w);
      on.push(undefined);
      held.push(0);
      w.on('message', (m: FromWorker) => {
        if (finished) return;
        held[j]!--;
        const p = points[m.id]!;
        if (!m.ok) return fail(pointError(p, m.error));
        complete(p, m.result);
        feed(j, w);
      });
      w.on('error', (e) => fail(new Error(`sweep worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        if (!finished) fail(new Error(`sweep worker exited early (code ${code})`));
      });
      feed(j, w);
    }
  };
  void (async () => {
    const t0 = performance.now();
    for (;;) {
      // Yield between points: a SIGINT handler, and the workers' messages, run here.
      await new Promise<void>((r) => setImmediate(r));
      if (finished) return;
      const ran = completed; // only this thread has run points before the workers start
      const spent = performance.now() - t0;
      if (
        file !== undefined &&
        workers.length === 0 &&
        ran > 0 &&
        left.length >= 2 &&
        spent >= Math.min(WARM_MS, spawnIfLeftMs) &&
        (spent / ran) * left.length >= spawnIfLeftMs
      )
        spawn(file);
      const t = take(0);
      if (t === undefined) return void (on[0] = undefined);
      let r: RunResult;
      try {
        r = runHere(t.p);
      } catch (e) {
        return fail(e instanceof Error ? e : new Error(String(e)));
      }
      if (finished) return;
      complete(t.p, r);
    }
  })();
  return {
    done,
    get jobs() {
      return 1 + workers.length;
    },
    cancel: stopAll,
  };
}

/** Run one point in this thread; an error names the point. */
function runHere(p: SweepPoint): RunResult {
  try {
    return runScenario(p.options);
  } catch (e) {
    throw e instanceof PteError
      ? pointError(p, e)
      : pointError(p, { message: e instanceof Error ? e.message : String(e) });
  }
}
