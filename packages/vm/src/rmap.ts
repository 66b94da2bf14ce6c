import { A, D, P } from '@pte/arch-x86';
import { folioPut } from './folio.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { PG_ANON, PG_DIRTY } from './page-flags.js';
import { PT_HUGE, pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { archTlbbatchFlush, flushTlbPage } from './tlb-gather.js';
import { swpHi, swpLo } from './swap.js';
import { VM_EXEC } from './vma.js';
import type { Reclaim } from './vmscan.js';
import { splitPmd } from './zap.js';

/** The reverse map (mm/rmap.c): the mappings of a folio, found through its file's VMAs or its anon rmap. */

/** Called for each PTE (level 1) or PMD leaf (level 2) mapping a folio. */
export type RmapVisitor = (mm: Mm, vpn: number, table: number, idx: number, level: number) => void;

/**
 * folio_referenced(): test-and-clear A in every PTE (or PMD) mapping the folio, found through the
 * file's mappings (the rmap's i_mmap walk). Also reports whether a mapping is executable.
 */
export function folioReferenced(r: Reclaim, head: number): { refs: number; exec: boolean } {
  const k = r.k;
  let refs = 0;
  let exec = false;
  rmapWalk(r, head, (mm, vpn, pt, idx, level) => {
    const vma = mm.vmas.find(vpn)!;
    if ((vma.flags & VM_EXEC) !== 0) exec = true;
    if (level === 1) {
      if (k.pv.ptepTestAndClearYoung(pt, idx)) refs++;
    } else {
      const lo = k.readLo(pt, idx);
      if ((lo & A) !== 0) {
        k.pv.setUpper(2, pt, idx, (lo & ~A) >>> 0, k.readHi(pt, idx)); // pmdp_test_and_clear_young
        refs++;
      }
    }
  });
  return { refs, exec };
}

/**
 * try_to_unmap(): clear every PTE mapping the folio, flushing the loaded address space's TLB
 * entry. An anonymous page's PTE then takes its swap entry (from `slots`).
 */
export function tryToUnmap(r: Reclaim, head: number): void {
  const k = r.k;
  const f = k.frames;
  const anon = (f.flags[head]! & PG_ANON) !== 0;
  if (anon) splitAnonPmds(r, head); // TTU_SPLIT_HUGE_PMD: unmap a THP page by page
  const rss = anon ? MM_ANONPAGES : k.pageCache.files[f.owner[head]!]!.shmem ? MM_SHMEMPAGES : MM_FILEPAGES;
  rmapWalk(r, head, (mm, vpn, pt, idx, level) => {
    if (level === 1) {
      const e = k.entryAt(pt, idx);
      k.pv.ptepGetAndClear(pt, idx);
      const unused = k.mem.takeMark(e);
      if (unused) k.stats.ptePrefaultedUnused++;
      const pfn = k.frameOf(1, k.pv.oldLo, k.pv.oldHi);
      if (!unused) r.readUnused[pfn] = 0;
      if ((k.pv.oldLo & D) !== 0) f.flags[pfn] = f.flags[pfn]! | PG_DIRTY;
      f.mapcount[pfn] = f.mapcount[pfn]! - 1;
      mm.addRss(rss, -1);
      if (anon) {
        const slot = r.slots[pfn - head]!;
        k.pv.setPte(pt, idx, swpLo(slot), swpHi(slot));
        mm.swapEnts++;
      }
      folioPut(k, pfn, 1);
    } else {
      k.pv.setUpper(2, pt, idx, 0, 0);
      // A PMD mapping carries no per-page use marks: its pages count as used.
      r.readUnused.fill(0, head, head + 512);
      for (let j = 0; j < 512; j++) f.mapcount[head + j] = f.mapcount[head + j]! - 1;
      mm.addRss(rss, -512);
      folioPut(k, head, 512);
      mm.dropPtCache();
    }
    k.charge(k.catReclaim, k.costs.zapPte + k.costs.zapFolio); // try_to_unmap_one: one PTE, one folio's rmap
    k.smp.reclaimUnmapped += level === 1 ? 1 : 512;
    // set_tlb_ubc_flush_pending() when other CPUs run the mm (should_defer_flush), else
    // ptep_clear_flush()'s flush_tlb_page() now.
    if (k.policy.batchedUnmapFlush && (mm.tlb.cpumask & ~(1 << k.cpu.id)) !== 0) r.ubc.add(mm.tlb.cpumask);
    else flushTlbPage(k, mm, vpn);
  });
}

/**
 * struct tlbflush_unmap_batch (current->tlb_ubc): the CPUs whose TLBs may still hold PTEs reclaim
 * unmapped without flushing (arch_tlbbatch_add_mm ORs each mm's mm_cpumask in).
 */
export class TlbUnmapBatch {
  cpumask = 0;
  flushRequired = false;

  add(mask: number): void {
    this.cpumask |= mask;
    this.flushRequired = true;
  }
}

/** try_to_unmap_flush(): flush what the batch holds (arch_tlbbatch_flush), once. */
export function tryToUnmapFlush(k: Kernel, ubc: TlbUnmapBatch): void {
  if (!ubc.flushRequired) return;
  archTlbbatchFlush(k, ubc.cpumask);
  ubc.cpumask = 0;
  ubc.flushRequired = false;
}

/** Visit every PTE (level 1) or PMD leaf (level 2) mapping the folio at `head`, in every address space. */
function rmapWalk(r: Reclaim, head: number, fn: RmapVisitor): void {
  const k = r.k;
  const f = k.frames;
  if ((f.flags[head]! & PG_ANON) !== 0) {
    rmapWalkAnon(r, head, fn);
    return;
  }
  const inode = k.pageCache.files[f.owner[head]!];
  if (inode === undefined) return;
  const n = 1 << f.order[head]!;
  const index = f.index[head]!;
  for (const mm of k.mms) {
    for (const vma of mm.vmas.all()) {
      if (vma.file !== inode || vma.pgoff >= index + n || vma.pgoff + vma.pages <= index) continue;
      for (let j = 0; j < n; j++) {
        const vpn = vma.start + (index + j - vma.pgoff);
        if (vpn < vma.start || vpn >= vma.end) continue;
        visitAt(k, mm, vpn, head, j, fn);
      }
    }
  }
}

/**
 * Call `fn` for the mapping of page `head + j` at `vpn` in `mm`, if there is one: its PTE
 * (level 1), or, for the folio's first page, a PMD leaf mapping the whole folio (level 2).
 */
function visitAt(k: Kernel, mm: Mm, vpn: number, head: number, j: number, fn: RmapVisitor): void {
  const pt = pteTableFor(k, mm, vpn, false);
  if (pt === PT_HUGE) {
    const pmd = pmdTableFor(k, mm, vpn, false);
    const pidx = vpnIndex(vpn, 2);
    if (j === 0 && k.frameOf(2, k.readLo(pmd, pidx), k.readHi(pmd, pidx)) === head) fn(mm, vpn, pmd, pidx, 2);
    return;
  }
  if (pt < 0) return;
  const idx = vpn % 512;
  const lo = k.readLo(pt, idx);
  if ((lo & P) !== 0 && k.frameOf(1, lo, k.readHi(pt, idx)) === head + j) fn(mm, vpn, pt, idx, 1);
}

/** split_huge_pmd_address() in every address space that maps the anonymous folio `head` by a PMD. */
function splitAnonPmds(r: Reclaim, head: number): void {
  const k = r.k;
  if (k.frames.order[head] !== 9) return;
  const vpn = r.anonVpn[head]!;
  for (const mm of k.mms) {
    visitAt(k, mm, vpn, head, 0, (m, v, _t, _i, level) => {
      if (level === 2) splitPmd(k, m, v);
    });
  }
}

/** rmap_walk_anon(): the anonymous folio's pages at their virtual pages in every address space that maps them. */
function rmapWalkAnon(r: Reclaim, head: number, fn: RmapVisitor): void {
  const k = r.k;
  const f = k.frames;
  const n = 1 << f.order[head]!;
  for (let j = 0; j < n; j++) {
    if (f.mapcount[head + j] === 0) continue;
    const vpn = r.anonVpn[head + j]!;
    for (const mm of k.mms) visitAt(k, mm, vpn, head, j, fn);
  }
}
