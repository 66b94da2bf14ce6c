/**
 * do_anonymous_page() and the anonymous prefault policies (linux-mm.md §3): the zero page on reads,
 * COW of the zero page, Lameter's fixed and adaptive anticipatory prefault (§3.3) and mTHP orders
 * (alloc_anon_folio, §3.1).
 */
import { Prng } from '@pte/core';
import { A, D, RW } from '@pte/arch-x86';
import { checkInvariants, PTE_SPECIAL, ptePfn, type AnonPrefault } from '../src/index.js';
import {
  FIXED_BASE,
  makeHarness,
  mapAnon,
  policyOf,
  presentPages,
  pteOf,
  statsDelta,
  statsOf,
  touch,
  touchRange,
} from './helpers.js';

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

function anonGuest(anonPrefault: AnonPrefault = { kind: 'off' }) {
  const h = makeHarness(policyOf('linux-6.18', { anonPrefault }));
  const task = h.sys.spawn();
  return { h, task };
}

describe('zero page and COW', () => {
  test('zeroPage off (mm_forbids_zeropage): a read fault allocates a zeroed page, writable and dirty, like a write', () => {
    const h = makeHarness(policyOf('linux-6.18', { zeroPage: false }));
    const task = h.sys.spawn();
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, 64, false);
    const d = statsDelta(h, s0);
    expect(d).toMatchObject({ faults: 64, faultsAnon: 64, pagesAllocated: 64 });
    expect(d.zeroPageMaps).toBeUndefined();
    expect(task.mm.rssPages).toBe(64);
    const [lo] = pteOf(h, task, vma.start + 7)!;
    expect(lo & (RW | D | PTE_SPECIAL)).toBe(RW | D);
    // A later write finds the page writable: no second fault.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 7, true);
    expect(statsDelta(h, s1).faults).toBeUndefined();
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('read touches map the zero page: no frame allocated, RSS 0', () => {
    const { h, task } = anonGuest();
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    const frames0 = h.k.frames.allocated;
    const s0 = statsOf(h);
    for (const i of [0, 1, 7, 63]) expect(touch(h, task, vma.start + i, false)).toBe(h.k.zeroPfn);
    const d = statsDelta(h, s0);
    expect(d).toMatchObject({
      faults: 4,
      faultsAnon: 4,
      faultsMinor: 4,
      zeroPageMaps: 4,
      ptePopulated: 4,
      ptAllocs: 3,
    });
    expect(d.pagesAllocated).toBeUndefined();
    // Only the three page tables (PDPT, PD, PT) were allocated.
    expect(h.k.frames.allocated - frames0).toBe(3);
    expect(task.mm.rssPages).toBe(0);
    const [lo] = pteOf(h, task, vma.start + 7)!;
    expect(lo & (RW | PTE_SPECIAL | A)).toBe(PTE_SPECIAL | A);
    expect(h.k.frames.refcount[h.k.zeroPfn]).toBe(1); // special: no reference per mapping
    // Once the page table exists, read faults allocate nothing at all.
    const frames1 = h.k.frames.allocated;
    touchRange(h, task, vma, 8, 40, false);
    expect(h.k.frames.allocated).toBe(frames1);
    expect(h.k.stats.zeroPageMaps).toBe(4 + 40);
    expect(task.mm.rssPages).toBe(0);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a later write to the same page COWs it: faultsCow 1, RSS 1, one page allocated', () => {
    const { h, task } = anonGuest();
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    touch(h, task, vma.start + 7, false);
    const frames0 = h.k.frames.allocated;
    const s0 = statsOf(h);
    const pfn = touch(h, task, vma.start + 7, true);
    expect(pfn).not.toBe(h.k.zeroPfn);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsCow: 1, pagesAllocated: 1, tlbFlushCalls: 1 });
    expect(h.k.frames.allocated - frames0).toBe(1);
    expect(task.mm.rssPages).toBe(1);
    expect(task.mm.rss).toEqual(new Float64Array([0, 1, 0]));
    const [lo, hi] = pteOf(h, task, vma.start + 7)!;
    expect(ptePfn(lo, hi)).toBe(pfn);
    expect(lo & (RW | D | PTE_SPECIAL)).toBe(RW | D);
    // Further writes and reads: no fault.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 7, true);
    touch(h, task, vma.start + 7, false);
    expect(statsDelta(h, s1).faults).toBeUndefined();
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a first write allocates directly (no zero page): one fault, RSS 1', () => {
    const { h, task } = anonGuest();
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 3, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsAnon: 1, pagesAllocated: 1, ptePopulated: 1 });
    expect(statsDelta(h, s0).faultsCow).toBeUndefined();
    expect(task.mm.rssPages).toBe(1);
  });
});

describe('Lameter anticipatory prefault on a sequential write stream of 16 MiB (4096 pages)', () => {
  const PAGES = 4096;

  function stream(policy: AnonPrefault) {
    const { h, task } = anonGuest(policy);
    const vma = mapAnon(h, task, PAGES);
    expect(vma.start % 512).toBe(0);
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, PAGES, true);
    const d = statsDelta(h, s0);
    expect(task.mm.rssPages).toBe(PAGES);
    expect(d.pagesAllocated).toBe(PAGES);
    expect(checkInvariants(h.k)).toEqual([]);
    h.sys.exit(task);
    return { d, unused: h.k.stats.ptePrefaultedUnused };
  }

  test('off: one fault per page', () => {
    const { d, unused } = stream({ kind: 'off' });
    expect(d.faults).toBe(4096);
    expect(d.ptePrefaulted).toBeUndefined();
    expect(unused).toBe(0);
  });

  test('adaptive (max order 3): 515 faults, about 8x fewer than off', () => {
    // Per 2 MiB page table: orders 0, 1, 2 (1 + 2 + 4 pages), then 8 pages per fault. The first
    // table takes 3 + 63 faults for 511 pages and one more clipped to the table end (1 page): 67;
    // every later table starts on a predicted address at order 3: 64. 67 + 7 * 64 = 515.
    const { d, unused } = stream({ kind: 'adaptive', maxOrder: 3 });
    expect(d.faults).toBe(515);
    expect(d.ptePrefaulted).toBe(4096 - 515);
    expect(4096 / d.faults!).toBeCloseTo(7.95, 2);
    expect(unused).toBe(0);
  });

  test('fixed:8: 512 faults', () => {
    const { d, unused } = stream({ kind: 'fixed', pages: 8 });
    expect(d.faults).toBe(512);
    expect(d.ptePrefaulted).toBe(4096 - 512);
    expect(unused).toBe(0);
  });

  test('mthp [4, 2]: 256 faults of 16-page folios', () => {
    const { d, unused } = stream({ kind: 'mthp', orders: [4, 2] });
    expect(d.faults).toBe(256);
    expect(d.ptePopulated).toBe(4096);
    expect(unused).toBe(0);
  });
});

describe('fixed:N clipping', () => {
  test('a fault maps N pages clipped to the VMA end', () => {
    const { h, task } = anonGuest({ kind: 'fixed', pages: 8 });
    const vma = mapAnon(h, task, 20, FIXED_BASE);
    const s0 = statsOf(h);
    touch(h, task, vma.start, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 8, ptePrefaulted: 7, pagesAllocated: 8 });
    touch(h, task, vma.start + 8, true);
    const s1 = statsOf(h);
    touch(h, task, vma.start + 16, true);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 4, pagesAllocated: 4 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 20));
    expect(h.k.stats.faults).toBe(3);
  });

  test('a fault maps N pages clipped to the page table (PMD) end', () => {
    const { h, task } = anonGuest({ kind: 'fixed', pages: 8 });
    const vma = mapAnon(h, task, 20, FIXED_BASE + 508);
    const s0 = statsOf(h);
    touch(h, task, vma.start, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 4 });
    expect(presentPages(h, task, vma)).toEqual([0, 1, 2, 3]);
    touchRange(h, task, vma, 0, 20, true);
    expect(h.k.stats.faults).toBe(3); // 4 + 8 + 8
  });

  test('pages already present are skipped, not remapped', () => {
    const { h, task } = anonGuest({ kind: 'fixed', pages: 8 });
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    touch(h, task, vma.start + 3, false); // zero page at 3
    touch(h, task, vma.start + 5, true);
    expect(presentPages(h, task, vma)).toEqual([3, 5, 6, 7, 8, 9, 10, 11, 12]);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 0, true);
    // 0..7 minus 3 (zero page) and 5..7 (present): 0, 1, 2, 4.
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 4, pagesAllocated: 4 });
    expect(pteOf(h, task, vma.start + 3)![0] & PTE_SPECIAL).toBe(PTE_SPECIAL);
  });

  test('reads never prefault', () => {
    const { h, task } = anonGuest({ kind: 'fixed', pages: 8 });
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    touch(h, task, vma.start, false);
    expect(presentPages(h, task, vma)).toEqual([0]);
  });
});

describe('adaptive order', () => {
  test('rises by one per correctly predicted address, capped at maxOrder, and resets on a miss', () => {
    const { h, task } = anonGuest({ kind: 'adaptive', maxOrder: 2 });
    const vma = mapAnon(h, task, 512, FIXED_BASE);
    const populated: number[] = [];
    const fault = (i: number) => {
      const s = statsOf(h);
      touch(h, task, vma.start + i, true);
      populated.push(statsDelta(h, s).ptePopulated ?? 0);
    };
    fault(0); // order 0: [0]
    fault(1); // predicted: order 1: [1, 2]
    fault(3); // predicted: order 2: [3..6]
    fault(7); // predicted, capped at 2: [7..10]
    fault(100); // miss: order 0
    fault(101); // predicted: order 1
    fault(50); // miss
    expect(populated).toEqual([1, 2, 4, 4, 1, 2, 1]);
    expect(task.mm.anonOrder).toBe(0);
    expect(task.mm.anonNextVpn).toBe(vma.start + 51);
  });
});

describe('mTHP orders [4, 2]', () => {
  test('an aligned, free, in-VMA 16-page range gets one 16-page folio', () => {
    const { h, task } = anonGuest({ kind: 'mthp', orders: [4, 2] });
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    const s0 = statsOf(h);
    const pfn = touch(h, task, vma.start + 21, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16, ptePrefaulted: 15, pagesAllocated: 16 });
    expect(presentPages(h, task, vma)).toEqual(range(16, 32));
    expect(h.k.frames.order[pfn]).toBe(4);
    const head = pfn - 5;
    expect(head % 16).toBe(0);
    // One folio: 16 references on the head, each page mapped once.
    expect(h.k.frames.refcount[head]).toBe(16);
    expect(task.mm.rssPages).toBe(16);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('falls back to order 2 when the 16-page range is not all none, then to order 0', () => {
    const { h, task } = anonGuest({ kind: 'mthp', orders: [4, 2] });
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    touch(h, task, vma.start + 9, false); // zero page at 9
    const s0 = statsOf(h);
    const p0 = touch(h, task, vma.start + 1, true); // [0, 15] has 9: order 2 at [0, 3]
    expect(statsDelta(h, s0)).toMatchObject({ ptePopulated: 4 });
    expect(h.k.frames.order[p0]).toBe(2);
    const s1 = statsOf(h);
    const p12 = touch(h, task, vma.start + 13, true); // [12, 15] free: order 2
    expect(statsDelta(h, s1)).toMatchObject({ ptePopulated: 4 });
    expect(h.k.frames.order[p12]).toBe(2);
    const s2 = statsOf(h);
    const p8 = touch(h, task, vma.start + 8, true); // [8, 11] has 9: order 0
    expect(statsDelta(h, s2)).toMatchObject({ ptePopulated: 1, pagesAllocated: 1 });
    expect(h.k.frames.order[p8]).toBe(0);
    // The zero page at 9 is COWed on write, order 0.
    const s3 = statsOf(h);
    const p9 = touch(h, task, vma.start + 9, true);
    expect(statsDelta(h, s3)).toMatchObject({ faultsCow: 1, pagesAllocated: 1 });
    expect(h.k.frames.order[p9]).toBe(0);
    expect(presentPages(h, task, vma)).toEqual([0, 1, 2, 3, 8, 9, 12, 13, 14, 15]);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('falls back when the aligned range leaves the VMA', () => {
    const { h, task } = anonGuest({ kind: 'mthp', orders: [4, 2] });
    const vma = mapAnon(h, task, 6, FIXED_BASE);
    touch(h, task, vma.start, true);
    expect(presentPages(h, task, vma)).toEqual([0, 1, 2, 3]);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 5, true); // [4, 7] leaves the VMA: order 0
    expect(statsDelta(h, s0)).toMatchObject({ ptePopulated: 1 });
    const u = mapAnon(h, task, 20, FIXED_BASE + 1000 + 2); // starts 2 pages into a 4-page block
    touch(h, task, u.start, true); // [1000, 1015] and [1000, 1003] start before the VMA: order 0
    expect(presentPages(h, task, u)).toEqual([0]);
    touch(h, task, u.start + 2, true); // [1004, 1007]: order 2 (the 16-page range starts before the VMA)
    expect(presentPages(h, task, u)).toEqual([0, 2, 3, 4, 5]);
  });

  test('falls back when no free block of the order is left', () => {
    // 64 frames: the reserved frame, the zero page, the tables and a few pages; then order 4 fails.
    const h = makeHarness(policyOf('linux-6.18', { anonPrefault: { kind: 'mthp', orders: [4, 2] } }), 64);
    const task = h.sys.spawn();
    const vma = mapAnon(h, task, 1024, FIXED_BASE);
    let i = 0;
    while (h.k.frames.freeCount >= 16 + 1) {
      touch(h, task, vma.start + i, true);
      i += 16;
    }
    const before = h.k.frames.freeCount;
    const s0 = statsOf(h);
    touch(h, task, vma.start + i, true);
    const d = statsDelta(h, s0);
    expect(d.ptePopulated).toBeLessThan(16);
    expect(h.k.frames.freeCount).toBe(before - d.pagesAllocated!);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('random-order 25 % writes over 16 MiB: prefaulted pages never touched', () => {
  const PAGES = 4096;
  // A seeded permutation of the pages; the first quarter is written, in that order.
  const order = new Prng(1, 't').shuffle(Uint32Array.from(range(0, PAGES))).subarray(0, PAGES / 4);

  function run(policy: AnonPrefault) {
    const { h, task } = anonGuest(policy);
    const vma = mapAnon(h, task, PAGES);
    const s0 = statsOf(h);
    for (const i of order) touch(h, task, vma.start + i, true);
    const d = statsDelta(h, s0);
    const rss = task.mm.rssPages;
    expect(checkInvariants(h.k)).toEqual([]);
    h.sys.exit(task);
    return { faults: d.faults!, allocated: d.pagesAllocated!, rss, unused: h.k.stats.ptePrefaultedUnused };
  }

  test('the permutation is fixed by the seed', () => {
    expect(Array.from(order.subarray(0, 8))).toEqual(FIRST_EIGHT);
    expect(new Set(order).size).toBe(1024);
  });

  test('off: 1024 faults, 1024 pages, none unused', () => {
    expect(run({ kind: 'off' })).toEqual({ faults: 1024, allocated: 1024, rss: 1024, unused: 0 });
  });

  test('fixed:8: 537 faults, 3182 pages allocated, 2158 of them never touched', () => {
    const fixed = run({ kind: 'fixed', pages: 8 });
    expect(fixed).toEqual({ faults: 537, allocated: 3182, rss: 3182, unused: 2158 });
    // Every allocated page is either touched or counted unused at exit.
    expect(fixed.allocated - fixed.unused).toBe(1024);
  });

  test('adaptive: no next address is ever predicted correctly, so it behaves as off (0 unused)', () => {
    // Lameter's order rises only when a fault hits the predicted next address (the page after the
    // last run); in this random order that never happens, so every fault stays at order 0.
    const adaptive = run({ kind: 'adaptive', maxOrder: 3 });
    expect(adaptive).toEqual({ faults: 1024, allocated: 1024, rss: 1024, unused: 0 });
    let predicted = 0;
    for (let i = 1; i < order.length; i++) if (order[i] === order[i - 1]! + 1) predicted++;
    expect(predicted).toBe(0);
  });

  test('the ordering that holds: off = adaptive (0) < fixed:8 (2158)', () => {
    const off = run({ kind: 'off' }).unused;
    const adaptive = run({ kind: 'adaptive', maxOrder: 3 }).unused;
    const fixed = run({ kind: 'fixed', pages: 8 }).unused;
    expect(off).toBe(adaptive);
    expect(fixed).toBeGreaterThan(adaptive);
  });

  test('adaptive does prefault when the random order happens to continue a run', () => {
    // The same pages, but each fourth write is followed by a write to the next page: those
    // predictions succeed and raise the order, and the extra pages may go unused.
    const { h, task } = anonGuest({ kind: 'adaptive', maxOrder: 3 });
    const vma = mapAnon(h, task, PAGES);
    for (let j = 0; j < order.length; j++) {
      touch(h, task, vma.start + order[j]!, true);
      if (j % 4 === 0 && order[j]! + 1 < PAGES) touch(h, task, vma.start + order[j]! + 1, true);
    }
    expect(h.k.stats.ptePrefaulted).toBeGreaterThan(0);
    h.sys.exit(task);
    expect(h.k.stats.ptePrefaultedUnused).toBe(ADAPTIVE_RUNS_UNUSED);
  });
});

// Observed for Prng(1, 't').
const FIRST_EIGHT = [570, 1971, 2112, 1115, 345, 735, 1761, 3637];
const ADAPTIVE_RUNS_UNUSED = 151;
