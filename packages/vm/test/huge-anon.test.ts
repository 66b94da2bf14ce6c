/**
 * Anonymous THPs mapped by a PMD (policy anonThp, linux-6.18, THP enabled=madvise): the fault
 * (do_huge_pmd_anonymous_page), and zap, split, fork, write-protect faults and mprotect on them.
 * The 64 MiB figures are the real 6.18.44 kernel's (docs/validation.md anon-huge-seq: 32 faults).
 */
import { isLeaf, P, RW } from '@pte/arch-x86';
import fc from 'fast-check';
import { applyRangeOp, type RangeOp } from '@pte/test-utils';
import { checkInvariants, VM_READ, type Task, type Vma } from '../src/index.js';
import {
  entryAt,
  FIXED_BASE,
  makeHarness,
  mapAnon,
  policyOf,
  pteOf,
  statsDelta,
  statsOf,
  touch,
  touchRange,
  type Harness,
} from './helpers.js';

function setup(profile = 'linux-6.18', pages = 16384, advise = true, frames?: number) {
  const h = makeHarness(policyOf(profile), frames);
  const task = h.sys.spawn();
  const vma = mapAnon(h, task, pages, FIXED_BASE);
  if (advise) h.sys.madvise(task, vma.start, pages, 'hugepage');
  return { h, task, vma: task.mm.vmas.find(FIXED_BASE)! };
}

function pmdLeaf(h: Harness, task: Task, vpn: number): { lo: number; hi: number } | null {
  const e = entryAt(h, task.mm, vpn, 2);
  return e !== null && (e.lo & P) !== 0 && isLeaf(2, e.lo) ? { lo: e.lo, hi: e.hi } : null;
}

function ok(h: Harness): void {
  expect(checkInvariants(h.k)).toEqual([]);
}

describe('anonymous THP (do_huge_pmd_anonymous_page)', () => {
  test('zeroPage off: reads under MADV_HUGEPAGE make THPs, not the huge zero page (64 MiB: 32 faults, Rss 16384 pages)', () => {
    const h = makeHarness(policyOf('linux-6.18', { zeroPage: false }));
    const task = h.sys.spawn();
    const v = mapAnon(h, task, 16384, FIXED_BASE);
    h.sys.madvise(task, v.start, 16384, 'hugepage');
    const vma = task.mm.vmas.find(FIXED_BASE)!;
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, 16384, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 32, thpFaultAlloc: 32, pmdMapped: 32 });
    expect(task.mm.rss[1]).toBe(16384);
    ok(h);
  });

  test('64 MiB written in order under MADV_HUGEPAGE: one fault per 2 MiB, 32 PMD leaves, a deposited table each', () => {
    const { h, task, vma } = setup();
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, 16384, true);
    expect(statsDelta(h, s0)).toMatchObject({
      faults: 32,
      faultsAnon: 32,
      thpFaultAlloc: 32,
      pmdMapped: 32,
      pagesAllocated: 32 * 512,
    });
    expect(task.mm.rss[1]).toBe(16384);
    expect(task.mm.deposit.size).toBe(32);
    const leaf = pmdLeaf(h, task, vma.start + 700)!;
    expect(leaf.lo & RW).toBe(RW);
    ok(h);
  });

  test('reads map the huge zero page by one read-only PMD per 2 MiB; a write splits it into zero-page PTEs and copies one page', () => {
    const { h, task, vma } = setup('linux-6.18', 1024);
    touchRange(h, task, vma, 0, 1024, false);
    expect(h.k.stats).toMatchObject({ faults: 2, thpZeroPmd: 2, thpFaultAlloc: 0, zeroPageMaps: 0 });
    expect(task.mm.rssPages).toBe(0);
    expect(task.mm.deposit.size).toBe(2);
    const leaf = pmdLeaf(h, task, vma.start)!;
    expect(leaf.lo & RW).toBe(0);
    ok(h);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 7, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsCow: 1, thpSplitPmd: 1 });
    expect(task.mm.rssPages).toBe(1);
    expect(pteOf(h, task, vma.start + 8)![0] & RW).toBe(0); // still the zero page, read-only
    ok(h);
    // The rest of that 2 MiB now takes 4 KiB COW faults; the other THP range is still the huge zero page.
    h.sys.munmap(task, vma.start, 1024);
    expect(task.mm.deposit.size).toBe(0);
    ok(h);
  });

  test('no THP without MADV_HUGEPAGE, on linux-3.15 (reads take the 4 KiB zero page), or where the VMA does not cover the aligned 2 MiB', () => {
    const plain = setup('linux-6.18', 1024, false);
    touchRange(plain.h, plain.task, plain.vma, 0, 1024, true);
    expect(plain.h.k.stats.faults).toBe(1024);
    const old = setup('linux-3.15', 1024);
    touchRange(old.h, old.task, old.vma, 0, 1024, true);
    expect(old.h.k.stats.thpFaultAlloc).toBe(0);
    const read = setup('linux-3.15', 1024);
    touchRange(read.h, read.task, read.vma, 0, 1024, false); // the 4 KiB zero page
    expect(read.h.k.stats.faults).toBe(1024);
    expect(read.h.k.stats.zeroPageMaps).toBe(1024);
    // 3 MiB: the first 2 MiB is a THP, the last 1 MiB takes 4 KiB pages.
    const part = setup('linux-6.18', 768);
    touchRange(part.h, part.task, part.vma, 0, 768, true);
    expect(part.h.k.stats.faults).toBe(1 + 256);
    ok(part.h);
  });

  test('munmap of part of a THP splits it into PTEs: the rest stays mapped, the folio is freed with its last page', () => {
    const { h, task, vma } = setup('linux-6.18', 1024);
    touchRange(h, task, vma, 0, 1024, true);
    const ptBefore = task.mm.ptPages;
    h.sys.munmap(task, vma.start + 100, 50);
    expect(h.k.stats.thpSplitPmd).toBe(1);
    expect(pmdLeaf(h, task, vma.start)).toBeNull();
    expect(pteOf(h, task, vma.start + 99)).not.toBeNull();
    expect(pteOf(h, task, vma.start + 100)).toEqual([0, 0]); // none
    expect(task.mm.rss[1]).toBe(1024 - 50);
    expect(task.mm.deposit.size).toBe(1); // the second THP keeps its deposit
    expect(task.mm.ptPages).toBe(ptBefore); // the deposit became the PTE table
    ok(h);
    const freed = h.k.stats.pagesFreed;
    h.sys.munmap(task, vma.start, 512);
    expect(h.k.stats.pagesFreed - freed).toBe(512); // the order-9 folio goes back whole
    ok(h);
  });

  test('MADV_DONTNEED of a whole THP zaps its PMD and frees the folio and the deposited table', () => {
    const { h, task, vma } = setup('linux-6.18', 1024);
    touchRange(h, task, vma, 0, 1024, true);
    const ptBefore = task.mm.ptPages;
    h.sys.madvise(task, vma.start + 512, 512, 'dontneed');
    expect(h.k.stats.thpSplitPmd).toBe(0);
    expect(task.mm.ptPages).toBe(ptBefore - 1);
    expect(task.mm.deposit.size).toBe(1);
    expect(task.mm.rss[1]).toBe(512);
    ok(h);
  });

  test('zapping a THP flushes its one 2 MiB TLB entry (stride PMD_SIZE), not the whole address space', () => {
    const { h, task, vma } = setup('linux-6.18', 1024);
    touchRange(h, task, vma, 0, 1024, true);
    const s0 = statsOf(h);
    h.sys.madvise(task, vma.start + 512, 512, 'dontneed');
    expect(statsDelta(h, s0)).toMatchObject({ tlbFlushCalls: 1, tlbFlushPages: 1 });
    expect(statsDelta(h, s0).tlbFlushFull).toBeUndefined();
    ok(h);
  });

  test('fork when the child tables reclaim the parent THP: the split PTEs (swap entries) are copied instead', () => {
    // 8 MiB of RAM: a 10 MiB THP region plus some 4 KiB pages, then fork at the watermark.
    const h = makeHarness(policyOf('linux-6.18'), 2048, true, 16384);
    const task = h.sys.spawn();
    mapAnon(h, task, 2560, FIXED_BASE);
    h.sys.madvise(task, FIXED_BASE, 2560, 'hugepage');
    touchRange(h, task, task.mm.vmas.find(FIXED_BASE)!, 0, 2560, true);
    const other = mapAnon(h, task, 455, FIXED_BASE + 0x100000);
    touchRange(h, task, other, 0, 455, true);
    ok(h);
    const child = h.sys.fork(task);
    ok(h);
    expect(child.mm.rssPages + child.mm.swapEnts).toBe(task.mm.rssPages + task.mm.swapEnts);
  });

  test('fork shares the THP by a write-protected PMD in both; a write splits it and copies one 4 KiB page', () => {
    const { h, task, vma } = setup('linux-6.18', 512);
    touchRange(h, task, vma, 0, 512, true);
    const child = h.sys.fork(task);
    expect(pmdLeaf(h, child, vma.start)!.lo & RW).toBe(0);
    expect(pmdLeaf(h, task, vma.start)!.lo & RW).toBe(0);
    expect(child.mm.deposit.size).toBe(1);
    ok(h);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 5, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsCow: 1, thpSplitPmd: 1 });
    expect(pmdLeaf(h, task, vma.start)).toBeNull();
    expect(pmdLeaf(h, child, vma.start)).not.toBeNull(); // the child's PMD is untouched
    ok(h);
    h.sys.exit(child);
    ok(h);
    // The child is gone: every reference to the split THP is a mapping in the parent, so a write
    // reuses its page (__wp_can_reuse_large_anon_folio), no copy.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 6, true);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsWpReuse: 1 });
    expect(statsDelta(h, s1).faultsCow).toBeUndefined();
    ok(h);
  });

  test('a write to an exclusive write-protected THP reuses it (mprotect read-only, then writable again)', () => {
    const { h, task, vma } = setup('linux-6.18', 512);
    touchRange(h, task, vma, 0, 512, true);
    h.sys.mprotect(task, vma.start, 512, VM_READ);
    expect(pmdLeaf(h, task, vma.start)!.lo & RW).toBe(0);
    h.sys.mprotect(task, vma.start, 512, VM_READ | 2);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 9, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsWpReuse: 1 });
    expect(pmdLeaf(h, task, vma.start)!.lo & RW).toBe(RW);
    ok(h);
  });

  test('mprotect of part of a THP splits it and changes only the PTEs in range', () => {
    const { h, task, vma } = setup('linux-6.18', 512);
    touchRange(h, task, vma, 0, 512, true);
    h.sys.mprotect(task, vma.start + 16, 16, VM_READ);
    expect(h.k.stats.thpSplitPmd).toBe(1);
    expect(pteOf(h, task, vma.start + 15)![0] & RW).toBe(RW);
    expect(pteOf(h, task, vma.start + 16)![0] & RW).toBe(0);
    expect(pteOf(h, task, vma.start + 31)![0] & RW).toBe(0);
    expect(pteOf(h, task, vma.start + 32)![0] & RW).toBe(RW);
    ok(h);
  });

  test('a VMA split inside a THP (madvise on part of it) splits the PMD first', () => {
    const { h, task, vma } = setup('linux-6.18', 512);
    touchRange(h, task, vma, 0, 512, true);
    h.sys.madvise(task, vma.start + 100, 10, 'random');
    expect(h.k.stats.thpSplitPmd).toBe(1);
    expect(task.mm.vmas.find(vma.start + 100)!.start).toBe(vma.start + 100);
    ok(h);
  });

  test('an order-9 allocation that fails falls back to 4 KiB pages (thp_fault_fallback)', () => {
    const { h, task, vma } = setup('linux-6.18', 512, true, 600); // too little memory for an order-9 block
    touch(h, task, vma.start, true);
    expect(h.k.stats.thpFaultFallback).toBe(1);
    expect(h.k.stats.thpFaultAlloc).toBe(0);
    expect(task.mm.rss[1]).toBe(1);
    ok(h);
  });
});

describe('anonymous THP under reclaim', () => {
  test('memory pressure with swap: THPs are split (TTU_SPLIT_HUGE_PMD) and swapped out page by page; swapped pages read back', () => {
    const h = makeHarness(policyOf('linux-6.18'), 8192, true, 8192); // 32 MiB of RAM, 32 MiB of swap
    const task = h.sys.spawn();
    const vma = mapAnon(h, task, 12288, FIXED_BASE); // 48 MiB
    h.sys.madvise(task, vma.start, 12288, 'hugepage');
    touchRange(h, task, task.mm.vmas.find(FIXED_BASE)!, 0, 12288, true);
    expect(h.k.stats.thpFaultAlloc).toBeGreaterThan(0);
    expect(h.k.stats.thpSplitPmd).toBeGreaterThan(0);
    expect(task.mm.swapEnts).toBeGreaterThan(0);
    ok(h);
    touch(h, task, FIXED_BASE, false); // the first 2 MiB went out first
    expect(h.k.stats.faultsSwap).toBeGreaterThan(0);
    ok(h);
  });
});

/** Keep the Vma type import used (the helpers return it). */
export type { Vma };

describe('anonymous THP: random operation sequences keep every invariant', () => {
  type Op =
    | { op: 'touch'; t: number; page: number; count: number; write: boolean }
    | { op: 'range'; t: number; off: number; len: number; what: RangeOp }
    | { op: 'fork' | 'exit'; t: number };
  const rangeOp: fc.Arbitrary<RangeOp> = fc.oneof(
    fc.constant<RangeOp>({ op: 'munmap' }),
    fc.constant<RangeOp>({ op: 'dontneed' }),
    fc.constantFrom<RangeOp>({ op: 'mprotect', prot: 'r' }, { op: 'mprotect', prot: 'rw' }),
    fc.constantFrom<RangeOp>(
      { op: 'advise', advice: 'hugepage' },
      { op: 'advise', advice: 'nohugepage' },
      { op: 'advise', advice: 'random' },
    ),
  );
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant('touch' as const),
        t: fc.nat(),
        page: fc.nat(2047),
        count: fc.integer({ min: 1, max: 700 }),
        write: fc.integer({ min: 0, max: 4 }).map((x) => x > 0),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('range' as const),
        t: fc.nat(),
        off: fc.nat(2047),
        len: fc.integer({ min: 1, max: 1100 }),
        what: rangeOp,
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('fork' as const, 'exit' as const), t: fc.nat() }) },
  );

  test('4 MiB MADV_HUGEPAGE regions under touch, munmap, DONTNEED, mprotect, madvise, fork and exit (with reclaim and swap half the time)', () => {
    const seen = { allocs: 0, splits: 0, reuses: 0, swapped: 0 };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.boolean(), (ops, pressure) => {
        const h = pressure
          ? makeHarness(policyOf('linux-6.18'), 1536, true, 8192)
          : makeHarness(policyOf('linux-6.18'));
        const first = h.sys.spawn();
        const v = mapAnon(h, first, 2048, FIXED_BASE);
        h.sys.madvise(first, v.start, 2048, 'hugepage');
        const tasks: Task[] = [first];
        for (const o of ops) {
          const task = tasks[o.t % tasks.length]!;
          if (o.op === 'touch') {
            for (let i = 0; i < o.count; i++) {
              const vpn = FIXED_BASE + ((o.page + i) % 2048);
              const vma = task.mm.vmas.find(vpn);
              if (vma === null || (o.write && (vma.flags & 2) === 0)) continue;
              touch(h, task, vpn, o.write);
            }
          } else if (o.op === 'range') {
            applyRangeOp(h.sys, task, o.what, { start: FIXED_BASE + o.off, pages: o.len });
          } else if (o.op === 'fork') {
            if (tasks.length < 3) tasks.push(h.sys.fork(task));
          } else if (tasks.length > 1) {
            h.sys.exit(task);
            tasks.splice(tasks.indexOf(task), 1);
          }
          expect(checkInvariants(h.k)).toEqual([]);
        }
        seen.allocs += h.k.stats.thpFaultAlloc;
        seen.splits += h.k.stats.thpSplitPmd;
        seen.reuses += h.k.stats.faultsWpReuse;
        seen.swapped += h.k.swap?.writes ?? 0;
      }),
      { numRuns: 60, seed: 2026 },
    );
    // The sequences did reach the THP paths.
    expect(seen.allocs).toBeGreaterThan(50);
    expect(seen.splits).toBeGreaterThan(10);
    expect(seen.reuses).toBeGreaterThan(0);
    expect(seen.swapped).toBeGreaterThan(0);
  });
});
