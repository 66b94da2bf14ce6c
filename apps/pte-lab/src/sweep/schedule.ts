import type { SweepPoint } from './points.js';

/** A point's platform: the affinity key of the scheduler (the run default when not set). */
function platformOf(p: SweepPoint): string {
  return p.options.platform ?? '';
}

/**
 * Picks the next point for a worker that last ran a point on `last` (undefined: its first point),
 * while other workers are on `busy` platforms. A worker stays on one platform as long as it can:
 * V8 specialises each worker's optimised code to the classes it has seen (the kernel's pv_mmu_ops
 * backend, the hypervisor), and every new platform in an isolate deoptimises and recompiles the
 * hot fault path (measured: 518 TurboFan compilations, 1.3 s of compile CPU, for one 20-point
 * sweep in one isolate). Otherwise it takes the platform with the most points left that no other
 * worker is on, then any. Within a platform, product order. Pure: the caller removes the point.
 * Returns the index in `left`, or -1 when `left` is empty.
 */
export function pickPoint(left: readonly SweepPoint[], last: string | undefined, busy: readonly string[]): number {
  if (left.length === 0) return -1;
  if (last !== undefined) {
    const same = left.findIndex((p) => platformOf(p) === last);
    if (same >= 0) return same;
  }
  const count = new Map<string, number>();
  for (const p of left) count.set(platformOf(p), (count.get(platformOf(p)) ?? 0) + 1);
  let best: string | undefined;
  for (const [platform, n] of count) {
    if (busy.includes(platform)) continue;
    if (best === undefined || n > count.get(best)!) best = platform;
  }
  return best === undefined ? 0 : left.findIndex((p) => platformOf(p) === best);
}
