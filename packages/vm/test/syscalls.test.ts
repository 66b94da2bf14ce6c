/**
 * The memory system calls (mm/mmap.c, mm/mprotect.c, mm/madvise.c, fs/exec.c): placement, munmap of
 * sub-ranges, mprotect's PTE rewrite and flush, madvise, exec, and which calls split VMAs.
 */
import { ACCESS_FETCH, ACCESS_USER, D, RW, TRANSLATE_PF, XD_HI } from '@pte/arch-x86';
import {
  checkInvariants,
  FAULT_SIGSEGV,
  handleMmFault,
  MMAP_BASE_VPN,
  populateByWrite,
  VM_EXEC,
  VM_READ,
  VM_WRITE,
  vpnHi,
  vpnLo,
} from '../src/index.js';
import {
  entryAt,
  FIXED_BASE,
  makeHarness,
  mapAnon,
  mapFile,
  policyOf,
  presentPages,
  pteOf,
  statsDelta,
  statsOf,
  touch,
  touchRange,
  TOUCH_SIGNAL,
  type Harness,
} from './helpers.js';

function guest(profile = 'linux-3.15') {
  const h = makeHarness(policyOf(profile));
  const task = h.sys.spawn();
  const file = h.k.pageCache.createFile('data', 2048 * 4096);
  populateByWrite(h.k, file, 512, h.k.policy.maxFolioOrder);
  return { h, task, file };
}

describe('mmap placement', () => {
  test('top-down below the mmap base; 2 MiB and larger mappings are 2 MiB-aligned', () => {
    const { h, task } = guest();
    const a = mapAnon(h, task, 10);
    expect(a.end).toBe(MMAP_BASE_VPN);
    const b = mapAnon(h, task, 600);
    expect(b.start % 512).toBe(0);
    expect(b.end).toBeLessThanOrEqual(a.start);
    const c = mapAnon(h, task, 3);
    expect(c.end).toBe(a.start);
  });

  test('MAP_FIXED replaces what was there (munmap first)', () => {
    const { h, task } = guest();
    const a = mapAnon(h, task, 64, FIXED_BASE);
    touchRange(h, task, a, 0, 64, true);
    expect(task.mm.rssPages).toBe(64);
    const b = mapAnon(h, task, 16, FIXED_BASE + 8);
    expect(task.mm.vmas.size).toBe(3);
    expect(task.mm.rssPages).toBe(48);
    expect(presentPages(h, task, b)).toEqual([]);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('MAP_SHARED|MAP_ANONYMOUS is shmem: read faults fault around, RSS is shmem', () => {
    const { h, task } = guest();
    const v = h.sys.mmap(task, { pages: 64, prot: VM_READ | VM_WRITE, shared: true, file: null, fixedVpn: FIXED_BASE });
    expect(v.file!.shmem).toBe(true);
    touch(h, task, v.start + 2, true); // shmem write: its page is created (no IO), mapped writable
    const s0 = statsOf(h);
    touch(h, task, v.start + 3, false);
    // Only cached pages are mapped: page 2 is cached (and mapped), 3 is new: no neighbours.
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, ptePopulated: 1 });
    expect(h.k.stats.ioRequests).toBe(0);
    expect(task.mm.rss).toEqual(new Float64Array([0, 0, 2]));
    // shmem read faults map writable (no write notification needed).
    expect(pteOf(h, task, v.start + 3)![0] & RW).toBe(RW);
  });

  test('a new shmem page is allocated zeroed, not read: a minor fault without IO', () => {
    const { h, task } = guest();
    const v = h.sys.mmap(task, { pages: 8, prot: VM_READ | VM_WRITE, shared: true, file: null, fixedVpn: FIXED_BASE });
    const s0 = statsOf(h);
    touch(h, task, v.start, false);
    touch(h, task, v.start + 1, true);
    const d = statsDelta(h, s0);
    expect(d).toMatchObject({ faults: 2, faultsMinor: 2, pagesAllocated: 2 });
    expect(d.faultsMajor).toBeUndefined();
    expect(d.ioRequests).toBeUndefined();
    expect(h.k.blockDev.requests).toBe(0);
  });
});

describe('munmap', () => {
  test('a sub-range: PTEs zapped, VMA split, RSS and tables right, range flushed', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 1024, FIXED_BASE);
    touchRange(h, task, v, 0, 1024, true);
    const tables = h.mem.tableCount;
    const s0 = statsOf(h);
    h.sys.munmap(task, FIXED_BASE + 100, 512); // [100, 612): half of each page table
    const d = statsDelta(h, s0);
    expect(d).toMatchObject({ pteZapped: 512, pagesFreed: 512, tlbFlushCalls: 1, tlbFlushFull: 1 });
    expect(task.mm.vmas.all().map((x) => [x.start - FIXED_BASE, x.end - FIXED_BASE])).toEqual([
      [0, 100],
      [612, 1024],
    ]);
    expect(task.mm.rssPages).toBe(512);
    expect(h.mem.tableCount).toBe(tables); // both page tables still in use
    expect(touch(h, task, FIXED_BASE + 300, false)).toBe(TOUCH_SIGNAL);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('a whole page table unmapped frees it; a small range is flushed page by page', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 1024, FIXED_BASE);
    touchRange(h, task, v, 0, 1024, true);
    const tables = h.mem.tableCount;
    h.sys.munmap(task, FIXED_BASE + 512, 512);
    expect(h.mem.tableCount).toBe(tables - 1);
    const s0 = statsOf(h);
    h.sys.munmap(task, FIXED_BASE + 10, 5);
    expect(statsDelta(h, s0)).toMatchObject({ tlbFlushCalls: 1, tlbFlushPages: 5, pteZapped: 5 });
    expect(statsDelta(h, s0).tlbFlushFull).toBeUndefined();
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('mprotect', () => {
  test('removing write rewrites present PTEs read-only and flushes; adding it back leaves them read-only', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 16, FIXED_BASE);
    touchRange(h, task, v, 0, 16, true);
    const s0 = statsOf(h);
    h.sys.mprotect(task, v.start, 16, VM_READ);
    expect(statsDelta(h, s0)).toMatchObject({ tlbFlushCalls: 1, tlbFlushPages: 16 });
    for (let i = 0; i < 16; i++) expect(pteOf(h, task, v.start + i)![0] & (RW | D)).toBe(D);
    expect(touch(h, task, v.start, true)).toBe(TOUCH_SIGNAL);
    h.sys.mprotect(task, v.start, 16, VM_READ | VM_WRITE);
    expect(pteOf(h, task, v.start)![0] & RW).toBe(0);
    // The next write reuses the exclusive page.
    const pfn = touch(h, task, v.start, false);
    const s1 = statsOf(h);
    expect(touch(h, task, v.start, true)).toBe(pfn);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, faultsWpReuse: 1 });
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('exec: NX follows the protection', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 4, FIXED_BASE);
    touch(h, task, v.start, true);
    expect((pteOf(h, task, v.start)![1] & XD_HI) >>> 0).toBe(XD_HI);
    h.sys.mprotect(task, v.start, 4, VM_READ | VM_EXEC);
    expect(pteOf(h, task, v.start)![1] & XD_HI).toBe(0);
  });

  test('adding write to a read-only MAP_SHARED file mapping is refused', () => {
    const { h, task, file } = guest();
    const v = mapFile(h, task, file, 16, { shared: true });
    expect(() => h.sys.mprotect(task, v.start, 16, VM_READ | VM_WRITE)).toThrow(/cannot add write/);
  });

  test('a refused mprotect still flushes what it changed before the refusal', () => {
    const { h, task, file } = guest();
    // An executable anonymous mapping followed by a read-only shared file mapping.
    const a = h.sys.mmap(task, {
      pages: 4,
      prot: VM_READ | VM_WRITE | VM_EXEC,
      shared: false,
      file: null,
      fixedVpn: FIXED_BASE,
    });
    mapFile(h, task, file, 4, { shared: true, fixedVpn: FIXED_BASE + 4 });
    touch(h, task, a.start, true);
    const pfn = h.mmu.translate(vpnHi(a.start), vpnLo(a.start), ACCESS_USER | ACCESS_FETCH);
    expect(pfn).toBeGreaterThan(0); // executable, and now in the TLB
    // RW without exec over both: the anonymous part loses exec, then the file part refuses write.
    expect(() => h.sys.mprotect(task, FIXED_BASE, 8, VM_READ | VM_WRITE)).toThrow(/cannot add write/);
    expect((pteOf(h, task, a.start)![1] & XD_HI) >>> 0).toBe(XD_HI);
    expect(h.mmu.translate(vpnHi(a.start), vpnLo(a.start), ACCESS_USER | ACCESS_FETCH)).toBe(TRANSLATE_PF);
  });

  test('a protection change of a sub-range splits the VMA', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 64, FIXED_BASE);
    h.sys.mprotect(task, v.start + 16, 16, VM_READ);
    expect(task.mm.vmas.all().map((x) => [x.start - FIXED_BASE, x.end - FIXED_BASE, x.flags & VM_WRITE])).toEqual([
      [0, 16, VM_WRITE],
      [16, 32, 0],
      [32, 64, VM_WRITE],
    ]);
  });

  test('mprotect to the protection a range already has changes nothing: no split (mprotect_fixup)', () => {
    const { h, task, file } = guest();
    const v = mapFile(h, task, file, 64, { fixedVpn: FIXED_BASE });
    h.sys.mprotect(task, v.start + 3, 2, VM_READ);
    expect(task.mm.vmas.size).toBe(1);
    // So the first fault-around window is the whole aligned block.
    const s0 = statsOf(h);
    touch(h, task, v.start, false);
    expect(statsDelta(h, s0)).toMatchObject({ ptePopulated: 16 });
  });
});

describe('madvise', () => {
  test('DONTNEED zaps the range without splitting the VMA; fault-around afterwards is not clipped', () => {
    const { h, task, file } = guest();
    const v = mapFile(h, task, file, 64, { fixedVpn: FIXED_BASE });
    touchRange(h, task, v, 0, 32, false);
    const s0 = statsOf(h);
    h.sys.madvise(task, v.start + 3, 2, 'dontneed');
    expect(statsDelta(h, s0)).toMatchObject({ pteZapped: 2 });
    expect(task.mm.rssPages).toBe(30);
    // madvise_dontneed_free() does not modify the VMA (only flag-changing advice splits it).
    expect(task.mm.vmas.size).toBe(1);
    // The window of a fault at page 40 is [32, 47], and at page 3 the block [0, 15] minus what is present.
    const s1 = statsOf(h);
    touch(h, task, v.start + 3, false);
    expect(statsDelta(h, s1)).toMatchObject({ faults: 1, ptePopulated: 2 });
    // An untouched range: a DONTNEED there must not shrink the next window either.
    h.sys.madvise(task, v.start + 50, 1, 'dontneed');
    const s2 = statsOf(h);
    touch(h, task, v.start + 48, false);
    expect(statsDelta(h, s2)).toMatchObject({ faults: 1, ptePopulated: 16 });
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('DONTNEED of anonymous memory frees the pages; the next read maps the zero page', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 16, FIXED_BASE);
    touchRange(h, task, v, 0, 16, true);
    const allocated = h.k.frames.allocated;
    h.sys.madvise(task, v.start, 16, 'dontneed');
    expect(h.k.frames.allocated).toBe(allocated - 16);
    expect(task.mm.rssPages).toBe(0);
    expect(touch(h, task, v.start + 4, false)).toBe(h.k.zeroPfn);
    expect(task.mm.vmas.size).toBe(1);
  });

  test('WILLNEED reads missing pages into the page cache, maps nothing and does not split', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('cold', 64 * 4096);
    const v = mapFile(h, task, file, 64, { fixedVpn: FIXED_BASE });
    h.sys.madvise(task, v.start + 8, 8, 'willneed');
    expect(file.nrPages).toBe(8);
    expect(h.k.stats.ioPages).toBe(8);
    expect(h.k.stats.ioRequests).toBe(1);
    expect(presentPages(h, task, v)).toEqual([]);
    expect(task.mm.vmas.size).toBe(1);
    for (let i = 8; i < 16; i++) h.k.waitIo(file.cache[i]!); // let the reads complete before the touch
    const s0 = statsOf(h);
    touch(h, task, v.start + 9, false);
    expect(statsDelta(h, s0)).toMatchObject({ faults: 1, faultsMinor: 1, ptePopulated: 8 });
  });

  test('flag advice on a sub-range splits the VMA; the same advice again changes nothing', () => {
    const { h, task } = guest();
    const v = mapAnon(h, task, 64, FIXED_BASE);
    h.sys.madvise(task, v.start + 16, 16, 'random');
    expect(task.mm.vmas.size).toBe(3);
    h.sys.madvise(task, v.start + 20, 4, 'random');
    expect(task.mm.vmas.size).toBe(3);
    h.sys.madvise(task, v.start + 40, 4, 'normal');
    expect(task.mm.vmas.size).toBe(3);
  });
});

describe('exec', () => {
  test('a fresh address space; the old one is torn down', () => {
    const { h, task, file } = guest();
    const v = mapFile(h, task, file, 64);
    touchRange(h, task, v, 0, 64, false);
    mapAnon(h, task, 8);
    const old = task.mm;
    h.sys.exec(task);
    expect(task.mm).not.toBe(old);
    expect(task.mm.vmas.size).toBe(0);
    expect(h.k.mms.has(old)).toBe(false);
    expect(h.mem.tableCount).toBe(1);
    expect(h.k.stats.execs).toBe(1);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('PMD mappings and execute permission', () => {
  /** A fetch by `task` at `vpn`: the frame, or TRANSLATE_PF. */
  function fetch(h: Harness, vpn: number): number {
    return h.mmu.translate(vpnHi(vpn), vpnLo(vpn), ACCESS_USER | ACCESS_FETCH);
  }

  test('a PMD-mapped folio of a non-executable mapping is not executable', () => {
    const { h, task, file } = guest('linux-6.18');
    const v = mapFile(h, task, file, 1024);
    touch(h, task, v.start, false);
    expect(h.k.stats.pmdMapped).toBe(1);
    expect((entryAt(h, task.mm, v.start, 2)!.hi & XD_HI) >>> 0).toBe(XD_HI);
    expect(fetch(h, v.start + 5)).toBe(TRANSLATE_PF);
    // The second 2 MiB too, and PTE mappings alike.
    touch(h, task, v.start + 600, false);
    expect(fetch(h, v.start + 600)).toBe(TRANSLATE_PF);
    const w = mapFile(h, task, file, 16, { fixedVpn: FIXED_BASE });
    touch(h, task, w.start, false);
    expect((pteOf(h, task, w.start)![1] & XD_HI) >>> 0).toBe(XD_HI);
    expect(fetch(h, w.start)).toBe(TRANSLATE_PF);
    expect(h.k.stats.pmdMapped).toBe(2);
    // The fault a fetch raises is refused: the VMA is not executable.
    expect(fetch(h, v.start + 5)).toBe(TRANSLATE_PF);
    expect(handleMmFault(h.k, task.mm, v.start + 5, h.mmu.faultCode | ACCESS_USER)).toBe(FAULT_SIGSEGV);
  });

  test('a PMD-mapped folio of an executable mapping is executable', () => {
    const { h, task, file } = guest('linux-6.18');
    const v = h.sys.mmap(task, { pages: 1024, prot: VM_READ | VM_EXEC, shared: false, file });
    touch(h, task, v.start, false);
    expect(h.k.stats.pmdMapped).toBe(1);
    expect(fetch(h, v.start + 5)).toBe(file.cache[5]);
  });

  test('mprotect of a whole PMD-mapped range updates the PMD entry (change_huge_pmd)', () => {
    const { h, task, file } = guest('linux-6.18');
    const v = mapFile(h, task, file, 1024);
    touch(h, task, v.start, false);
    h.sys.mprotect(task, v.start, 1024, VM_READ | VM_EXEC);
    expect(h.k.stats.pmdMapped).toBe(1);
    expect(entryAt(h, task.mm, v.start, 2)!.hi & XD_HI).toBe(0);
    expect(fetch(h, v.start + 5)).toBe(file.cache[5]);
    h.sys.mprotect(task, v.start, 1024, VM_READ);
    expect(fetch(h, v.start + 5)).toBe(TRANSLATE_PF);
    expect(task.mm.rssPages).toBe(512);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  test('mprotect of part of a PMD-mapped range splits the PMD mapping; the pages refault with the new rights', () => {
    const { h, task, file } = guest('linux-6.18');
    const v = mapFile(h, task, file, 1024);
    touch(h, task, v.start, false);
    h.sys.mprotect(task, v.start, 16, VM_READ | VM_EXEC);
    expect(task.mm.rssPages).toBe(0);
    expect(checkInvariants(h.k)).toEqual([]);
    // Executable part: a fetch faults, the fault maps the page, the retry succeeds.
    expect(fetch(h, v.start + 5)).toBe(TRANSLATE_PF);
    touch(h, task, v.start + 5, false);
    expect(fetch(h, v.start + 5)).toBe(file.cache[5]);
    // The rest is not executable.
    touch(h, task, v.start + 100, false);
    expect(fetch(h, v.start + 100)).toBe(TRANSLATE_PF);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});
