/**
 * Several CPUs (the SMP issue's target: 8 CPUs × 8 threads faulting 1 GiB in under 10 s): one
 * process, 8 threads on 8 CPUs, each writing its own 128 MiB slice of one anonymous VMA
 * (smp/page-fault-test's shape), faults under per-VMA locks, run by the virtual-time scheduler.
 * Times runThreads alone; the machine is built first.
 */
import { performance } from 'node:perf_hooks';
import { Machine, resolveRunCosts } from '@pte/machine';
import { getProfile, VM_READ, VM_WRITE } from '@pte/vm';
import { median } from './harness.mjs';

const GiB = 1024 ** 3;

function pft(threads, bytes, faultLock) {
  const profile = getProfile('linux-6.18');
  const m = new Machine({
    platform: 'native',
    profile,
    policy: profile.policy,
    memBytes: bytes + 256 * 2 ** 20,
    seed: 1,
    costs: resolveRunCosts({}),
    cpus: threads,
  });
  const pages = bytes / 4096 / threads;
  const a = m.spawn();
  const vma = m.sys.mmap(a, { pages: pages * threads, prot: VM_READ | VM_WRITE, shared: false, file: null });
  const tasks = [a];
  for (let i = 1; i < threads; i++) tasks.push(m.spawnThread(a));
  const specs = tasks.map((task, i) => ({
    task,
    cpu: i,
    range: { start: vma.start + i * pages, pages },
    pattern: { kind: 'seq' },
    kind: 'write',
  }));
  if (globalThis.gc) globalThis.gc();
  const t0 = performance.now();
  m.runThreads(specs, faultLock);
  return (performance.now() - t0) / 1000;
}

export function smpBenches() {
  const secs = [];
  for (let rep = 0; rep < 5; rep++) secs.push(pft(8, 1 * GiB, 'per_vma'));
  return [
    {
      name: 'smp.pft_8cpus_8threads_1GiB',
      unit: 's',
      value: median(secs),
      target: 10,
      lowerIsBetter: true,
      runs: secs,
    },
  ];
}
