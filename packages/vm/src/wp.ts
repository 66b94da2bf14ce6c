import { A, D, P, RW } from '@pte/arch-x86';
import { folioGet, folioMarkDirty, folioPut } from './folio.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { PG_ANON, PG_DIRTY, PG_EXCLUSIVE, PG_UPTODATE } from './page-flags.js';
import { PTE_SPECIAL, mkPteHi, mkPteLo, vpnHi, vpnLo } from './pgtable.js';
import { VM_EXEC, VM_SHARED, type Vma } from './vma.js';

/**
 * mm/memory.c do_wp_page(): a write to a present, write-protected PTE.
 * - the zero page, a shared anonymous page, or a file page in a private mapping: copy on write
 *   (wp_page_copy): a new anonymous page, the PTE replaced with ptep_clear_flush + set_pte;
 * - an anonymous page only this mapping uses (mapcount 1, folio refcount 1): reuse it, making
 *   the PTE writable and dirty (wp_page_reuse via ptep_set_access_flags, no flush needed on x86);
 * - a file page in a shared mapping: write notification (wp_page_shared): writable, dirty, folio
 *   dirty.
 */
export function doWpPage(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  pt: number,
  idx: number,
  lo: number,
  hi: number,
): void {
  k.stats.faultsMinor++;
  const f = k.frames;
  const pfn = k.frameOf(1, lo, hi);
  if ((lo & PTE_SPECIAL) !== 0) {
    wpPageCopy(k, mm, vma, vpn, pt, idx, -1, false);
    return;
  }
  const flags = f.flags[pfn]!;
  if ((flags & PG_ANON) !== 0) {
    const order = f.order[pfn]!;
    const head = pfn - (pfn % (1 << order));
    // wp_can_reuse_anon_folio(): exclusively ours, or an order-0 folio whose last other user left,
    // or a large folio all of whose references are this mm's mappings.
    const exclusive = (flags & PG_EXCLUSIVE) !== 0;
    if (
      f.mapcount[pfn] === 1 &&
      (exclusive || (order === 0 ? f.refcount[head] === 1 : largeFolioOnlyHere(k, pt, vpn, pfn, head, order)))
    ) {
      k.stats.faultsWpReuse++;
      f.flags[pfn] = f.flags[pfn]! | PG_EXCLUSIVE;
      k.pv.setPte(pt, idx, (lo | RW | D | A) >>> 0, hi);
      return;
    }
    wpPageCopy(k, mm, vma, vpn, pt, idx, pfn, true);
    return;
  }
  if ((vma.flags & VM_SHARED) !== 0) {
    k.stats.faultsWpShared++;
    folioMarkDirty(k, pfn);
    k.pv.setPte(pt, idx, (lo | RW | D | A) >>> 0, hi);
    return;
  }
  wpPageCopy(k, mm, vma, vpn, pt, idx, pfn, true);
}

/**
 * __wp_can_reuse_large_anon_folio() (1da190f4d0a6, "COW reuse support for PTE-mapped THP", 6.15):
 * a large anonymous folio mapped more than once whose every reference is a mapping in this mm
 * (folio_large_mapcount == folio_ref_count, not maybe-mapped-shared) can be reused page by page.
 * The model checks "only this mm" by counting the folio's pages mapped in this page table where
 * they sit (an anonymous folio is mapped at consecutive addresses, naturally aligned).
 */
function largeFolioOnlyHere(k: Kernel, pt: number, vpn: number, pfn: number, head: number, order: number): boolean {
  const f = k.frames;
  const n = 1 << order;
  let mapped = 0;
  for (let i = 0; i < n; i++) mapped += f.mapcount[head + i]!;
  if (mapped <= 1 || mapped !== f.refcount[head]) return false;
  const first = vpn - (pfn - head);
  if (Math.floor(first / 512) !== Math.floor((first + n - 1) / 512)) return false;
  let here = 0;
  for (let i = 0; i < n; i++) {
    const lo = k.readLo(pt, (first + i) % 512);
    if ((lo & P) !== 0 && k.frameOf(1, lo, k.readHi(pt, (first + i) % 512)) === head + i) here++;
  }
  return here === mapped;
}

/** wp_page_copy(): new anonymous page (copied from `src`, or zeroed when src < 0), replace the PTE. */
function wpPageCopy(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  pt: number,
  idx: number,
  src: number,
  copy: boolean,
): void {
  k.stats.faultsCow++;
  vma.anonVma = true;
  const f = k.frames;
  if (src >= 0) folioGet(k, src, 1); // held across the allocation, which may reclaim
  const pfn = k.allocAnonPage(!copy);
  if (copy) k.charge(k.catFault, k.costs.pageCopy);
  f.flags[pfn] = f.flags[pfn]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  f.mapcount[pfn] = 1;
  f.refcount[pfn] = 1;
  k.reclaim?.addAnon(pfn, vpn, 1);
  // ptep_clear_flush(): clear, flush the stale translation, then install the new page.
  k.pv.ptepGetAndClear(pt, idx);
  if (k.cpu.mm === mm) {
    k.pv.flushTlbOne(vpnHi(vpn), vpnLo(vpn));
    k.stats.tlbFlushCalls++;
    k.stats.tlbFlushPages++;
    k.charge(k.catFlush, k.costs.flushTlbCall);
  }
  const m = k.pv.mfn(pfn);
  k.pv.setPte(pt, idx, mkPteLo(m, true, true, true), mkPteHi(m, (vma.flags & VM_EXEC) !== 0));
  mm.addRss(MM_ANONPAGES, 1);
  if (src >= 0) {
    const wasAnon = (f.flags[src]! & PG_ANON) !== 0;
    f.mapcount[src] = f.mapcount[src]! - 1;
    if (!wasAnon) mm.addRss(vma.file !== null && vma.file.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, -1);
    else mm.addRss(MM_ANONPAGES, -1);
    folioPut(k, src, 1);
    folioPut(k, src, 1);
  }
}
