import { P } from '@pte/arch-x86';
import { folioGet, folioPut } from './folio.js';
import { MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { mkPmdLo, mkPteHi, pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { fileReadWritable, setPteRange } from './set-pte-range.js';
import { VM_EXEC, VM_NOHUGEPAGE, VM_SEQ_READ } from './vma.js';
import type { VmFault } from './vm-fault.js';
import type { Inode } from './page-cache.js';
import type { Kernel } from './kernel.js';
import { PG_ANON, PG_LOCKED, PG_READAHEAD, PG_UPTODATE } from './page-flags.js';
import {
  asyncMmapReadahead,
  inFlight,
  pageCacheAsyncRa,
  pageCacheSyncRa,
  RaState,
  readWindow,
  syncMmapReadahead,
} from './readahead.js';
import type { Vma } from './vma.js';

/**
 * mm/filemap.c filemap_fault() for file page `index` of `vma` (linux-mm.md §2.3). A folio in the
 * page cache is a minor fault: do_async_mmap_readahead() may start the next window, a folio
 * still under IO is waited for (folio_lock), one not uptodate is read in place (page_not_uptodate,
 * no PGMAJFAULT). A missing folio is a major fault:
 * do_sync_mmap_readahead() reads around it (or ahead, or nothing), then the fault waits for its
 * page. A shmem page not yet cached is created zeroed, a minor fault (shmem_fault).
 * Returns the frame of the page with a reference the caller drops (folioPut) once it is mapped,
 * or -1 past EOF (SIGBUS).
 */
export function filemapFault(k: Kernel, vma: Vma, index: number): number {
  const inode = vma.file!;
  if (index >= inode.pages) return -1;
  let pfn = k.pageCache.lookup(inode, index);
  k.charge(k.catFault, k.costs.filemapLookup);
  if (pfn >= 0) {
    k.stats.faultsMinor++;
    folioGet(k, pfn, 1); // the fault's reference (filemap_get_folio): reclaim leaves the folio alone
    asyncMmapReadahead(k, vma, inode, index, pfn);
    const flags = k.frames.flags[pfn]!;
    if (inFlight(flags)) k.waitIo(pfn);
    else if ((flags & PG_UPTODATE) === 0) readFolioInPlace(k, inode, pfn);
    k.reclaim?.markUsed(pfn);
    return pfn;
  }
  if (inode.shmem) {
    k.stats.faultsMinor++;
    k.charge(k.catFault, k.costs.pageZero);
    const page = readFolio(k, inode, index, 0);
    k.pv.kernelAccess(page, 1); // a new shmem page is cleared
    folioGet(k, page, 1);
    return page;
  }
  k.stats.faultsMajor++;
  syncMmapReadahead(k, vma, inode, index);
  pfn = k.pageCache.lookup(inode, index);
  if (pfn < 0) {
    // No readahead (VM_RAND_READ, ra_pages 0, too many misses): read the one page.
    readWindow(k, inode, index, 1, 0, 0);
    pfn = k.pageCache.lookup(inode, index);
  }
  k.waitIo(pfn);
  folioGet(k, pfn, 1);
  k.reclaim?.markUsed(pfn);
  return pfn;
}

/** filemap_read_folio(): synchronously read the cached, !uptodate folio containing frame `pfn`. */
function readFolioInPlace(k: Kernel, inode: Inode, pfn: number): void {
  const f = k.frames;
  const n = 1 << f.order[pfn]!;
  const head = pfn - (pfn % n);
  if (!inode.shmem) {
    k.charge(k.catIo, k.blockDev.read(n));
    k.stats.ioRequests++;
    k.stats.ioPages += n;
  }
  for (let i = 0; i < n; i++) f.flags[head + i] = f.flags[head + i]! | PG_UPTODATE;
}

/** Read a folio of 2^order pages at `index` (aligned down) into the page cache, synchronously. */
export function readFolio(k: Kernel, inode: Inode, index: number, order: number): number {
  const n = 1 << order;
  const start = index - (index % n);
  const pfn = k.frames.allocOrFail(order);
  k.stats.pagesAllocated += n;
  k.charge(k.catFault, k.costs.pageAlloc);
  if (!inode.shmem) {
    k.charge(k.catIo, k.blockDev.read(n));
    k.stats.ioRequests++;
    k.stats.ioPages += n;
  }
  k.pageCache.insert(inode, start, pfn, order, PG_UPTODATE);
  return pfn + (index - start);
}

/**
 * How write() fills the page cache (generic_perform_write → __filemap_get_folio with a size
 * hint): each write of `chunkPages` pages creates folios of the largest naturally aligned order
 * that fits the chunk, the file and `maxOrder` (order 0 when the profile has no large folios).
 * Pages are clean afterwards (written back), uptodate and not on any mapping.
 */
export function populateByWrite(k: Kernel, inode: Inode, chunkPages: number, maxOrder: number): void {
  const pages = inode.pages;
  for (let chunk = 0; chunk < pages; chunk += chunkPages) {
    const end = Math.min(pages, chunk + chunkPages);
    let index = chunk;
    while (index < end) {
      if (k.pageCache.lookup(inode, index) >= 0) {
        index++;
        continue;
      }
      let order = maxOrder;
      while (order > 0 && (index % (1 << order) !== 0 || index + (1 << order) > end)) order--;
      const pfn = k.frames.allocOrFail(order);
      k.stats.pagesAllocated += 1 << order;
      k.pageCache.insert(inode, index, pfn, order, PG_UPTODATE);
      k.pv.kernelAccess(pfn, 1 << order); // copy_from_user into the folio
      index += 1 << order;
    }
  }
}

/** True if the frame belongs to an anonymous folio. */
export function isAnonFrame(k: Kernel, pfn: number): boolean {
  return (k.frames.flags[pfn]! & PG_ANON) !== 0;
}

/**
 * How a sequential read() of the whole file, `readPages` pages per call, fills the page cache:
 * filemap_get_pages() for each call, through the kernel's own readahead — page_cache_sync_ra() when
 * the first page is missing (the initial window, get_init_ra_size), page_cache_async_ra() on each
 * PG_readahead folio the call reaches (the next window, get_next_ra_size up to ra_pages, the folio
 * order raised by 2 and the window end aligned on large-folio profiles) — then the call waits for
 * its pages and copies them out (copy_to_user reads each folio). Every read has completed at the end.
 */
export function populateByRead(k: Kernel, inode: Inode, readPages: number): void {
  const pages = inode.pages;
  const f = k.frames;
  const step = Math.max(1, readPages);
  for (let index = 0; index < pages; index += step) {
    const last = Math.min(pages, index + step);
    if (k.pageCache.lookup(inode, index) < 0) pageCacheSyncRa(k, inode, index, last - index);
    for (let i = index; i < last;) {
      const pfn = k.pageCache.lookup(inode, i);
      if (pfn < 0) {
        readFolio(k, inode, i, 0); // readahead off: read_folio of just this page
        continue;
      }
      const n = 1 << f.order[pfn]!;
      const head = pfn - (pfn % n);
      if ((f.flags[head]! & PG_READAHEAD) !== 0) pageCacheAsyncRa(k, inode, i, pfn);
      if (inFlight(f.flags[head]!)) k.waitIo(head);
      k.pv.kernelAccess(head, n);
      i += n - (i % n);
    }
  }
  for (let i = 0; i < pages; i++) {
    const pfn = k.pageCache.lookup(inode, i);
    if (pfn >= 0 && inFlight(f.flags[pfn]!)) k.waitIo(pfn); // async windows past the last read
  }
  // The reader closes its file: a later open (the mmap) starts from a fresh file_ra_state.
  Object.assign(inode.ra, new RaState());
}

/**
 * mm/filemap.c filemap_map_pages() (linux-mm.md §1.3): map every page of [startPgoff, endPgoff]
 * (clipped to EOF) that is cached, uptodate, unlocked and not marked PG_readahead, whose PTE is
 * none. Pages not in the page cache are never read. The first folio may be mapped by one PMD entry
 * if the PMD is none and the folio is PMD-sized (filemap_map_pmd); a large folio that lies inside
 * i_size, the VMA and one page table is mapped whole, even beyond the window
 * (filemap_map_folio_range); otherwise only its pages inside the window. Under 6.18's strict EOF
 * test (policy mapPagesEofStrict) a folio ending at EOF counts as crossing it.
 */
export function filemapMapPages(k: Kernel, vmf: VmFault, startPgoff: number, endPgoff: number): boolean {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const faultVpn = vmf.vpn;
  const inode = vma.file!;
  const f = k.frames;
  const end = Math.min(endPgoff, inode.pages - 1);
  const fileEnd = k.policy.mapPagesEofStrict ? inode.pages - 1 : inode.pages;
  let mapped = false;
  let first = true;
  let index = startPgoff;
  while (index <= end) {
    k.charge(k.catFault, k.costs.filemapLookup);
    const pfn = k.pageCache.lookup(inode, index);
    if (pfn < 0) {
      index++;
      continue;
    }
    const flags = f.flags[pfn]!;
    const order = f.order[pfn]!;
    const n = 1 << order;
    const headIndex = index - (index % n);
    const head = pfn - (index - headIndex);
    if ((flags & PG_UPTODATE) === 0 || (flags & (PG_LOCKED | PG_READAHEAD)) !== 0) {
      index = headIndex + n;
      continue;
    }
    // file_end >= folio_next_index(folio): 6.18's file_end is the last page index (see the policy).
    const insideEof = inode.shmem || fileEnd >= headIndex + n;
    if (first) {
      first = false;
      if (vmf.pte < 0) {
        // filemap_map_pmd() (and its pmd_install) is skipped for a folio reaching EOF, so
        // pte_offset_map_lock() finds no table and nothing is mapped: ->fault will do it.
        if (!insideEof && k.policy.mapPagesEofStrict) return false;
        if (tryMapPmd(k, mm, vma, head, headIndex, faultVpn)) return true;
        folioGet(k, head, 1); // hold it while the PTE page is allocated (which may reclaim)
        vmf.pte = pteTableFor(k, mm, faultVpn, true);
        folioPut(k, head, 1);
      }
    }
    // Range of this folio to map: whole when it fits VMA, PMD and EOF; else the window part.
    const headVpn = vma.start + (headIndex - vma.pgoff);
    const fits =
      n > 1 &&
      headVpn >= vma.start &&
      headVpn + n <= vma.end &&
      Math.floor(headVpn / 512) === Math.floor((headVpn + n - 1) / 512) &&
      insideEof;
    const lo = fits ? headIndex : Math.max(headIndex, startPgoff);
    const hi = fits ? headIndex + n - 1 : Math.min(headIndex + n - 1, end);
    const before = k.stats.ptePopulated;
    const hit = mapFolioRange(k, vmf, head, headIndex, lo, hi);
    mapped = hit || mapped;
    // mmap_miss: every page mapped counts as a hit (2014), or only the faulting folio (current).
    const ra = inode.ra;
    if ((vma.flags & (VM_SEQ_READ | VM_EXEC)) === 0) {
      const hits = k.policy.mmapMissPerPage ? k.stats.ptePopulated - before : hit ? 1 : 0;
      ra.mmapMiss = Math.max(0, ra.mmapMiss - hits);
    }
    index = headIndex + n;
  }
  return mapped;
}

/**
 * filemap_map_folio_range(): set_pte_range() over runs of none PTEs of pages [lo, hi] of the folio
 * at frame `head` (file index `headIndex`). Returns true if `faultVpn` was mapped.
 */
function mapFolioRange(k: Kernel, vmf: VmFault, head: number, headIndex: number, lo: number, hi: number): boolean {
  const vma = vmf.vma!;
  const pt = vmf.pte;
  const faultVpn = vmf.vpn;
  const ent = k.mem.ent;
  vmf.mapAs(fileReadWritable(vma), false, false, true);
  let mapped = false;
  let runStart = -1;
  for (let i = lo; i <= hi + 1; i++) {
    let none = false;
    if (i <= hi) {
      const vpn = vma.start + (i - vma.pgoff);
      const e = 2 * k.entryAt(pt, vpn % 512);
      none = ent[e] === 0 && ent[e + 1] === 0; // pte_none: not present and not a swap entry
    }
    if (none && runStart < 0) runStart = i;
    if (!none && runStart >= 0) {
      const vpn = vma.start + (runStart - vma.pgoff);
      const n = i - runStart;
      setPteRange(k, vmf, vpn, head + (runStart - headIndex), n);
      if (faultVpn >= vpn && faultVpn < vpn + n) mapped = true;
      runStart = -1;
    }
  }
  return mapped;
}

/**
 * filemap_map_pmd() / do_set_pmd(): map a PMD-sized folio with one PMD entry when the PMD is none,
 * the folio is PMD-order and PMD-aligned in the VMA, inside the VMA, and inside i_size (shmem may
 * cross EOF). The entry is read-only and young, NX unless the VMA is executable (mk_huge_pmd with
 * vm_page_prot). Returns true if it mapped.
 */
export function tryMapPmd(k: Kernel, mm: Mm, vma: Vma, head: number, headIndex: number, faultVpn: number): boolean {
  if (!k.policy.pmdMapFileFolios || (vma.flags & VM_NOHUGEPAGE) !== 0) return false;
  if (k.frames.order[head] !== 9) return false;
  const headVpn = vma.start + (headIndex - vma.pgoff);
  if (headVpn % 512 !== 0 || headVpn < vma.start || headVpn + 512 > vma.end) return false;
  if (faultVpn < headVpn || faultVpn >= headVpn + 512) return false;
  const inode = vma.file!;
  if (!inode.shmem && headIndex + 512 > inode.pages) return false;
  const pmd = pmdTableFor(k, mm, faultVpn, true);
  const idx = vpnIndex(faultVpn, 2);
  if ((k.readLo(pmd, idx) & P) !== 0) return false;
  const m = k.pv.mfn(head); // a 2 MiB leaf needs machine-contiguous frames (native, TDP)
  k.pv.setUpper(2, pmd, idx, mkPmdLo(m, true), mkPteHi(m, (vma.flags & VM_EXEC) !== 0));
  const f = k.frames;
  for (let i = 0; i < 512; i++) f.mapcount[head + i] = f.mapcount[head + i]! + 1;
  folioGet(k, head, 512);
  mm.addRss(inode.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, 512);
  k.stats.pmdMapped++;
  k.charge(k.catFault, k.costs.mapPage + k.costs.mapFolio); // one PMD entry, one folio
  return true;
}
