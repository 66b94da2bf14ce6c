/**
 * End-to-end demand faults (DESIGN.md target: ≥ 2 M simulated faults/s, native, order-0,
 * fault-around off) and host memory per mapped 4 KiB page (target ≤ 32 bytes).
 * Each case builds a machine, fills the page cache if needed (not timed), then times the touch
 * loop alone: hardware translate, #PF, the guest kernel's handler, retry.
 */
import { performance } from 'node:perf_hooks';
import { Machine, resolveRunCosts } from '@pte/machine';
import { getProfile, populateByWrite, VM_READ, VM_WRITE } from '@pte/vm';
import { median } from './harness.mjs';

const GiB = 1024 ** 3;

function machine(memBytes, policyOverrides = {}) {
  const profile = getProfile('linux-3.15');
  const policy = { ...profile.policy, faultAround: 1, ...policyOverrides };
  return new Machine({ platform: 'native', profile, policy, memBytes, seed: 1, costs: resolveRunCosts({}) });
}

function faultCase(name, { backing, access }) {
  const rates = [];
  const bytes = 1 * GiB;
  const pages = bytes / 4096;
  let faults = 0;
  for (let rep = 0; rep < 5; rep++) {
    const m = machine(bytes * 2 + 256 * 2 ** 20);
    const task = m.spawn();
    let file = null;
    if (backing === 'file') {
      file = m.createFile('data', bytes);
      populateByWrite(m.kernel, file, 256, 0);
    }
    const prot = VM_READ | (backing === 'anon' || access === 'write' ? VM_WRITE : 0);
    const vma = m.sys.mmap(task, { pages, prot, shared: false, file });
    const before = m.kernel.stats.faults;
    if (globalThis.gc) globalThis.gc();
    const t0 = performance.now();
    m.touch(task, vma, { kind: 'seq' }, access, 1);
    const dt = (performance.now() - t0) / 1000;
    faults = m.kernel.stats.faults - before;
    rates.push(faults / dt);
  }
  return { name, unit: 'faults/s', value: median(rates), target: 2e6, rates, faults };
}

/** Host bytes per mapped page: 1 GiB of anonymous memory mapped in a guest just big enough. */
function bytesPerPage() {
  const bytes = 1 * GiB;
  const pages = bytes / 4096;
  const m = machine(bytes + 64 * 2 ** 20);
  const task = m.spawn();
  const vma = m.sys.mmap(task, { pages, prot: VM_READ | VM_WRITE, shared: false, file: null });
  m.touch(task, vma, { kind: 'seq' }, 'write', 1);
  const host = m.mem.hostBytes() + m.kernel.frames.hostBytes();
  return { name: 'memory.bytes_per_mapped_page', unit: 'bytes', value: host / pages, target: 32, lowerIsBetter: true };
}

export function faultBenches() {
  return [
    faultCase('faults.file_read_order0_fa_off', { backing: 'file', access: 'read' }),
    faultCase('faults.anon_write_order0', { backing: 'anon', access: 'write' }),
    faultCase('faults.anon_read_zero_page', { backing: 'anon', access: 'read' }),
    bytesPerPage(),
  ];
}
