/**
 * filemap_map_pages() through do_read_fault() (linux-mm.md §1.1, §1.3) on the linux-3.15 profile:
 * fault-around of 16 pages over an order-0 page cache.
 */
import { A } from '@pte/arch-x86';
import {
  PG_ACTIVE,
  PG_LOCKED,
  PG_READAHEAD,
  PG_REFERENCED,
  PG_UPTODATE,
  populateByWrite,
  ptePfn,
  pteTableFor,
  VM_READ,
  VM_WRITE,
} from '../src/index.js';
import {
  cachePage,
  FIXED_BASE,
  makeHarness,
  mapAnon,
  mapFile,
  policyOf,
  presentPages,
  pteOf,
  ptePresent,
  statsDelta,
  statsOf,
  touch,
  touchPages,
  touchRange,
  TOUCH_SIGNAL,
} from './helpers.js';

const MiB = 2 ** 20;

/** A fresh linux-3.15 guest with one task and a file of `bytes` fully in the page cache (order 0). */
function setup(bytes: number, overrides = {}) {
  const h = makeHarness(policyOf('linux-3.15', overrides));
  const task = h.sys.spawn();
  const file = h.k.pageCache.createFile('data', bytes);
  populateByWrite(h.k, file, 256, 0);
  return { h, task, file };
}

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}

describe('linux-3.15 fault-around over a fully cached 64 MiB file', () => {
  const PAGES = (64 * MiB) / 4096;

  test('the profile is what the test assumes', () => {
    const p = policyOf('linux-3.15');
    expect(p.faultAround).toBe(16);
    expect(p.maxFolioOrder).toBe(0);
    expect(p.prefaultOld).toBe(false);
  });

  test('sequential read: 1024 minor faults, all 16384 PTEs populated, none left unused at exit', () => {
    const { h, task, file } = setup(64 * MiB);
    expect(file.nrPages).toBe(PAGES);
    const vma = mapFile(h, task, file, PAGES);
    expect(vma.start % 512).toBe(0); // 2 MiB-aligned placement for large mappings
    const io = h.k.stats.ioRequests;
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, PAGES, false);
    const d = statsDelta(h, s0);
    expect(d.faults).toBe(1024);
    expect(d.faultsMinor).toBe(1024);
    expect(d.faultsMajor).toBeUndefined();
    expect(d.faultsFile).toBe(1024);
    expect(d.ptePopulated).toBe(PAGES);
    expect(d.ptePrefaulted).toBe(PAGES - 1024);
    expect(h.k.stats.ioRequests).toBe(io);
    expect(task.mm.rssPages).toBe(PAGES);
    expect(h.mmu.walker.markedUses).toBe(PAGES - 1024); // every prefaulted PTE was used once
    h.sys.exit(task);
    expect(h.k.stats.ptePrefaultedUnused).toBe(0);
    expect(h.k.stats.pteZapped).toBe(PAGES);
  });

  test('stride 17: every touch lands in a new window, so faults = touches', () => {
    const { h, task, file } = setup(64 * MiB);
    const vma = mapFile(h, task, file, PAGES);
    const pages = range(0, PAGES, 17);
    expect(pages.length).toBe(964);
    const s0 = statsOf(h);
    touchPages(h, task, vma, pages, false);
    const d = statsDelta(h, s0);
    expect(d.faults).toBe(964);
    expect(d.faultsMinor).toBe(964);
    // Each window is the full 16 pages (the last one, at page 16388 - 17 = 16371, too: [16368, 16383]).
    expect(d.ptePopulated).toBe(964 * 16);
    h.sys.exit(task);
    expect(h.k.stats.ptePrefaultedUnused).toBe(964 * 15);
  });

  test('one touch per 2 MiB: faults = touches and 16 PTEs populated per touch', () => {
    const { h, task, file } = setup(64 * MiB);
    const vma = mapFile(h, task, file, PAGES);
    const pages = range(0, PAGES, 512);
    expect(pages.length).toBe(32);
    const s0 = statsOf(h);
    touchPages(h, task, vma, pages, false);
    const d = statsDelta(h, s0);
    expect(d.faults).toBe(32);
    expect(d.ptePopulated).toBe(16 * 32);
    expect(d.ptePrefaulted).toBe(15 * 32);
    // One PTE page per 2 MiB, plus the PDPT and PD tables (the 64 MiB lie in one 1 GiB range).
    expect(d.ptAllocs).toBe(32 + 2);
  });

  test('fault_around 1 (off): one fault per page, nothing prefaulted', () => {
    const { h, task, file } = setup(64 * MiB, { faultAround: 1 });
    const vma = mapFile(h, task, file, PAGES);
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, PAGES, false);
    const d = statsDelta(h, s0);
    expect(d.faults).toBe(PAGES);
    expect(d.faultsMinor).toBe(PAGES);
    expect(d.ptePopulated).toBe(PAGES);
    expect(d.ptePrefaulted).toBeUndefined();
    h.sys.exit(task);
    expect(h.k.stats.ptePrefaultedUnused).toBe(0);
  });
});

describe('windows clipped at EOF and mappings with pgoff != 0', () => {
  // 64 KiB * 10 + 12 KiB: 163 pages, the last window [160, 175] has 3 pages in the file.
  const SIZE = 65536 * 10 + 12 * 1024;

  test('a file of 163 pages mapped whole: 11 faults, the last one maps 3 PTEs', () => {
    const { h, task, file } = setup(SIZE);
    expect(file.pages).toBe(163);
    const vma = mapFile(h, task, file, 163, { fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touchRange(h, task, vma, 0, 160, false);
    expect(statsDelta(h, s0).faults).toBe(10);
    const s1 = statsOf(h);
    touch(h, task, vma.start + 161, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 3, ptePrefaulted: 2 });
    expect(presentPages(h, task, vma).length).toBe(163);
  });

  test('a mapping longer than the file: the window stops at EOF and a touch past EOF is SIGBUS', () => {
    const { h, task, file } = setup(SIZE);
    const vma = mapFile(h, task, file, 176, { fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 161, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 3 });
    expect(presentPages(h, task, vma)).toEqual([160, 161, 162]);
    const s1 = statsOf(h);
    expect(touch(h, task, vma.start + 170, false)).toBe(TOUCH_SIGNAL);
    expect(statsDelta(h, s1)).toEqual({ faults: 1, faultsFile: 1, faultsSegv: 1 });
    expect(ptePresent(h, task, vma.start + 170)).toBe(false);
  });

  test('pgoff != 0 with an aligned start: windows are aligned in the address space, not the file', () => {
    const { h, task, file } = setup(SIZE);
    // File pages 5..162 at FIXED_BASE..FIXED_BASE+157.
    const vma = mapFile(h, task, file, 158, { fixedVpn: FIXED_BASE, pgoff: 5 });
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 16));
    // The PTE maps file page 5.
    const e = pteOf(h, task, vma.start)!;
    expect(ptePfn(e[0], e[1])).toBe(file.cache[5]);
    // The last window [144, 157] of the VMA is clipped to the VMA end (= EOF here): 14 pages.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 150, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 14 });
    const s2 = statsOf(h);
    touchRange(h, task, vma, 0, 158, false);
    expect(statsDelta(h, s2).faults).toBe(8); // windows 1..8 (of 10)
  });

  test('pgoff != 0 with a start mid-block: the first window runs 16 pages from the VMA start', () => {
    const { h, task, file } = setup(SIZE);
    const vma = mapFile(h, task, file, 100, { fixedVpn: FIXED_BASE + 3, pgoff: 7 });
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16 });
    // Pages FIXED_BASE+3 .. FIXED_BASE+18, file pages 7..22.
    expect(presentPages(h, task, vma)).toEqual(range(0, 16));
    const e = pteOf(h, task, vma.start + 15)!;
    expect(ptePfn(e[0], e[1])).toBe(file.cache[22]);
    // The next fault (page FIXED_BASE+20, block [16, 31]) maps what is left of that block: 13 pages.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 17, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 13 });
  });

  test('a mapping past EOF at a pgoff: the window stops at the last file page', () => {
    const { h, task, file } = setup(SIZE);
    // File pages 150..(150+31): only 150..162 exist.
    const vma = mapFile(h, task, file, 32, { fixedVpn: FIXED_BASE, pgoff: 150 });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 2, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 13 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 13));
    expect(touch(h, task, vma.start + 13, false)).toBe(TOUCH_SIGNAL);
  });
});

describe('which pages fault-around maps', () => {
  /** A 64-page file with only the listed pages cached (order 0), mapped at an aligned address. */
  function sparse(cached: number[], flags: (i: number) => number = () => 0) {
    const h = makeHarness(policyOf('linux-3.15'));
    h.k.raPages = 0; // readahead off: ->fault reads only its own page, so fault-around is seen alone
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('sparse', 64 * 4096);
    for (const i of cached) cachePage(h, file, i, flags(i));
    const vma = mapFile(h, task, file, 64, { fixedVpn: FIXED_BASE });
    return { h, task, file, vma };
  }

  test('pages not in the page cache are never read: cold neighbours stay unmapped and cost no IO', () => {
    const { h, task, vma } = sparse(range(0, 16, 2)); // even pages cached
    const io = h.ledger.get('io.wait');
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 8 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 16, 2));
    expect(h.k.stats.ioRequests).toBe(0);
    expect(h.k.blockDev.pagesRead).toBe(0);
    expect(h.ledger.get('io.wait')).toBe(io);
    // A cold page is read by ->fault when touched (a major fault of one page), not by fault-around.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 3, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsMajor: 1, ptePopulated: 1, ioRequests: 1, ioPages: 1 });
    expect(presentPages(h, task, vma)).toEqual([0, 2, 3, 4, 6, 8, 10, 12, 14]);
  });

  test('a fault whose page is cold maps the cached neighbours first, then reads its own page', () => {
    const { h, task, vma } = sparse([0, 1, 2, 5, 9]);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 7, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsMajor: 1, ptePopulated: 6, ioPages: 1 });
    expect(presentPages(h, task, vma)).toEqual([0, 1, 2, 5, 7, 9]);
  });

  test.each([
    ['PG_LOCKED', PG_LOCKED],
    ['PG_READAHEAD', PG_READAHEAD],
  ])('pages flagged %s are skipped', (_name, flag) => {
    const { h, task, vma } = sparse(range(0, 16), (i) => (i === 3 || i === 9 ? flag : 0));
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 14 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 16).filter((i) => i !== 3 && i !== 9));
    // A touch of a skipped page goes to ->fault (filemap_fault finds it cached: minor).
    const s1 = statsOf(h);
    touch(h, task, vma.start + 3, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 1 });
  });

  test('pages that are not uptodate are skipped, and ->fault reads one in place (found in the cache: not a major fault)', () => {
    const { h, task, file, vma } = sparse(range(0, 16));
    for (const i of [3, 9]) h.k.frames.flags[file.cache[i]!] = h.k.frames.flags[file.cache[i]!]! & ~PG_UPTODATE;
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 14 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 16).filter((i) => i !== 3 && i !== 9));
    const frame = file.cache[3]!;
    const s1 = statsOf(h);
    expect(touch(h, task, vma.start + 3, false)).toBe(frame);
    // filemap_fault found the folio, so no PGMAJFAULT; page_not_uptodate reads it in place.
    const majorBefore = h.k.stats.faultsMajor - (statsDelta(h, s1).faultsMajor ?? 0);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 1, ioRequests: 1, ioPages: 1 });
    expect(h.k.stats.faultsMajor).toBe(majorBefore);
    expect(statsDelta(h, s1).faultsMajor ?? 0).toBe(0);
    expect(file.cache[3]).toBe(frame); // read into the cached folio, not a second one
    expect(h.k.frames.flags[frame]! & PG_UPTODATE).toBe(PG_UPTODATE);
  });

  test('the faulting page itself locked: fault-around maps the others, ->fault maps it', () => {
    const { h, task, vma } = sparse(range(0, 16), (i) => (i === 4 ? PG_LOCKED : 0));
    const s0 = statsOf(h);
    touch(h, task, vma.start + 4, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 16, ptePrefaulted: 15 });
  });

  test('PTEs already present are not rewritten', () => {
    // Pages 4..7 not cached at first: the first fault maps the other 12.
    const { h, task, file, vma } = sparse(range(0, 16).filter((i) => i < 4 || i > 7));
    touch(h, task, vma.start, false);
    expect(presentPages(h, task, vma).length).toBe(12);
    // Page 2's PTE made old (as reclaim's ptep_test_and_clear_young would): a rewrite would make it young.
    const pt2 = pteOf(h, task, vma.start + 2)!;
    expect(pt2[0] & A).toBe(A);
    expect(h.k.pv.ptepTestAndClearYoung(pteTableFor(h.k, task.mm, vma.start, false), 2)).toBe(true);
    expect(pteOf(h, task, vma.start + 2)![0] & A).toBe(0);
    for (const i of [4, 5, 6, 7]) cachePage(h, file, i);
    const writes = h.pv.pteWrites;
    const s0 = statsOf(h);
    touch(h, task, vma.start + 5, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 4, ptePrefaulted: 3 });
    expect(h.pv.pteWrites - writes).toBe(4);
    expect(pteOf(h, task, vma.start + 2)![0] & A).toBe(0);
    expect(presentPages(h, task, vma)).toEqual(range(0, 16));
  });
});

describe('write faults and anonymous faults never fault around', () => {
  test('a write to a private file mapping (do_cow_fault) maps one page', () => {
    const { h, task, file } = setup(64 * 4096);
    const vma = h.sys.mmap(task, { pages: 64, prot: VM_READ | VM_WRITE, shared: false, file, fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 5, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsCow: 1, ptePopulated: 1 });
    expect(statsDelta(h, s0).ptePrefaulted).toBeUndefined();
    expect(presentPages(h, task, vma)).toEqual([5]);
    expect(task.mm.rss).toEqual(new Float64Array([0, 1, 0]));
  });

  test('a write to a shared file mapping (do_shared_fault) maps one page', () => {
    const { h, task, file } = setup(64 * 4096);
    const vma = mapFile(h, task, file, 64, { shared: true, write: true, fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 5, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsSharedWrite: 1, ptePopulated: 1 });
    expect(presentPages(h, task, vma)).toEqual([5]);
    expect(task.mm.rss).toEqual(new Float64Array([1, 0, 0]));
  });

  test('a read after the write faults around the written page without rewriting it', () => {
    const { h, task, file } = setup(64 * 4096);
    const vma = mapFile(h, task, file, 64, { shared: true, write: true, fixedVpn: FIXED_BASE });
    touch(h, task, vma.start + 5, true);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 6, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 15 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 16));
  });

  test('anonymous read (zero page) and write faults map one page each', () => {
    const { h, task } = setup(4096);
    const vma = mapAnon(h, task, 64, FIXED_BASE);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 5, false);
    touch(h, task, vma.start + 9, true);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 2, faultsAnon: 2, ptePopulated: 2, zeroPageMaps: 1 });
    expect(statsDelta(h, s0).ptePrefaulted).toBeUndefined();
    expect(presentPages(h, task, vma)).toEqual([5, 9]);
  });
});

describe('young or old prefaulted PTEs (§1.4) and folio_mark_accessed at zap (§4.2)', () => {
  function mapped(overrides = {}) {
    const { h, task, file } = setup(64 * 4096, overrides);
    const vma = mapFile(h, task, file, 64, { fixedVpn: FIXED_BASE });
    touch(h, task, vma.start + 5, false);
    return { h, task, file, vma };
  }

  test('x86 (prefaultOld false): every PTE of the window is young', () => {
    const { h, task, vma } = mapped();
    for (let i = 0; i < 16; i++) expect(pteOf(h, task, vma.start + i)![0] & A).toBe(A);
  });

  test('prefaultOld: the faulting PTE is young, the prefaulted ones old', () => {
    const { h, task, vma } = mapped({ prefaultOld: true });
    for (let i = 0; i < 16; i++) expect(pteOf(h, task, vma.start + i)![0] & A).toBe(i === 5 ? A : 0);
    // The hardware sets A on first use.
    touch(h, task, vma.start + 6, false);
    expect(pteOf(h, task, vma.start + 6)![0] & A).toBe(A);
  });

  test('zap marks folios behind young PTEs accessed: young prefaulted PTEs promote pages never touched', () => {
    const { h, task, file, vma } = mapped();
    h.sys.munmap(task, vma.start, 64);
    for (let i = 0; i < 16; i++) expect(h.k.frames.flags[file.cache[i]!]! & PG_REFERENCED).toBe(PG_REFERENCED);
    expect(h.k.frames.flags[file.cache[16]!]! & PG_REFERENCED).toBe(0);
    expect(h.k.stats.ptePrefaultedUnused).toBe(15);
  });

  test('old prefaulted PTEs skip the promotion; so does a VM_RAND_READ mapping', () => {
    const old = mapped({ prefaultOld: true });
    touch(old.h, old.task, old.vma.start + 7, false);
    old.h.sys.munmap(old.task, old.vma.start, 64);
    const referenced = range(0, 16).filter((i) => (old.h.k.frames.flags[old.file.cache[i]!]! & PG_REFERENCED) !== 0);
    expect(referenced).toEqual([5, 7]);

    const rnd = mapped();
    rnd.h.sys.madvise(rnd.task, rnd.vma.start, 64, 'random');
    rnd.h.sys.munmap(rnd.task, rnd.vma.start, 64);
    expect(range(0, 16).filter((i) => (rnd.h.k.frames.flags[rnd.file.cache[i]!]! & PG_REFERENCED) !== 0)).toEqual([]);
  });

  test('a second zap of a referenced folio activates it', () => {
    const { h, task, file, vma } = mapped();
    h.sys.munmap(task, vma.start, 64);
    const again = mapFile(h, task, file, 64, { fixedVpn: FIXED_BASE });
    touch(h, task, again.start, false);
    h.sys.munmap(task, again.start, 64);
    const fl = h.k.frames.flags[file.cache[3]!]!;
    expect(fl & (PG_ACTIVE | PG_REFERENCED)).toBe(PG_ACTIVE);
  });

  test('set_ptes in lazy MMU mode (linux-6.18) writes the same PTEs as one set_pte per page', () => {
    const a = mapped({ lazySetPtes: false });
    const b = mapped({ lazySetPtes: true });
    for (let i = 0; i < 16; i++)
      expect(pteOf(b.h, b.task, b.vma.start + i)).toEqual(pteOf(a.h, a.task, a.vma.start + i));
    expect(b.h.pv.pteWrites).toBe(a.h.pv.pteWrites);
    expect(b.h.pv.lazyDepth).toBe(0);
  });
});
