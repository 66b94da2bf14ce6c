/**
 * A small benchmark harness: each case runs `reps` times after a warm-up, and the median rate is
 * reported against its target from DESIGN.md. Timing lives here, never in unit tests.
 */
import { performance } from 'node:perf_hooks';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Time `run()` (which returns the number of simulated operations it did) `reps` times.
 * Returns { rate (ops/s, median), rates, ops }.
 */
export function measure(run, { reps = 5, warmup = 1 } = {}) {
  for (let i = 0; i < warmup; i++) run();
  const rates = [];
  let ops = 0;
  for (let i = 0; i < reps; i++) {
    if (globalThis.gc) globalThis.gc();
    const t0 = performance.now();
    ops = run();
    const dt = (performance.now() - t0) / 1000;
    rates.push(ops / dt);
  }
  return { rate: median(rates), rates, ops };
}

export function fmtRate(r) {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)} M/s`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)} k/s`;
  return `${r.toFixed(1)} /s`;
}
