import type { Kernel } from './kernel.js';
import type { Inode } from './page-cache.js';
import { PG_LOCKED, PG_READAHEAD, PG_UPTODATE } from './page-flags.js';
import { VM_EXEC, VM_HUGEPAGE, VM_RAND_READ, VM_SEQ_READ, type Vma } from './vma.js';

/** HPAGE_PMD_ORDER on x86-64. */
const PMD_ORDER = 9;

/** MMAP_LOTSAMISS (mm/filemap.c): more misses than this switch mmap read-around off. */
export const MMAP_LOTSAMISS = 100;

/** struct file_ra_state (one per open file; here one per inode). */
export class RaState {
  start = 0;
  size = 0;
  asyncSize = 0;
  /** Folio order of the next readahead (large-folio profiles). */
  order = 0;
  mmapMiss = 0;
  /** file->f_ra.ra_pages when fadvise changed it (POSIX_FADV_SEQUENTIAL doubles it), else -1: the device's. */
  raPages = -1;
  /** FMODE_RANDOM (POSIX_FADV_RANDOM): page_cache_sync_ra reads only what was asked. */
  random = false;
}

/** The readahead size in force for a file. */
function raPagesOf(k: Kernel, inode: Inode): number {
  return inode.ra.raPages >= 0 ? inode.ra.raPages : k.raPages;
}

function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * get_init_ra_size() (mm/readahead.c): "1-2 page = 16k, 3-4 page 32k, 5-8 page = 64k, > 8 page =
 * 128k initial" for max = 32 pages.
 */
export function getInitRaSize(size: number, max: number): number {
  const n = roundupPow2(size);
  if (n <= max / 32) return n * 4;
  if (n <= max / 4) return n * 2;
  return max;
}

/** get_next_ra_size(): ×4 while below max/16, ×2 up to max/2, then max. */
export function getNextRaSize(cur: number, max: number): number {
  if (cur < max / 16) return 4 * cur;
  if (cur <= max / 2) return 2 * cur;
  return max;
}

/**
 * do_sync_mmap_readahead() (linux-mm.md §2.3) on a major fault at file page `index`:
 * VM_RAND_READ reads nothing ahead (the fault reads its page alone); VM_SEQ_READ reads
 * ra_pages ahead synchronously (page_cache_sync_ra); otherwise mmap_miss counts the miss and,
 * while there are not more than MMAP_LOTSAMISS, reads around the fault: ra_pages centred on it
 * (ra_pages/2 before) with the async marker at start + size − ra_pages/4. A VM_HUGEPAGE mapping
 * whose profile has PMD-sized page-cache folios reads two aligned 2 MiB folios instead (one with
 * MADV_RANDOM), even with readahead off — placed after the mmap_miss check as in Jan Kara's 2025
 * rework ("force_thp_readahead"); earlier kernels did it first.
 */
export function syncMmapReadahead(k: Kernel, vma: Vma, inode: Inode, index: number): void {
  const ra = inode.ra;
  const raPages = raPagesOf(k, inode);
  // MADV_HUGEPAGE with PMD-sized page-cache folios: THP readahead, even with readahead off.
  const forceThp = (vma.flags & VM_HUGEPAGE) !== 0 && k.policy.maxFolioOrder >= PMD_ORDER;
  if ((vma.flags & VM_RAND_READ) !== 0 && !forceThp) return;
  if (raPages === 0 && !forceThp) return;
  if ((vma.flags & VM_SEQ_READ) !== 0 && !forceThp) {
    pageCacheSyncRa(k, inode, index, raPages);
    return;
  }
  if ((vma.flags & (VM_SEQ_READ | VM_EXEC)) === 0 && ra.mmapMiss < MMAP_LOTSAMISS * 10) ra.mmapMiss++;
  if (ra.mmapMiss > MMAP_LOTSAMISS) return;
  if (forceThp) {
    // Two PMD folios from the aligned start ("so we get the chance to actually readahead"),
    // one unless MADV_RANDOM; the second is the async part.
    ra.start = index - (index % 512);
    ra.size = (vma.flags & VM_RAND_READ) !== 0 ? 512 : 1024;
    ra.asyncSize = 512;
    ra.order = PMD_ORDER;
    readWindow(k, inode, ra.start, ra.size, ra.asyncSize, PMD_ORDER);
    return;
  }
  ra.start = Math.max(0, index - Math.floor(raPages / 2));
  ra.size = raPages;
  ra.asyncSize = Math.floor(raPages / 4);
  ra.order = 0;
  readWindow(k, inode, ra.start, ra.size, ra.asyncSize, 0);
}

/**
 * do_async_mmap_readahead() on a minor fault that found `pfn` at `index`: mmap_miss drops for an
 * unlocked folio, and a PG_readahead folio starts the next window (page_cache_async_ra).
 */
export function asyncMmapReadahead(k: Kernel, vma: Vma, inode: Inode, index: number, pfn: number): void {
  const ra = inode.ra;
  if ((vma.flags & VM_RAND_READ) !== 0 || raPagesOf(k, inode) === 0) return;
  const flags = k.frames.flags[pfn]!;
  if ((vma.flags & (VM_SEQ_READ | VM_EXEC)) === 0 && ra.mmapMiss > 0 && (flags & PG_LOCKED) === 0) ra.mmapMiss--;
  if ((flags & PG_READAHEAD) !== 0) pageCacheAsyncRa(k, inode, index, pfn);
}

/**
 * page_cache_sync_ra() for a request of `req` pages at `index`, the initial-window form: size =
 * get_init_ra_size(req, max), async_size = size − req (or size / 2).
 */
export function pageCacheSyncRa(k: Kernel, inode: Inode, index: number, req: number): void {
  const ra = inode.ra;
  const max = raPagesOf(k, inode);
  if (ra.random) {
    readWindow(k, inode, index, req, 0, 0); // FMODE_RANDOM: force_page_cache_ra of the request alone
    return;
  }
  ra.start = index;
  ra.size = getInitRaSize(req, max);
  ra.asyncSize = ra.size > req ? ra.size - req : ra.size >> 1;
  ra.order = 0;
  readWindow(k, inode, ra.start, ra.size, ra.asyncSize, 0);
}

/**
 * page_cache_async_ra(): the marker page was reached. If it is where the state expects it, the
 * window moves on (start += size, size = get_next_ra_size, async_size = size: full pipelining);
 * otherwise the state is rebuilt from the first page not in the cache. Large-folio profiles raise
 * the folio order by 2 (ra->order += 2) and round the window's end down to the new order's
 * alignment (6.18: align = 1 << min(ra->order, ffs(max_pages) - 1)), so a 128 KiB-read stream
 * gets folios of order 0, 2, 4, 6, then 7 once, 8, and 9 from 16 MiB on (measured on 6.18.44,
 * docs/validation.md rb-seq).
 */
export function pageCacheAsyncRa(k: Kernel, inode: Inode, index: number, pfn: number): void {
  const ra = inode.ra;
  const max = raPagesOf(k, inode);
  const f = k.frames;
  const n = 1 << f.order[pfn]!;
  const head = pfn - (pfn % n);
  for (let i = 0; i < n; i++) f.flags[head + i] = f.flags[head + i]! & ~PG_READAHEAD; // folio_clear_readahead
  const expected = ra.start + ra.size - ra.asyncSize;
  if (index - (index % n) === expected - (expected % n)) {
    ra.start += ra.size;
    ra.size = Math.max(ra.size, getNextRaSize(ra.size, max));
    ra.asyncSize = ra.size;
  } else {
    let start = index + 1;
    while (start < inode.pages && start - index <= max && k.pageCache.lookup(inode, start) >= 0) start++;
    if (start - index > max) return;
    ra.start = start;
    ra.size = getNextRaSize(start - index + 1, max);
    ra.asyncSize = ra.size;
  }
  // readit: ra->order += 2, then (6.x, the large-folio profiles) the window end is rounded down
  // to 1 << min(order, ffs(max_pages) - 1) so the next window starts aligned for its folios.
  const raised = ra.order + 2;
  if (k.policy.maxFolioOrder > 0) {
    const align = 2 ** Math.min(raised, ctz(max));
    const end = ra.start + ra.size;
    const alignedEnd = end - (end % align);
    if (alignedEnd > ra.start) ra.size -= end - alignedEnd;
    ra.asyncSize = ra.size;
  }
  // page_cache_ra_order(): the order is capped by the mapping's largest folio and ilog2(ra->size).
  ra.order = Math.min(raised, k.policy.maxFolioOrder, Math.floor(Math.log2(Math.max(1, ra.size))));
  readWindow(k, inode, ra.start, ra.size, ra.asyncSize, ra.order);
}

/** ffs(n) - 1: the index of the lowest set bit (n > 0). */
function ctz(n: number): number {
  return 31 - Math.clz32(n & -n);
}

/**
 * force_page_cache_ra() (MADV_WILLNEED, fadvise WILLNEED): the request is clamped to
 * max(bdi io_pages, ra_pages) pages ("allow the read to be up to the optimal hardware IO size"),
 * then read in 2 MiB chunks (do_page_cache_ra: order-0 folios, no marker). The reads are only
 * submitted: nothing waits, and mincore() counts none of it until it completes.
 */
export function forceReadahead(k: Kernel, inode: Inode, start: number, pages: number): void {
  const n = Math.min(pages, Math.max(k.ioPages, raPagesOf(k, inode)));
  const chunk = 512;
  for (let s = start; s < start + n; s += chunk) readWindow(k, inode, s, Math.min(chunk, start + n - s), 0, 0);
}

/**
 * do_page_cache_ra() / page_cache_ra_order(): allocate folios for the pages of [start, start+size)
 * not in the cache (clipped to EOF), locked and not uptodate, PG_readahead on the one holding
 * start + size − asyncSize, and submit one read per contiguous run. Folios of `order` where the
 * range allows, smaller at the edges.
 */
export function readWindow(
  k: Kernel,
  inode: Inode,
  start: number,
  size: number,
  asyncSize: number,
  order: number,
): void {
  if (inode.shmem) return;
  const end = Math.min(start + size, inode.pages);
  const mark = asyncSize > 0 ? start + size - asyncSize : -1;
  let run = 0;
  let index = start;
  while (index < end) {
    if (k.pageCache.lookup(inode, index) >= 0) {
      if (run > 0) k.submitRead(inode, index - run, run);
      run = 0;
      index++;
      continue;
    }
    let o = order;
    while (o > 0 && (index % (1 << o) !== 0 || index + (1 << o) > end || !rangeMissing(k, inode, index, 1 << o))) o--;
    const n = 1 << o;
    const pfn = k.frames.allocOrFail(o);
    k.stats.pagesAllocated += n;
    k.charge(k.catFault, k.costs.pageAlloc);
    const hasMark = mark >= index && mark < index + n;
    k.pageCache.insert(inode, index, pfn, o, PG_LOCKED | (hasMark ? PG_READAHEAD : 0));
    k.reclaim?.markRead(pfn, n);
    k.noteRead(inode, index, pfn);
    run += n;
    index += n;
  }
  if (run > 0) k.submitRead(inode, index - run, run);
}

function rangeMissing(k: Kernel, inode: Inode, index: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (k.pageCache.lookup(inode, index + i) >= 0) return false;
  return true;
}

/** Flags of a page whose read is still in flight. */
export function inFlight(flags: number): boolean {
  return (flags & (PG_LOCKED | PG_UPTODATE)) === PG_LOCKED;
}

/** fadvise advice (mm/fadvise.c). */
export type FileAdvice = 'normal' | 'random' | 'sequential' | 'willneed';

/**
 * generic_fadvise(): NORMAL restores the device's readahead, RANDOM sets FMODE_RANDOM, SEQUENTIAL
 * doubles the file's readahead (ra_pages = bdi->ra_pages * 2), WILLNEED reads the range into the
 * page cache (force_page_cache_ra; no PTEs). Offsets in pages; `pages` 0 means to the end of the
 * file, as len 0 does.
 */
export function fadvise(k: Kernel, inode: Inode, start: number, pages: number, advice: FileAdvice): void {
  const ra = inode.ra;
  switch (advice) {
    case 'normal':
      ra.raPages = -1;
      ra.random = false;
      break;
    case 'random':
      ra.random = true;
      break;
    case 'sequential':
      ra.raPages = k.raPages * 2;
      ra.random = false;
      break;
    case 'willneed':
      forceReadahead(k, inode, start, pages === 0 ? inode.pages - start : Math.min(pages, inode.pages - start));
      break;
  }
}
