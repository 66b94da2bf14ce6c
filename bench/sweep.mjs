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
  return execFileSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 2 ** 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** thread/minor-fault-around once the catalogue has it, else the generic micro-workload. */
function scenario() {
  return /^thread\/minor-fault-around\s/m.test(cli(['list'])) ? 'thread/minor-fault-around' : 'micro/mmap-touch';
}

/** Median seconds of `reps` alternating --jobs 1 / --jobs 2 runs of `args`, checking both print the same bytes. */
function timeJobs(args, reps) {
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
  return { m1: median(t1), m2: median(t2), t1, t2 };
}

export function sweepBenches({ reps = 5 } = {}) {
  const name = scenario();
  const base = [
    'sweep',
    name,
    '--vary',
    'fault_around=1,4,16,64,512',
    '--vary',
    'platform=native,xen-pv,kvm-shadow,kvm-tdp',
    '--format',
    'json',
  ];
  // 256 MiB per point, so each point's work (~0.1 s) outweighs a worker's start-up.
  const args = [...base, '--set', 'size=256MiB'];
  const big = timeJobs(args, reps);
  // The command as given (the scenario's default size): start-up and JIT warm-up per worker dominate.
  const small = timeJobs(base, reps);
  return [
    {
      name: 'sweep.speedup_jobs2_vs_jobs1',
      unit: 'x',
      value: big.m1 / big.m2,
      target: 1.7,
      command: `pte-lab ${args.join(' ')} --jobs 1|2`,
      points: 20,
      // Best-of ratio: less sensitive to other load on the machine than the medians.
      best_ratio: Math.min(...big.t1) / Math.min(...big.t2),
      seconds_jobs1: big.m1,
      seconds_jobs2: big.m2,
      times_jobs1: big.t1,
      times_jobs2: big.t2,
      default_size: {
        command: `pte-lab ${base.join(' ')} --jobs 1|2`,
        ratio: small.m1 / small.m2,
        seconds_jobs1: small.m1,
        seconds_jobs2: small.m2,
      },
    },
  ];
}
