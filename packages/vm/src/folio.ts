import type { Kernel } from './kernel.js';
import { PG_DIRTY } from './page-flags.js';

/**
 * Folio reference counting (include/linux/mm.h folio_get/folio_put): the count lives on the head
 * frame and counts one reference per page held (page-cache pages, PTE mappings, PMD mappings as
 * 512); when it reaches zero the whole folio returns to the buddy allocator.
 */
export function folioHeadOf(k: Kernel, pfn: number): number {
  const n = 1 << k.frames.order[pfn]!;
  return pfn - (pfn % n);
}

export function folioGet(k: Kernel, pfn: number, refs: number): void {
  const head = folioHeadOf(k, pfn);
  k.frames.refcount[head] = k.frames.refcount[head]! + refs;
}

/**
 * Drop references; frees the folio when none remain, charging guest.page_free once: a folio of any
 * order goes back to the buddy allocator in one __free_pages() / free_unref_folios() call.
 */
export function folioPut(k: Kernel, pfn: number, refs: number): void {
  const f = k.frames;
  const head = folioHeadOf(k, pfn);
  const left = f.refcount[head]! - refs;
  if (left < 0) throw new Error(`folio 0x${head.toString(16)} refcount underflow`);
  f.refcount[head] = left;
  if (left === 0) {
    const order = f.order[head]!;
    k.reclaim?.lru.remove(head, 1 << order);
    f.free(head, order);
    k.stats.pagesFreed += 1 << order;
    k.charge(k.catZap, k.costs.pageFree);
  }
}

/**
 * ->page_mkwrite of a disk filesystem's shared mapping (ext4_page_mkwrite → block_page_mkwrite,
 * called by do_shared_fault and wp_page_shared): the write notification walks the folio's blocks
 * (block_commit_write marks each buffer dirty), so guest.page_mkwrite is charged per page of the
 * folio. shmem has no ->page_mkwrite.
 */
export function pageMkwrite(k: Kernel, shmem: boolean, pfn: number): void {
  if (shmem) return;
  k.charge(k.catFault, k.costs.pageMkwrite * (1 << k.frames.order[folioHeadOf(k, pfn)]!));
}

/** folio_mark_dirty(): every page of the folio containing `pfn`. */
export function folioMarkDirty(k: Kernel, pfn: number): void {
  const f = k.frames;
  const head = folioHeadOf(k, pfn);
  const n = 1 << f.order[head]!;
  for (let i = 0; i < n; i++) f.flags[head + i] = f.flags[head + i]! | PG_DIRTY;
}
