/**
 * Large page-cache folios on the linux-6.18 profile (maxFolioOrder 9, pmdMapFileFolios):
 * filemap_map_folio_range() maps a folio whole when it lies inside i_size, the VMA and one page
 * table, even beyond the fault-around window; filemap_map_pmd()/do_set_pmd() maps a PMD-sized
 * folio with one PMD entry; a write to it splits (zaps) the PMD and COWs the page (linux-mm.md §1.3).
 */
import { entryPfn, isLeaf, P, PS, RW } from '@pte/arch-x86';
import { checkInvariants, populateByWrite, VM_READ, VM_WRITE, type Task } from '../src/index.js';
import {
  cacheFolio,
  entryAt,
  FIXED_BASE,
  makeHarness,
  mapFile,
  policyOf,
  presentPages,
  pteOf,
  statsDelta,
  statsOf,
  touch,
  touchRange,
  type Harness,
} from './helpers.js';

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

/** A linux-6.18 guest with one task and a file of `pages` pages written in chunks of `chunk` pages. */
function setup(pages: number, chunk: number) {
  const h = makeHarness(policyOf('linux-6.18'));
  const task = h.sys.spawn();
  const file = h.k.pageCache.createFile('data', pages * 4096);
  populateByWrite(h.k, file, chunk, h.k.policy.maxFolioOrder);
  return { h, task, file };
}

/** The PMD entry covering `vpn` in the task's tables ([lo, hi]). */
function pmdOf(h: Harness, task: Task, vpn: number): [number, number] {
  const e = entryAt(h, task.mm, vpn, 2);
  expect(e).not.toBeNull();
  return [e!.lo, e!.hi];
}

describe('linux-6.18 large page-cache folios', () => {
  test('the profile is what the test assumes', () => {
    const p = policyOf('linux-6.18');
    expect(p.maxFolioOrder).toBe(9);
    expect(p.pmdMapFileFolios).toBe(true);
    expect(p.faultAround).toBe(16);
  });

  test('write() in 64-page chunks makes order-6 folios', () => {
    const { h, file } = setup(256, 64);
    for (let i = 0; i < 256; i++) expect(h.k.frames.order[file.cache[i]!]).toBe(6);
    // Each folio's frames are consecutive and naturally aligned.
    expect(file.cache[0]! % 64).toBe(0);
    expect(file.cache[63]).toBe(file.cache[0]! + 63);
  });

  test('a 64-page folio inside the VMA, one page table and EOF is mapped whole: 64 PTEs for one fault', () => {
    const { h, task, file } = setup(256, 64);
    const vma = mapFile(h, task, file, 256, { fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 3, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 64, ptePrefaulted: 63 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 64));
    // The rest of the folio needs no more faults.
    const s1 = statsOf(h);
    touchRange(h, task, vma, 0, 64, false);
    expect(statsDelta(h, s1).faults).toBeUndefined();
    // The whole file: one fault per folio, except the last, [192, 255], which ends exactly at EOF:
    // 6.18 tests file_end >= folio_next_index(folio) with file_end the last index (255 >= 256
    // fails), so with its page table present each fault maps one 16-page window: 3 + 4 faults.
    touchRange(h, task, vma, 0, 256, false);
    expect(h.k.stats.faults).toBe(3 + 4);
    expect(task.mm.rssPages).toBe(256);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a fault in the middle of the folio maps it whole, before and after the window', () => {
    const { h, task, file } = setup(256, 64);
    const vma = mapFile(h, task, file, 256, { fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 64 + 40, false); // window [96, 111] inside the folio [64, 127]
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 64 });
    expect(presentPages(h, task, vma)).toEqual(range(64, 128));
  });

  test('a VMA ending inside the folio: only the window part is mapped', () => {
    const { h, task, file } = setup(256, 64);
    const vma = mapFile(h, task, file, 40, { fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16 });
    expect(presentPages(h, task, vma)).toEqual(range(0, 16));
    const s1 = statsOf(h);
    touch(h, task, vma.start + 33, false); // window [32, 39], clipped to the VMA end
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 8 });
  });

  test('a VMA starting inside the folio (pgoff mid-folio): only the window part is mapped', () => {
    const { h, task, file } = setup(256, 64);
    // File pages 8.. at FIXED_BASE: the first folio [0, 63] starts before the VMA.
    const vma = mapFile(h, task, file, 200, { fixedVpn: FIXED_BASE, pgoff: 8 });
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16 });
    // Window [48, 63] = file pages [56, 71]: the end of the first folio, which starts before the VMA
    // (its 8 window pages only), and the start of the next, file pages [64, 127] = VMA pages
    // [56, 119], which lies inside and is mapped whole.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 60, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 8 + 64 });
    expect(presentPages(h, task, vma)).toEqual([...range(0, 16), ...range(48, 120)]);
  });

  test('a folio crossing a 2 MiB boundary in the address space: only the window part is mapped', () => {
    const { h, task, file } = setup(256, 64);
    // File page 0 at FIXED_BASE + 480: the first folio spans [480, 543], across the page table at 512.
    const vma = mapFile(h, task, file, 256, { fixedVpn: FIXED_BASE + 480 });
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16 });
    const s1 = statsOf(h);
    touch(h, task, vma.start + 32, false); // page FIXED_BASE + 512: window [512, 527]
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 16 });
    expect(presentPages(h, task, vma)).toEqual([...range(0, 16), ...range(32, 48)]);
    // The second folio, file [64, 127] = [544, 607], is inside one table: whole.
    const s2 = statsOf(h);
    touch(h, task, vma.start + 64, false);
    expect(statsDelta(h, s2)).toMatchObject({ faults: 1, ptePopulated: 64 });
  });

  test('a folio reaching past EOF is mapped only within the window and i_size', () => {
    const h = makeHarness(policyOf('linux-6.18'));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('eof', 163 * 4096);
    // Order-4 folios, the last one at index 160 reaching past EOF (163 pages).
    for (let i = 0; i <= 160; i += 16) cacheFolio(h, file, i, 4);
    expect(file.nrPages).toBe(163);
    const vma = mapFile(h, task, file, 176, { fixedVpn: FIXED_BASE });
    touch(h, task, vma.start, false); // page 0 first (its folio [0, 15] whole), so the page table exists
    const s0 = statsOf(h);
    touch(h, task, vma.start + 161, false); // window [160, 175], the file ends at 162
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 3 });
    expect(presentPages(h, task, vma)).toEqual([...range(0, 16), 160, 161, 162]);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('the folio at EOF faulted first in its PMD: fault-around maps nothing, finish_fault one page', () => {
    const h = makeHarness(policyOf('linux-6.18'));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('eof', 163 * 4096);
    cacheFolio(h, file, 160, 4);
    const vma = mapFile(h, task, file, 176, { fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    // filemap_map_pmd() and its pmd_install are skipped for a folio reaching EOF, so there is no
    // table to map into; ->fault finds the page and finish_fault() maps only it (past i_size).
    touch(h, task, vma.start + 161, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 1 });
    expect(presentPages(h, task, vma)).toEqual([161]);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a folio ending exactly at EOF: whole when it is the first folio in a none PMD, else window by window', () => {
    // 1 MiB written in 256-page chunks, mapped twice: as in the probe cases w-seq / w-reverse.
    const { h, task, file } = setup(512, 256);
    const seq = mapFile(h, task, file, 512, { fixedVpn: FIXED_BASE });
    touchRange(h, task, seq, 0, 512, false);
    // Folio [0, 255] whole on one fault; folio [256, 511] ends at EOF and its table exists: 16 windows.
    expect(h.k.stats.faults).toBe(1 + 16);
    const rev = mapFile(h, task, file, 512, { fixedVpn: FIXED_BASE + 1024 });
    const s0 = statsOf(h);
    touch(h, task, rev.start + 511, false); // no table yet: ->fault, finish_fault maps all 256
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 256 });
    // With the strict test off (kernels before 6.18), the last folio is one fault too.
    const old = makeHarness(policyOf('linux-6.18', { mapPagesEofStrict: false }));
    const t2 = old.sys.spawn();
    const f2 = old.k.pageCache.createFile('data', 512 * 4096);
    populateByWrite(old.k, f2, 256, 9);
    touchRange(old, t2, mapFile(old, t2, f2, 512, { fixedVpn: FIXED_BASE }), 0, 512, false);
    expect(old.k.stats.faults).toBe(2);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a shmem folio past EOF is mapped whole (shmem may map beyond i_size)', () => {
    const h = makeHarness(policyOf('linux-6.18'));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('shm', 163 * 4096, true);
    cacheFolio(h, file, 160, 4);
    const vma = mapFile(h, task, file, 176, { shared: true, fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, vma.start + 161, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 16 });
    expect(presentPages(h, task, vma)).toEqual(range(160, 176));
    expect(task.mm.rss).toEqual(new Float64Array([0, 0, 16]));
  });
});

describe('PMD mapping of PMD-sized file folios', () => {
  /** A 4 MiB file written in 2 MiB chunks: two order-9 folios, mapped 2 MiB-aligned. */
  function pmdSetup(prot = VM_READ) {
    const { h, task, file } = setup(1024, 512);
    expect(h.k.frames.order[file.cache[0]!]).toBe(9);
    expect(h.k.frames.order[file.cache[512]!]).toBe(9);
    const vma = h.sys.mmap(task, { pages: 1024, prot, shared: false, file });
    expect(vma.start % 512).toBe(0);
    return { h, task, file, vma };
  }

  test('a read maps the folio with one PMD entry: pmdMapped 1, RSS 512, no PTE page', () => {
    const { h, task, file, vma } = pmdSetup();
    const frames = h.k.frames.allocated;
    const s0 = statsOf(h);
    expect(touch(h, task, vma.start + 100, false)).toBe(file.cache[100]);
    const d = statsDelta(h, s0);
    expect(d).toMatchObject({ faults: 1, faultsMinor: 1, pmdMapped: 1 });
    expect(d.ptePopulated).toBeUndefined();
    expect(task.mm.rssPages).toBe(512);
    expect(task.mm.rss).toEqual(new Float64Array([512, 0, 0]));
    // The PDPT and PD tables only.
    expect(d.ptAllocs).toBe(2);
    expect(h.k.frames.allocated - frames).toBe(2);
    const [lo, hi] = pmdOf(h, task, vma.start);
    expect(isLeaf(2, lo)).toBe(true);
    expect(lo & (P | PS | RW)).toBe(P | PS);
    expect(entryPfn(2, lo, hi)).toBe(file.cache[0]);
    // Every page of the 2 MiB is reachable without another fault.
    const s1 = statsOf(h);
    for (let i = 0; i < 512; i += 37) expect(touch(h, task, vma.start + i, false)).toBe(file.cache[i]);
    expect(statsDelta(h, s1).faults).toBeUndefined();
    // Refcount: the cache's 512 + the PMD mapping's 512; every page mapped once.
    expect(h.k.frames.refcount[file.cache[0]!]).toBe(1024);
    expect(h.k.frames.mapcount[file.cache[511]!]).toBe(1);
    expect(checkInvariants(h.k)).toEqual([]);
    // The second folio gets its own PMD.
    touch(h, task, vma.start + 512, false);
    expect(h.k.stats.pmdMapped).toBe(2);
    expect(task.mm.rssPages).toBe(1024);
    h.sys.exit(task);
    expect(h.k.frames.refcount[file.cache[0]!]).toBe(512);
    expect(h.k.frames.mapcount[file.cache[0]!]).toBe(0);
    expect(h.mem.tableCount).toBe(0);
  });

  test('no PMD mapping without pmdMapFileFolios: the folio is mapped whole with 512 PTEs', () => {
    const h = makeHarness(policyOf('linux-6.18', { pmdMapFileFolios: false }));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('data', 1024 * 4096);
    populateByWrite(h.k, file, 512, 9);
    const vma = mapFile(h, task, file, 1024);
    const s0 = statsOf(h);
    touch(h, task, vma.start + 100, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 512, ptePrefaulted: 511 });
    expect(statsDelta(h, s0).pmdMapped).toBeUndefined();
  });

  test('a PMD-sized folio not PMD-aligned in the VMA is not PMD-mapped', () => {
    const { h, task, file } = setup(1024, 512);
    const vma = mapFile(h, task, file, 1024, { fixedVpn: FIXED_BASE + 16 });
    const s0 = statsOf(h);
    touch(h, task, vma.start, false);
    const d = statsDelta(h, s0);
    expect(d.pmdMapped).toBeUndefined();
    // It crosses a page table, so only the window [16, 31] is mapped.
    expect(d.ptePopulated).toBe(16);
  });

  test('a write to a PMD-mapped folio of a private mapping splits (zaps) the PMD and COWs the page', () => {
    const { h, task, file, vma } = pmdSetup(VM_READ | VM_WRITE);
    touch(h, task, vma.start + 100, false);
    expect(h.k.stats.pmdMapped).toBe(1);
    expect(task.mm.rssPages).toBe(512);
    const allocated = h.k.frames.allocated;
    const s0 = statsOf(h);
    const pfn = touch(h, task, vma.start + 3, true);
    const d = statsDelta(h, s0);
    expect(d).toMatchObject({ faults: 1, faultsCow: 1, ptePopulated: 1, ptAllocs: 1, tlbFlushCalls: 1 });
    expect(pfn).not.toBe(file.cache[3]);
    // RSS: the PMD's 512 file pages are gone, one anonymous page is mapped.
    expect(task.mm.rss).toEqual(new Float64Array([0, 1, 0]));
    // One PTE page and one anonymous page more.
    expect(h.k.frames.allocated - allocated).toBe(2);
    const [lo] = pmdOf(h, task, vma.start);
    expect(isLeaf(2, lo)).toBe(false);
    expect(presentPages(h, task, vma)).toEqual([3]);
    const pte = pteOf(h, task, vma.start + 3)!;
    expect(pte[0] & RW).toBe(RW);
    expect(h.k.frames.refcount[file.cache[0]!]).toBe(512); // only the page cache's references
    expect(checkInvariants(h.k)).toEqual([]);
    // A read of another page of the folio now maps the rest of it with PTEs (it fits VMA, PMD, EOF),
    // around the anonymous page.
    const s1 = statsOf(h);
    touch(h, task, vma.start + 200, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 511 });
    expect(task.mm.rss).toEqual(new Float64Array([511, 1, 0]));
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('shared write faults on large folios (finish_fault maps the entire file folio, 6.18)', () => {
  test('one write fault per 1 MiB folio maps all 256 PTEs writable and dirty', () => {
    const { h, task, file } = setup(1024, 256); // four order-8 folios
    const vma = mapFile(h, task, file, 1024, { fixedVpn: FIXED_BASE, shared: true, write: true });
    const before = statsOf(h);
    touchRange(h, task, vma, 0, 1024, true);
    const d = statsDelta(h, before);
    expect(d.faults).toBe(4);
    expect(d.faultsSharedWrite).toBe(4);
    expect(presentPages(h, task, vma)).toEqual(range(0, 1024));
    for (const p of [0, 100, 255, 256, 1023]) {
      const [lo] = pteOf(h, task, vma.start + p)!;
      expect(lo & RW).toBe(RW);
      expect(lo & 0x40).toBe(0x40); // D
    }
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a folio that does not fit the VMA falls back to the one page', () => {
    const { h, task, file } = setup(512, 256);
    // The VMA starts half-way into the first folio (pgoff 128): that folio sticks out of it.
    const vma = mapFile(h, task, file, 384, { fixedVpn: FIXED_BASE + 128, pgoff: 128, shared: true, write: true });
    let before = statsOf(h);
    touch(h, task, vma.start + 3, true);
    expect(statsDelta(h, before).ptePopulated).toBe(1);
    before = statsOf(h);
    touch(h, task, vma.start + 200, true); // file page 328: the second folio lies inside
    expect(statsDelta(h, before).ptePopulated).toBe(256);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});
