import { folioGet } from './folio.js';
import type { Inode } from './page-cache.js';
import type { Kernel } from './kernel.js';
import { PG_ANON, PG_READAHEAD, PG_UPTODATE } from './page-flags.js';
import { asyncMmapReadahead, inFlight, pageCacheAsyncRa, pageCacheSyncRa, RaState, readWindow, syncMmapReadahead } from './readahead.js';
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
    for (let i = index; i < last; ) {
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
