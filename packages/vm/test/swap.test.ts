import { PteError } from '@pte/core';
import { checkInvariants, isSwapPte, MM_ANONPAGES, swpSlot } from '../src/index.js';
import { FIXED_BASE, makeHarness, mapAnon, policyOf, pteOf, ptePresent, touch, touchRange } from './helpers.js';

/** A guest of `frames` frames with reclaim on and a swap device of `slots` slots; `pages` anonymous pages written at FIXED_BASE. */
function setup(frames: number, slots: number, pages: number) {
  const h = makeHarness(policyOf('linux-6.18', { anonPrefault: { kind: 'off' } }), frames, true, slots);
  const task = h.sys.spawn();
  const vma = mapAnon(h, task, pages, FIXED_BASE);
  touchRange(h, task, vma, 0, pages, true);
  return { h, task, vma, r: h.k.reclaim!, swap: h.k.swap! };
}

function swapEntryOf(h: ReturnType<typeof setup>['h'], task: ReturnType<typeof setup>['task'], vpn: number): number {
  const e = pteOf(h, task, vpn);
  if (e === null || !isSwapPte(e[0])) return -1;
  return swpSlot(e[0], e[1]);
}

describe('anonymous reclaim to a swap device', () => {
  it('young pages survive the first scan; the oldest unreferenced ones are swapped out, one slot per PTE', () => {
    const { h, task, vma, r, swap } = setup(4096, 1024, 64);
    expect(r.shrink(32)).toBe(32);
    // The 64 fresh pages were all young: each kept once (A cleared, PG_referenced set), then the
    // oldest 32 (pages 0..31, first on the list) went to swap.
    expect(r.kept).toBe(64);
    expect(swap.writes).toBe(32);
    expect(swap.used).toBe(32);
    for (let i = 0; i < 32; i++) {
      expect(ptePresent(h, task, vma.start + i)).toBe(false);
      expect(swapEntryOf(h, task, vma.start + i)).toBeGreaterThanOrEqual(0);
    }
    for (let i = 32; i < 64; i++) expect(ptePresent(h, task, vma.start + i)).toBe(true);
    expect(task.mm.swapEnts).toBe(32);
    expect(task.mm.rss[MM_ANONPAGES]).toBe(32);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('a read of a swapped-out page is a major swap fault mapping it read-only; a write then reuses it', () => {
    const { h, task, vma, r, swap } = setup(4096, 1024, 64);
    r.shrink(32);
    const major = h.k.stats.faultsMajor;
    touch(h, task, vma.start, false);
    expect(h.k.stats.faultsSwap).toBe(1);
    expect(h.k.stats.faultsMajor).toBe(major + 1);
    expect(swap.reads).toBe(1);
    expect(swap.used).toBe(31);
    expect(task.mm.swapEnts).toBe(31);
    const [lo] = pteOf(h, task, vma.start)!;
    expect(lo & 2).toBe(0); // RW clear: exclusive, but read-only until written
    const reuse = h.k.stats.faultsWpReuse;
    touch(h, task, vma.start, true);
    expect(h.k.stats.faultsWpReuse).toBe(reuse + 1);
    expect(h.k.stats.faultsSwap).toBe(1);
    // The swap-in came back within the horizon: a refault, and a premature eviction.
    expect(r.refaults).toBe(1);
    expect(r.premature).toBe(1);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('a write to a swapped-out page maps it writable at once', () => {
    const { h, task, vma, r } = setup(4096, 1024, 64);
    r.shrink(32);
    touch(h, task, vma.start + 5, true);
    expect(h.k.stats.faultsSwap).toBe(1);
    expect(pteOf(h, task, vma.start + 5)![0] & 2).toBe(2);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('fork shares a swap entry (two slot uses); each exit or munmap drops one', () => {
    const { h, task, vma, r, swap } = setup(4096, 1024, 64);
    r.shrink(32);
    const child = h.sys.fork(task);
    const slot = swapEntryOf(h, task, vma.start);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(swapEntryOf(h, child, vma.start)).toBe(slot);
    expect(swap.uses(slot)).toBe(2);
    expect(child.mm.swapEnts).toBe(32);
    expect(checkInvariants(h.k)).toEqual([]);
    h.sys.exit(child);
    expect(swap.uses(slot)).toBe(1);
    h.sys.munmap(task, vma.start, 64);
    expect(swap.used).toBe(0);
    expect(task.mm.swapEnts).toBe(0);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('a page mapped by parent and child is swapped out of both with one slot of two uses', () => {
    const { h, task, vma, r, swap } = setup(4096, 1024, 64);
    const child = h.sys.fork(task);
    // Scan until the shared pages go: the parent's young PTEs keep them once.
    while (swap.writes === 0) r.shrink(64);
    const slot = swapEntryOf(h, task, vma.start);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(swapEntryOf(h, child, vma.start)).toBe(slot);
    expect(swap.uses(slot)).toBe(2);
    // No swap cache in the model: each address space reads its own copy back.
    touch(h, child, vma.start, false);
    touch(h, task, vma.start, false);
    expect(swap.reads).toBe(2);
    expect(swap.used).toBe(swap.writes - 1);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('with swap full, unreferenced anonymous folios are activated instead', () => {
    const { h, r, swap } = setup(4096, 8, 64);
    r.shrink(32);
    expect(swap.writes).toBe(8);
    expect(swap.used).toBe(8);
    expect(r.swapFull).toBeGreaterThan(0);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('writing more anonymous memory than the guest has succeeds with swap and keeps the invariants', () => {
    const { h, task, vma, swap } = setup(1024, 4096, 2048);
    expect(h.k.frames.allocated).toBeLessThanOrEqual(1024);
    expect(task.mm.rss[MM_ANONPAGES] + task.mm.swapEnts).toBe(2048);
    expect(swap.used).toBe(task.mm.swapEnts);
    expect(checkInvariants(h.k)).toEqual([]);
    // Reading everything back swaps pages in (and others out).
    touchRange(h, task, vma, 0, 2048, false);
    expect(h.k.stats.faultsSwap).toBeGreaterThan(0);
    expect(checkInvariants(h.k)).toEqual([]);
    h.sys.exit(task);
    expect(swap.used).toBe(0);
  });

  it('without swap the same workload runs the guest out of memory, naming the missing swap', () => {
    const h = makeHarness(policyOf('linux-6.18', { anonPrefault: { kind: 'off' } }), 1024, true, 0);
    const task = h.sys.spawn();
    const vma = mapAnon(h, task, 2048, FIXED_BASE);
    let err: unknown;
    try {
      touchRange(h, task, vma, 0, 2048, true);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PteError);
    expect((err as Error).message).toMatch(/guest out of memory: .*not reclaimable without swap/);
  });
});
