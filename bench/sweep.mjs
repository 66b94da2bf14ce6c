/**
 * Sweep parallelism (DESIGN.md target: sweeps on worker threads with ≥ 1.7× speed-up on 2 cores).
 * Times one 20-point `pte-lab sweep` (5 fault-around windows × 4 platforms) with --jobs 1 and
 * --jobs 2, as the built CLI in a child process (wall clock, worker start-up included), and reports
 * the ratio of the median times. The two outputs must be the same bytes.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { median } from './harness.mjs';

const CLI = fileURLToPath(new URL('../apps/pte-lab/dist/cli.js', import.meta.url));

function cli(args) {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** thread/minor-fault-around once the catalogue has it, else the generic micro-workload. */
function scenario() {
  return /^thread\/minor-fault-around\s/m.test(cli(['list'])) ? 'thread/minor-fault-around' : 'micro/mmap-touch';
}

export function sweepBenches({ reps = 5 } = {}) {
  const name = scenario();
  // 256 MiB per point, so each point's work (~0.1 s) outweighs a worker's start-up.
  const args = ['sweep', name, '--vary', 'fault_around=1,4,16,64,512', '--vary', 'platform=native,xen-pv,kvm-shadow,kvm-tdp', '--set', 'size=256MiB', '--format', 'json'];
  const time = (jobs) => {
    const t0 = performance.now();
    const out = cli([...args, '--jobs', String(jobs)]);
    return { s: (performance.now() - t0) / 1000, out };
  };
  const ref = time(1).out; // warm-up (file cache, ...)
  const t1 = [];
  const t2 = [];
  for (let i = 0; i < reps; i++) {
    const a = time(1);
    const b = time(2);
    if (a.out !== ref || b.out !== ref) throw new Error('sweep bench: --jobs 1 and --jobs 2 printed different output');
    t1.push(a.s);
    t2.push(b.s);
  }
  const m1 = median(t1);
  const m2 = median(t2);
  return [
    {
      name: 'sweep.speedup_jobs2_vs_jobs1',
      unit: 'x',
      value: m1 / m2,
      target: 1.7,
      command: `pte-lab ${args.join(' ')} --jobs 1|2`,
      points: 20,
      // Best-of ratio: less sensitive to other load on the machine than the medians.
      best_ratio: Math.min(...t1) / Math.min(...t2),
      seconds_jobs1: m1,
      seconds_jobs2: m2,
      times_jobs1: t1,
      times_jobs2: t2,
    },
  ];
}
