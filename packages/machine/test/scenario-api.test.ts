import { A, D, P, RW } from '@pte/arch-x86';
import { getProfile, VM_READ, VM_WRITE } from '@pte/vm';
import { Machine, resolveRunCosts, type MachineOptions, type PlatformName } from '../src/index.js';

/** The API scenarios and replay use (src/index.ts): exact effects, on every platform. */
const MiB = 2 ** 20;
const PLATFORMS: PlatformName[] = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'];

function machine(platform: PlatformName, over: Partial<MachineOptions> = {}): Machine {
  const profile = getProfile('linux-6.18');
  return new Machine({
    platform,
    profile,
    policy: profile.policy,
    memBytes: 64 * MiB,
    seed: 1,
    costs: resolveRunCosts({}),
    check: true,
    ...over,
  });
}

describe.each(PLATFORMS)('scenario API on %s', (platform) => {
  it('writeFile caches every page without a device read; readFile reads what is missing', () => {
    const m = machine(platform);
    const f = m.createFile('a', 40 * 4096);
    const g = m.createFile('b', 40 * 4096);
    expect(m.isCached(f, 0)).toBe(false);
    m.writeFile(f, 16, 0);
    for (let i = 0; i < 40; i++) expect(m.isCached(f, i)).toBe(true);
    expect(m.counter('io.requests')).toBe(0);
    m.readFile(g, 8);
    m.waitFileIo(g);
    for (let i = 0; i < 40; i++) expect(m.isCached(g, i)).toBe(true);
    expect(m.counter('io.requests')).toBeGreaterThan(0);
  });

  it('pteLow shows the PTE a write fault made; a page never faulted shows 0', () => {
    const m = machine(platform);
    const t = m.spawn();
    const vma = m.mmap(t, { pages: 8, prot: VM_READ | VM_WRITE, shared: false, file: null });
    expect(m.pteLow(t, vma.start)).toBe(0);
    m.touch(t, { start: vma.start, pages: 1 }, { kind: 'seq' }, 'write', 1);
    const lo = m.pteLow(t, vma.start);
    expect(lo & (P | RW | A | D)).toBe(P | RW | A | D);
    expect(m.isPrefaultUnused(t, vma.start)).toBe(false);
    expect(m.pteLow(t, vma.start + 7) & P).toBe(0);
  });

  it('fault-around marks the pages it mapped ahead until they are used', () => {
    const m = machine(platform);
    const t = m.spawn();
    const f = m.createFile('c', 16 * 4096);
    m.writeFile(f, 16, 0);
    const vma = m.mmap(t, { pages: 16, prot: VM_READ, shared: false, file: f });
    m.touch(t, { start: vma.start, pages: 1 }, { kind: 'seq' }, 'read', 1);
    expect(m.isPrefaultUnused(t, vma.start)).toBe(false);
    expect(m.pteLow(t, vma.start + 1) & P).toBe(P);
    expect(m.isPrefaultUnused(t, vma.start + 1)).toBe(true);
    m.touch(t, { start: vma.start + 1, pages: 1 }, { kind: 'seq' }, 'read', 1);
    expect(m.isPrefaultUnused(t, vma.start + 1)).toBe(false);
  });

  it('fork, exec, munmap, mprotect, madvise and exit go through the kernel (counters move)', () => {
    const m = machine(platform);
    const t = m.spawn();
    const vma = m.mmap(t, { pages: 4, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, vma, { kind: 'seq' }, 'write', 1);
    const c = m.fork(t);
    m.mprotect(c, vma.start, 4, VM_READ);
    m.madvise(c, vma.start, 4, 'dontneed');
    expect(m.pteLow(c, vma.start) & P).toBe(0);
    expect(m.pteLow(t, vma.start) & P).toBe(P);
    m.exec(c);
    m.exit(c);
    m.munmap(t, vma.start, 4);
    expect(m.pteLow(t, vma.start) & P).toBe(0);
    m.exit(t);
    expect(m.counter('no.such.counter')).toBe(0);
  });

  it('an empty lazy MMU section charges nothing on the default profile', () => {
    const m = machine(platform);
    const before = m.ledger.total();
    m.lazyMmuSection();
    expect(m.ledger.total()).toBe(before);
    let ran = false;
    m.lazyMmuSection(() => {
      ran = true;
    });
    expect(ran).toBe(true);
  });
});

describe('lazyMmuSection with deferred A/D on KVM shadow (the proposed hypercall)', () => {
  it('syncs the host accessed bits: one hypercall per section', () => {
    const m = machine('kvm-shadow', { deferredAD: true });
    const before = m.counter('kvm.ad_syncs');
    m.lazyMmuSection();
    m.lazyMmuSection();
    expect(m.counter('kvm.ad_syncs') - before).toBe(2);
  });
});

describe('aliased page-table frames (Vmalloc.aliasedPtFrames)', () => {
  it('counts a page-table frame handed out while a lazily freed vmap area maps it', () => {
    const m = machine('native', { vmap: { mode: 'lazy', unmapAtPurge: true, nrCpus: 4 } });
    const t = m.spawn();
    const vma = m.mmap(t, { pages: 512 * 3, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, { start: vma.start, pages: 1 }, { kind: 'seq' }, 'write', 1);
    const vm = m.vmalloc();
    vm.vfree(vm.vmalloc(1));
    expect(vm.aliasedPtFrames).toBe(0);
    m.touch(t, { start: vma.start + 512, pages: 1 }, { kind: 'seq' }, 'write', 1);
    expect(vm.aliasedPtFrames).toBe(1);
  });
});
