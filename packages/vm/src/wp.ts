import { A, D, P, RW } from '@pte/arch-x86';
import { folioGet, folioMarkDirty, folioPut, pageMkwrite } from './folio.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from './mm.js';
import { PG_ANON, PG_DIRTY, PG_EXCLUSIVE, PG_UPTODATE } from './page-flags.js';
import { PTE_SPECIAL, mkPteHi, mkPteLo } from './pgtable.js';
import { flushTlbPage } from './tlb-gather.js';
import { VM_EXEC, VM_SHARED } from './vma.js';
import type { VmFault } from './vm-fault.js';

/**
 * mm/memory.c do_wp_page(): a write to a present, write-protected PTE (vmf.origLo/origHi, entry
 * vmf.vpn of table vmf.pte).
 * - the zero page, a shared anonymous page, or a file page in a private mapping: copy on write
 *   (wp_page_copy);
 * - an anonymous page only this mapping uses (mapcount 1, folio refcount 1): reuse it
 *   (wp_page_reuse);
 * - a file page in a shared mapping: write notification (wp_page_shared).
 */
export function doWpPage(k: Kernel, vmf: VmFault): void {
  k.stats.faultsMinor++;
  const f = k.frames;
  const lo = vmf.origLo;
  const pfn = k.frameOf(1, lo, vmf.origHi);
  if ((lo & PTE_SPECIAL) !== 0) {
    vmf.page = -1; // vm_normal_page(): the zero page has no page to copy from
    wpPageCopy(k, vmf);
    return;
  }
  vmf.page = pfn;
  const flags = f.flags[pfn]!;
  if ((flags & PG_ANON) !== 0) {
    const order = f.order[pfn]!;
    const head = pfn - (pfn % (1 << order));
    // wp_can_reuse_anon_folio(): exclusively ours, or an order-0 folio whose last other user left,
    // or a large folio all of whose references are this mm's mappings.
    const exclusive = (flags & PG_EXCLUSIVE) !== 0;
    if (
      f.mapcount[pfn] === 1 &&
      (exclusive || (order === 0 ? f.refcount[head] === 1 : largeFolioOnlyHere(k, vmf.pte, vmf.vpn, pfn, head, order)))
    ) {
      k.stats.faultsWpReuse++;
      f.flags[pfn] = f.flags[pfn]! | PG_EXCLUSIVE;
      wpPageReuse(k, vmf);
      return;
    }
    wpPageCopy(k, vmf);
    return;
  }
  if ((vmf.vma!.flags & VM_SHARED) !== 0) {
    wpPageShared(k, vmf);
    return;
  }
  wpPageCopy(k, vmf);
}

/** wp_page_reuse(): the PTE made writable, dirty and young in place (ptep_set_access_flags: no flush on x86). */
function wpPageReuse(k: Kernel, vmf: VmFault): void {
  k.pv.setPte(vmf.pte, vmf.vpn % 512, (vmf.origLo | RW | D | A) >>> 0, vmf.origHi);
}

/**
 * wp_page_shared(): a write to a shared file page is the write notification (->page_mkwrite)
 * that dirties the folio (fault_dirty_shared_page), then the PTE is reused.
 */
function wpPageShared(k: Kernel, vmf: VmFault): void {
  k.stats.faultsWpShared++;
  pageMkwrite(k, vmf.vma!.file?.shmem ?? true, vmf.page);
  folioMarkDirty(k, vmf.page);
  wpPageReuse(k, vmf);
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

/**
 * wp_page_copy(): a new anonymous page, copied from vmf.page (zeroed when it is -1, the zero
 * page), replaces the PTE by ptep_clear_flush + set_pte; the old page loses this mapping.
 */
function wpPageCopy(k: Kernel, vmf: VmFault): void {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const pt = vmf.pte;
  const idx = vpn % 512;
  const src = vmf.page;
  k.stats.faultsCow++;
  vma.anonVma = true;
  const f = k.frames;
  if (src >= 0) folioGet(k, src, 1); // held across the allocation, which may reclaim
  const pfn = k.allocAnonPage(src < 0);
  if (src >= 0) k.charge(k.catFault, k.costs.pageCopy);
  f.flags[pfn] = f.flags[pfn]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  f.mapcount[pfn] = 1;
  f.refcount[pfn] = 1;
  k.reclaim?.addAnon(pfn, vpn, 1);
  // ptep_clear_flush(): clear, flush the stale translation, then install the new page.
  k.pv.ptepGetAndClear(pt, idx);
  flushTlbPage(k, mm, vpn); // ptep_clear_flush
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
