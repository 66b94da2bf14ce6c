/**
 * fork (Syscalls.fork → dup_mmap → copy_page_range, linux-mm.md §4.1), COW after fork, and exit
 * (zap + free_pgtables, §4.2).
 */
import { A, D, RW } from '@pte/arch-x86';
import { checkInvariants, PG_ANON, populateByWrite, PTE_SPECIAL, ptePfn, VM_READ, VM_WRITE } from '../src/index.js';
import {
  FIXED_BASE,
  makeHarness,
  mapAnon,
  mapFile,
  pageCacheFrames,
  policyOf,
  presentPages,
  pteOf,
  statsDelta,
  statsOf,
  touch,
  touchRange,
  type Harness,
} from './helpers.js';

function anonFrames(h: Harness): number {
  const f = h.k.frames;
  let n = 0;
  for (let pfn = 0; pfn < f.frames; pfn++) if ((f.flags[pfn]! & PG_ANON) !== 0) n++;
  return n;
}

/**
 * A linux-3.15 parent with a 64-page shared file mapping read whole (4 fault-around windows) and a
 * 32-page private anonymous mapping written whole.
 */
function parentWithMappings() {
  const h = makeHarness(policyOf('linux-3.15'));
  const parent = h.sys.spawn();
  const file = h.k.pageCache.createFile('shared', 64 * 4096);
  populateByWrite(h.k, file, 64, 0);
  const shared = mapFile(h, parent, file, 64, { shared: true, fixedVpn: FIXED_BASE });
  touchRange(h, parent, shared, 0, 64, false);
  const anon = mapAnon(h, parent, 32, FIXED_BASE + 4096);
  touchRange(h, parent, anon, 0, 32, true);
  expect(parent.mm.rss).toEqual(new Float64Array([64, 32, 0]));
  expect(checkInvariants(h.k)).toEqual([]);
  return { h, parent, file, shared, anon };
}

describe('fork: which page tables are copied', () => {
  test('a MAP_SHARED file mapping is not copied: the child refaults it', () => {
    const { h, parent, shared, anon } = parentWithMappings();
    const s0 = statsOf(h);
    const child = h.sys.fork(parent);
    const d = statsDelta(h, s0);
    // Only the 32 PTEs of the private anonymous mapping are copied.
    expect(d.pteCopied).toBe(32);
    expect(d.forks).toBe(1);
    expect(child.mm.rss).toEqual(new Float64Array([0, 32, 0]));
    expect(presentPages(h, child, shared)).toEqual([]);
    expect(presentPages(h, child, anon).length).toBe(32);
    // The child's first read of the shared mapping faults (and faults around).
    const s1 = statsOf(h);
    touch(h, child, shared.start + 20, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 16 });
    expect(child.mm.rss).toEqual(new Float64Array([16, 32, 0]));
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a private file mapping never written has no anon_vma and is not copied', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const parent = h.sys.spawn();
    const file = h.k.pageCache.createFile('text', 64 * 4096);
    populateByWrite(h.k, file, 64, 0);
    const text = mapFile(h, parent, file, 64, { write: true, fixedVpn: FIXED_BASE });
    touchRange(h, parent, text, 0, 64, false);
    expect(text.anonVma).toBe(false);
    const s0 = statsOf(h);
    const child = h.sys.fork(parent);
    expect(statsDelta(h, s0).pteCopied).toBeUndefined();
    expect(presentPages(h, child, text)).toEqual([]);
  });

  test('a private file mapping that COW-faulted has an anon_vma: all its present PTEs are copied, prefaulted ones too', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const parent = h.sys.spawn();
    const file = h.k.pageCache.createFile('data', 64 * 4096);
    populateByWrite(h.k, file, 64, 0);
    const data = mapFile(h, parent, file, 64, { write: true, fixedVpn: FIXED_BASE });
    touch(h, parent, data.start + 3, false); // fault-around: 16 file PTEs
    touch(h, parent, data.start + 40, true); // do_cow_fault: 1 anon PTE, anon_vma
    expect(data.anonVma).toBe(true);
    const s0 = statsOf(h);
    const child = h.sys.fork(parent);
    expect(statsDelta(h, s0).pteCopied).toBe(17);
    expect(presentPages(h, child, data)).toEqual([...Array(16).keys(), 40]);
    expect(child.mm.rss).toEqual(new Float64Array([16, 1, 0]));
    // File PTEs stay read-only (they were), the anonymous one is write-protected in both.
    for (const t of [parent, child]) expect(pteOf(h, t, data.start + 40)![0] & RW).toBe(0);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('fork: PTE state of a COW mapping', () => {
  test("copied PTEs are read-only in both; the child's are old, the parent keeps A", () => {
    const { h, parent, anon } = parentWithMappings();
    const before = pteOf(h, parent, anon.start + 5)!;
    expect(before[0] & (RW | A | D)).toBe(RW | A | D);
    const child = h.sys.fork(parent);
    for (let i = 0; i < 32; i++) {
      const p = pteOf(h, parent, anon.start + i)!;
      const c = pteOf(h, child, anon.start + i)!;
      expect(ptePfn(c[0], c[1])).toBe(ptePfn(p[0], p[1]));
      // Parent: write-protected (ptep_set_wrprotect), still young and dirty.
      expect(p[0] & (RW | A | D)).toBe(A | D);
      // Child: write-protected and old (pte_mkold); a private mapping stays dirty.
      expect(c[0] & (RW | A | D)).toBe(D);
      const pfn = ptePfn(p[0], p[1]);
      expect(h.k.frames.mapcount[pfn]).toBe(2);
      expect(h.k.frames.refcount[pfn]).toBe(2);
    }
    // The parent is the loaded mm: its TLB is flushed once at the end of dup_mmap.
    expect(h.k.stats.tlbFlushFull).toBeGreaterThanOrEqual(1);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('zero-page PTEs are copied as special PTEs, without a reference', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const parent = h.sys.spawn();
    const anon = mapAnon(h, parent, 16, FIXED_BASE);
    touch(h, parent, anon.start + 1, true);
    touch(h, parent, anon.start + 2, false);
    const child = h.sys.fork(parent);
    const c = pteOf(h, child, anon.start + 2)!;
    expect(c[0] & PTE_SPECIAL).toBe(PTE_SPECIAL);
    expect(ptePfn(c[0], c[1])).toBe(h.k.zeroPfn);
    expect(h.k.frames.refcount[h.k.zeroPfn]).toBe(1);
    expect(child.mm.rssPages).toBe(1);
    // A write in the child COWs the zero page.
    const s0 = statsOf(h);
    touch(h, child, anon.start + 2, true);
    expect(statsDelta(h, s0)).toMatchObject({ faultsCow: 1, pagesAllocated: 1 });
    expect(child.mm.rssPages).toBe(2);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('writes after fork', () => {
  test('the first writer copies, the second reuses; RSS stays right on both sides', () => {
    const { h, parent, anon } = parentWithMappings();
    const child = h.sys.fork(parent);
    const original = ptePfn(...pteOf(h, parent, anon.start + 5)!);
    const frames0 = h.k.frames.allocated;

    // Parent writes page 5: the page is shared (mapcount 2), so wp_page_copy.
    const s0 = statsOf(h);
    const pcopy = touch(h, parent, anon.start + 5, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsCow: 1, pagesAllocated: 1 });
    expect(pcopy).not.toBe(original);
    expect(h.k.frames.allocated - frames0).toBe(1);
    expect(h.k.frames.mapcount[original]).toBe(1);
    expect(h.k.frames.refcount[original]).toBe(1);
    expect(parent.mm.rss).toEqual(new Float64Array([64, 32, 0]));

    // Child writes page 5: it is now the only user of the original: reused in place.
    const s1 = statsOf(h);
    expect(touch(h, child, anon.start + 5, true)).toBe(original);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsWpReuse: 1 });
    expect(statsDelta(h, s1).faultsCow).toBeUndefined();
    expect(h.k.frames.allocated - frames0).toBe(1);
    expect(pteOf(h, child, anon.start + 5)![0] & (RW | D)).toBe(RW | D);

    // Child first on page 9: the child copies, then the parent reuses.
    const s2 = statsOf(h);
    const ccopy = touch(h, child, anon.start + 9, true);
    const parent9 = ptePfn(...pteOf(h, parent, anon.start + 9)!);
    expect(ccopy).not.toBe(parent9);
    expect(touch(h, parent, anon.start + 9, true)).toBe(parent9);
    expect(statsDelta(h, s2)).toMatchObject({ faults: 2, faultsCow: 1, faultsWpReuse: 1, pagesAllocated: 1 });

    expect(parent.mm.rss).toEqual(new Float64Array([64, 32, 0]));
    expect(child.mm.rss).toEqual(new Float64Array([0, 32, 0]));
    // 32 shared + 2 copies.
    expect(anonFrames(h)).toBe(34);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('after the other side exits, a write reuses the page', () => {
    const { h, parent, anon } = parentWithMappings();
    const child = h.sys.fork(parent);
    h.sys.exit(child);
    const pfn = ptePfn(...pteOf(h, parent, anon.start + 7)!);
    const s0 = statsOf(h);
    expect(touch(h, parent, anon.start + 7, true)).toBe(pfn);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsWpReuse: 1 });
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('exit after fork', () => {
  test.each([
    ['parent first', true],
    ['child first', false],
  ])('%s: every anonymous frame and every page-table page comes back', (_name, parentFirst) => {
    const { h, parent, shared, anon } = parentWithMappings();
    const baseline = pageCacheFrames(h); // 64 file pages
    expect(baseline).toBe(64);
    const child = h.sys.fork(parent);
    touch(h, child, shared.start, false);
    touchRange(h, child, anon, 0, 10, true); // the child copies 10 pages
    touchRange(h, parent, anon, 5, 10, true); // 5 copied by the child already → reuse; 5 copied here
    expect(anonFrames(h)).toBe(32 + 10 + 5);
    expect(h.mem.tableCount).toBeGreaterThan(2);
    const [first, second] = parentFirst ? [parent, child] : [child, parent];
    h.sys.exit(first);
    expect(checkInvariants(h.k)).toEqual([]);
    h.sys.exit(second);
    expect(checkInvariants(h.k)).toEqual([]);
    expect(anonFrames(h)).toBe(0);
    expect(h.mem.tableCount).toBe(0);
    expect(h.k.mms.size).toBe(0);
    // The page cache and the zero page are all that is left (frame 0 is reserved, never allocated).
    expect(h.k.frames.allocated).toBe(baseline + 1);
    expect(h.k.frames.frames - h.k.frames.freeCount).toBe(baseline + 1 + 1);
    expect(h.k.stats.ptAllocs).toBe(h.k.stats.ptFrees);
    expect(h.k.frames.refcount[shared.file!.cache[0]!]).toBe(1);
    expect(h.k.frames.mapcount[shared.file!.cache[0]!]).toBe(0);
  });

  test('a private mapping made read-only before fork: copied read-only, a write is SIGSEGV until mprotect adds write, then COW', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const parent = h.sys.spawn();
    const anon = mapAnon(h, parent, 8, FIXED_BASE);
    touchRange(h, parent, anon, 0, 8, true);
    h.sys.mprotect(parent, anon.start, 8, VM_READ);
    const child = h.sys.fork(parent);
    expect(pteOf(h, child, anon.start)![0] & RW).toBe(0);
    // A write is refused (SIGSEGV), in both.
    expect(touch(h, child, anon.start, true)).toBe(-1);
    h.sys.mprotect(child, anon.start, 8, VM_READ | VM_WRITE);
    const s0 = statsOf(h);
    touch(h, child, anon.start, true);
    expect(statsDelta(h, s0)).toMatchObject({ faultsCow: 1 });
    expect(checkInvariants(h.k)).toEqual([]);
  });
});
