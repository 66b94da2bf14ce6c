/**
 * The sweep pool (runPoints): this thread runs points, and starts worker threads only once the
 * rest of the sweep looks long enough; every point runs once whichever job runs it, and a failing
 * point fails the sweep naming the point. The workers come from the build (dist/sweep/worker.js).
 */
import { existsSync } from 'node:fs';
import type { RunResult } from '@pte/machine';
import { runScenario } from '../src/run-scenario.js';
import { parseVary, sweepPoints, type SweepBase, type SweepPoint } from '../src/sweep/points.js';
import { runPoints, workerFile } from '../src/sweep/pool.js';

jest.setTimeout(60_000);

const BASE: SweepBase = {
  scenario: 'micro/mmap-touch',
  profile: 'linux-3.15',
  set: ['size=1MiB'],
  seed: 1,
  check: false,
};

function points(...vary: string[]): SweepPoint[] {
  return sweepPoints(BASE, parseVary(vary, BASE.scenario, BASE));
}

async function runAll(ps: readonly SweepPoint[], jobs: number, spawnIfLeftMs?: number) {
  const got = new Map<number, RunResult>();
  const run = runPoints(
    ps,
    jobs,
    (p, r) => {
      expect(got.has(p.index)).toBe(false);
      got.set(p.index, r);
    },
    spawnIfLeftMs === undefined ? {} : { spawnIfLeftMs },
  );
  await run.done;
  return { got, jobs: run.jobs };
}

describe('runPoints', () => {
  test('the build has a worker (pnpm build first)', () => {
    expect(workerFile()).toBeDefined();
    expect(existsSync(workerFile()!)).toBe(true);
  });

  test('a short sweep runs here alone even with --jobs 2', async () => {
    const ps = points('fault_around=1,16', 'platform=native,kvm-tdp');
    const { got, jobs } = await runAll(ps, 2);
    expect(jobs).toBe(1);
    expect([...got.keys()].sort()).toEqual([0, 1, 2, 3]);
  });

  test('with workers started at once, every point runs exactly once and gives the in-process result', async () => {
    const ps = points('fault_around=1,4,16', 'platform=native,xen-pv,kvm-shadow,kvm-tdp');
    const { got, jobs } = await runAll(ps, 3, 0);
    expect(jobs).toBe(3);
    expect(got.size).toBe(12);
    for (const p of ps) expect(JSON.stringify(got.get(p.index))).toBe(JSON.stringify(runScenario(p.options)));
  });

  test('a point failing on a worker fails the sweep with the point named', async () => {
    // 64 MiB of anonymous writes in a 16 MiB guest: out of memory at run time. This thread runs the
    // native points (the platform with the most), so the worker takes the failing xen-pv point.
    const base: SweepBase = { ...BASE, set: ['backing=anon', 'access=write', 'mem=16MiB'] };
    const all = sweepPoints(
      base,
      parseVary(['platform=native,xen-pv', 'seed=1,2', 'size=1MiB,64MiB'], base.scenario, base),
    );
    const text = (p: SweepPoint) => p.vary.map(([, v]) => v).join(' ');
    const ps = all.filter((p) => ['native 1 1MiB', 'native 2 1MiB', 'xen-pv 1 64MiB'].includes(text(p)));
    expect(ps.map(text)).toEqual(['native 1 1MiB', 'native 2 1MiB', 'xen-pv 1 64MiB']);
    const ran: string[] = [];
    const run = runPoints(ps, 2, (p) => ran.push(p.options.platform!), { spawnIfLeftMs: 0 });
    await expect(run.done).rejects.toThrow(/^sweep point platform=xen-pv seed=1 size=64MiB: guest out of memory/);
    expect(run.jobs).toBe(2);
    expect(ran.every((x) => x === 'native')).toBe(true);
  });
});
