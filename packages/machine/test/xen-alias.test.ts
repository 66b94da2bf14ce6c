import { Machine, resolveRunCosts, type MachineOptions } from '../src/index.js';
import { hypervisorOf } from '../src/platforms/xen-pv.js';
import { getProfile, VM_READ, VM_WRITE } from '@pte/vm';

const MiB = 2 ** 20;

function xenMachine(over: Partial<MachineOptions>): Machine {
  const profile = getProfile('linux-6.18');
  return new Machine({
    platform: 'xen-pv',
    profile,
    policy: profile.policy,
    memBytes: 64 * MiB,
    seed: 1,
    costs: resolveRunCosts({}),
    vmap: { mode: 'lazy', unmapAtPurge: true, nrCpus: 4 },
    ...over,
  });
}

/**
 * Seed 003: a page vfree()d lazily keeps a writable vmap alias until the purge; if the allocator
 * hands that page out as a page table, Xen refuses to pin it unless vm_unmap_aliases() ran first.
 */
function aliasThenPin(m: Machine): void {
  const task = m.spawn();
  const vma = m.sys.mmap(task, { pages: 512 * 3, prot: VM_READ | VM_WRITE, shared: false, file: null });
  m.touch(task, { start: vma.start, pages: 1 }, { kind: 'seq' }, 'write', 1); // tables for the first 2 MiB
  const vm = m.vmalloc();
  const area = vm.vmalloc(1);
  vm.vfree(area); // lazy: the PTE stays, the frame goes back to the allocator
  // The next 2 MiB needs a new PTE page: the buddy allocator hands out the frame just freed.
  m.touch(task, { start: vma.start + 512, pages: 1 }, { kind: 'seq' }, 'write', 1);
}

describe('stale vmap aliases and Xen pinning (seed 003)', () => {
  it('without a guard, pinning the re-used page is refused and counted, and the guest cannot go on', () => {
    const m = xenMachine({ xenAlias: 'none' });
    expect(() => aliasThenPin(m)).toThrow(/cannot be mapped: Xen refused the guest's page-table update/);
    // The pin of the new PTE page, then the PMD entry that would point at it.
    expect(hypervisorOf(m).refused).toBe(2);
    expect(m.vmalloc().unmapAliasCalls).toBe(0);
  });

  it('with --check the refusal is a model error naming the writable mapping', () => {
    const m = xenMachine({ xenAlias: 'none', check: true });
    expect(() => aliasThenPin(m)).toThrow(/Xen refused: frame 0x[0-9a-f]+ still has 1 writable mapping/);
  });

  it.each([
    ['always', 3], // vm_unmap_aliases before every pin (spawn, two PTE pages...)
    ['check', 1], // only when the page to pin has an alias
  ] as const)('with xen_alias=%s the alias is purged first and the pin succeeds', (policy, calls) => {
    const m = xenMachine({ xenAlias: policy, check: true });
    aliasThenPin(m);
    expect(hypervisorOf(m).refused).toBe(0);
    expect(m.vmalloc().purges).toBe(1);
    expect(m.vmalloc().unmapAliasCalls).toBeGreaterThanOrEqual(calls === 1 ? 1 : 2);
    if (policy === 'check') expect(m.vmalloc().unmapAliasCalls).toBe(1);
  });

  it('an alias-free page-table cache filled N at a time avoids the refusal with one purge per refill', () => {
    const profile = getProfile('linux-6.18');
    const m = xenMachine({ xenAlias: 'none', check: true, policy: { ...profile.policy, ptCache: 8 } });
    aliasThenPin(m);
    expect(hypervisorOf(m).refused).toBe(0);
    // Refilled at the first table (spawn, before any vmap layer existed, so no purge) and when the
    // vmap tables emptied it; that refill's vm_unmap_aliases() purged the alias of the page it
    // took back from the allocator.
    expect(m.measuredCounters()['pt.cache_refills']).toBe(2);
    expect(m.vmalloc().unmapAliasCalls).toBe(1);
    expect(m.vmalloc().purges).toBe(1);
  });

  it('with PTEs cleared at vunmap (later kernels) there is no alias to refuse', () => {
    const m = xenMachine({ xenAlias: 'none', check: true, vmap: { mode: 'lazy', unmapAtPurge: false, nrCpus: 4 } });
    aliasThenPin(m);
    expect(hypervisorOf(m).refused).toBe(0);
  });
});

describe('vmap flushing', () => {
  const churn = (mode: 'eager' | 'lazy', areas: number) => {
    const m = xenMachine({ platform: 'native', vmap: { mode, unmapAtPurge: false, nrCpus: 8, lazyMaxPages: 32 } });
    m.startMeasurement();
    const vm = m.vmalloc();
    for (let i = 0; i < areas; i++) vm.vfree(vm.vmalloc(4));
    return { vm, c: m.measuredCounters() };
  };

  it('eager mode flushes once per vunmap, with an IPI to every other CPU', () => {
    const { vm } = churn('eager', 20);
    expect(vm.flushes).toBe(20);
    expect(vm.ipis).toBe(20 * 7);
  });

  it('lazy mode flushes once per purge: every 32 pages past the threshold', () => {
    const { vm, c } = churn('lazy', 20);
    // 4 pages per area: the lazy count passes 32 at the 9th area, then again 9 areas later.
    expect(vm.purges).toBe(2);
    expect(vm.flushes).toBe(2);
    expect(c['vmap.flushes']).toBe(2);
    expect(vm.pendingPages).toBe(8);
  });
});

describe('exit of the loaded address space (leave_mm)', () => {
  it.each(['xen-pv', 'native'] as const)(
    '%s: the CPU moves to init_mm before the pgd is unpinned and freed; a later kernel flush works',
    (platform) => {
      const m = xenMachine({ platform, vmap: { mode: 'eager', unmapAtPurge: false, nrCpus: 4 } });
      const vm = m.vmalloc();
      const task = m.spawn();
      const vma = m.sys.mmap(task, { pages: 16, prot: VM_READ | VM_WRITE, shared: false, file: null });
      m.touch(task, vma, { kind: 'seq' }, 'write', 1); // task's tables are loaded
      m.sys.exit(task);
      expect(m.kernel.cpu.mm).toBe(m.kernel.kernelMmIfAny);
      expect(m.mmu.root).toBe(m.pv.mfn(m.kernel.kernelMmIfAny!.root)); // CR3 holds the machine frame under Xen
      vm.vfree(vm.vmalloc(2)); // eager: a kernel-range flush right away, with no process loaded
      m.verify('after exit and vfree');
    },
  );
});
