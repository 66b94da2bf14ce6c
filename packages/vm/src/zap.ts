import { A, D, isLeaf, P } from '@pte/arch-x86';
import { folioHeadOf, folioPut } from './folio.js';
import { freeDeposit, isAnonPmd, splitAnonPmd } from './huge-anon.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { PG_ACTIVE, PG_ANON, PG_DIRTY, PG_REFERENCED } from './page-flags.js';
import { PTE_SPECIAL, pmdTableFor, vpnIndex } from './pgtable.js';
import { swpSlot } from './swap.js';
import { MmuGather } from './tlb-gather.js';
import { VM_RAND_READ, VM_SEQ_READ, type Vma } from './vma.js';

/**
 * mm/swap.c folio_mark_accessed(): inactive,unreferenced → inactive,referenced →
 * active,unreferenced → active,referenced (linux-mm.md §5.1).
 */
export function folioMarkAccessed(k: Kernel, pfn: number): void {
  const f = k.frames;
  const n = 1 << f.order[pfn]!;
  const head = pfn - (pfn % n);
  const fl = f.flags[head]!;
  let next: number;
  if ((fl & PG_REFERENCED) === 0) next = fl | PG_REFERENCED;
  else if ((fl & PG_ACTIVE) === 0) next = (fl | PG_ACTIVE) & ~PG_REFERENCED;
  else next = fl | PG_REFERENCED;
  for (let i = 0; i < n; i++)
    f.flags[head + i] = (f.flags[head + i]! & ~(PG_ACTIVE | PG_REFERENCED)) | (next & (PG_ACTIVE | PG_REFERENCED));
}

/** vma_has_recency(): not for VM_SEQ_READ / VM_RAND_READ mappings. */
function hasRecency(vma: Vma): boolean {
  return (vma.flags & (VM_SEQ_READ | VM_RAND_READ)) === 0;
}

/**
 * zap_pte_range() over pages [start, end) of `vma`, in lazy MMU mode per page table
 * (linux-mm.md §4.2): each present PTE is cleared with ptep_get_and_clear; a young file PTE marks
 * its folio accessed (with recency), a dirty one dirties it; rmap, refcount and RSS drop, and
 * freed pages go back to the allocator. A PMD leaf fully inside the range is zapped whole; one
 * partly inside is split (a file folio's zapped, the rest refaults; an anonymous THP's turned
 * into PTEs, then zapped in part). The TLB flush is gathered in `tlb`.
 */
export function zapRange(k: Kernel, mm: Mm, vma: Vma, start: number, end: number, tlb: MmuGather): void {
  let vpn = start;
  while (vpn < end) {
    const pmdEnd = Math.min(end, vpn - (vpn % 512) + 512);
    const pmd = pmdTableFor(k, mm, vpn, false);
    if (pmd < 0) {
      vpn = pmdEnd;
      continue;
    }
    const pidx = vpnIndex(vpn, 2);
    const plo = k.readLo(pmd, pidx);
    if ((plo & P) === 0) {
      vpn = pmdEnd;
      continue;
    }
    if (isLeaf(2, plo)) {
      const base = vpn - (vpn % 512);
      if (!isAnonPmd(k, plo, k.readHi(pmd, pidx))) {
        zapPmd(k, mm, vma, pmd, pidx, base, tlb);
        vpn = pmdEnd;
        continue;
      }
      if (vpn === base && pmdEnd === base + 512) {
        zapPmd(k, mm, vma, pmd, pidx, base, tlb);
        vpn = pmdEnd;
        continue;
      }
      splitAnonPmd(k, mm, pmd, pidx, base, tlb); // zap_pmd_range(): a partial range splits the THP
    }
    const pt = k.frameOf(2, k.readLo(pmd, pidx), k.readHi(pmd, pidx));
    zapPteRange(k, mm, vma, pt, vpn, pmdEnd, tlb);
    vpn = pmdEnd;
  }
}

function zapPteRange(k: Kernel, mm: Mm, vma: Vma, pt: number, start: number, end: number, tlb: MmuGather): void {
  const pv = k.pv;
  const mem = k.mem;
  const f = k.frames;
  const recency = hasRecency(vma);
  const batched = k.policy.folioPteBatch;
  // folio_pte_batch(): the PTE before this one mapped the previous page of the same folio.
  let prevHead = -1;
  let prevPfn = -1;
  pv.lazyEnter();
  for (let vpn = start; vpn < end; vpn++) {
    const idx = vpn % 512;
    const e = k.entryAt(pt, idx);
    const lo = mem.ent[2 * e]!;
    if ((lo & P) === 0) {
      if (lo !== 0 || mem.ent[2 * e + 1] !== 0) zapSwapPte(k, mm, pt, idx, lo, mem.ent[2 * e + 1]!);
      prevHead = -1;
      continue;
    }
    pv.ptepGetAndClear(pt, idx);
    k.stats.pteZapped++;
    tlb.add(vpn);
    const unused = mem.takeMark(e);
    if (unused) k.stats.ptePrefaultedUnused++;
    const olo = pv.oldLo;
    if ((olo & PTE_SPECIAL) !== 0) {
      k.charge(k.catZap, k.costs.zapPte + k.costs.zapFolio); // zero page: no refcount, no RSS
      prevHead = -1;
      continue;
    }
    const pfn = k.frameOf(1, olo, pv.oldHi);
    const head = folioHeadOf(k, pfn);
    // The folio's rmap, reference and RSS work: once per batch of its consecutive pages (6.9+), else per PTE.
    const sameBatch = batched && head === prevHead && pfn === prevPfn + 1;
    k.charge(k.catZap, sameBatch ? k.costs.zapPte : k.costs.zapPte + k.costs.zapFolio);
    prevHead = head;
    prevPfn = pfn;
    if (!unused) k.reclaim?.markUsed(pfn);
    const anon = (f.flags[pfn]! & PG_ANON) !== 0;
    if (!anon) {
      if ((olo & D) !== 0) f.flags[pfn] = f.flags[pfn]! | PG_DIRTY;
      if ((olo & A) !== 0 && recency) folioMarkAccessed(k, pfn);
    }
    mm.addRss(anon ? MM_ANONPAGES : vma.file !== null && vma.file.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, -1);
    f.mapcount[pfn] = f.mapcount[pfn]! - 1;
    folioPut(k, pfn, 1);
  }
  pv.lazyLeave();
}

/**
 * zap_nonpresent_ptes() for a swap entry: clear it (pte_clear_not_present_full; nothing was
 * cached in the TLB) and free its slot count (free_swap_and_cache).
 */
function zapSwapPte(k: Kernel, mm: Mm, pt: number, idx: number, lo: number, hi: number): void {
  k.pv.ptepGetAndClear(pt, idx);
  k.charge(k.catZap, k.costs.zapPte + k.costs.zapFolio); // a swap entry: never batched here
  k.swap!.put(swpSlot(lo, hi));
  mm.swapEnts--;
}

/**
 * zap_huge_pmd(): clear a PMD leaf and drop its folio's mappings. A file folio is marked accessed
 * (with recency) and stays cached; an anonymous THP's last mapping frees it, and the table
 * deposited under it goes too.
 */
function zapPmd(k: Kernel, mm: Mm, vma: Vma, pmd: number, pidx: number, base: number, tlb: MmuGather): void {
  const lo = k.readLo(pmd, pidx);
  const head = k.frameOf(2, lo, k.readHi(pmd, pidx));
  k.pv.setUpper(2, pmd, pidx, 0, 0);
  k.charge(k.catZap, k.costs.zapPte + k.costs.zapFolio); // one entry, one folio
  tlb.addPmd(base);
  const f = k.frames;
  if (head === k.hugeZeroPfn) {
    // The huge zero page: no mapcount, reference or RSS to drop; its deposit goes.
    freeDeposit(k, mm, base);
    mm.dropPtCache();
    return;
  }
  const anon = (f.flags[head]! & PG_ANON) !== 0;
  if (!anon) {
    if ((lo & A) !== 0 && hasRecency(vma)) folioMarkAccessed(k, head);
    k.reclaim?.markUsed(head, 512); // no per-page use marks under a PMD
  }
  for (let i = 0; i < 512; i++) f.mapcount[head + i] = f.mapcount[head + i]! - 1;
  mm.addRss(anon ? MM_ANONPAGES : vma.file !== null && vma.file.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, -512);
  folioPut(k, head, 512);
  if (anon) freeDeposit(k, mm, base);
  mm.dropPtCache();
}

/**
 * __split_huge_pmd() of the PMD leaf mapping `vpn`: an anonymous THP becomes 512 PTEs; a file
 * folio's PMD is just zapped, and its pages refault with PTEs.
 */
export function splitPmd(k: Kernel, mm: Mm, vpn: number): void {
  const vma = mm.vmas.find(vpn)!;
  const pmd = pmdTableFor(k, mm, vpn, false);
  const pidx = vpnIndex(vpn, 2);
  const tlb = new MmuGather(k, mm, false);
  if (isAnonPmd(k, k.readLo(pmd, pidx), k.readHi(pmd, pidx))) splitAnonPmd(k, mm, pmd, pidx, vpn - (vpn % 512), tlb);
  else zapPmd(k, mm, vma, pmd, pidx, vpn - (vpn % 512), tlb);
  tlb.finish();
  mm.dropPtCache();
}

/**
 * free_pgtables() for a torn-down range: free every PTE page whose 2 MiB span no VMA covers any
 * more, and upper tables left empty, through pvops release (paravirt_release_pte...). With
 * `all`, the whole tree including the root (exit_mmap → pgd_free).
 */
export function freePgtables(k: Kernel, mm: Mm, all: boolean): void {
  freeLevel(k, mm, mm.root, k.levels, 0, all);
  mm.dropPtCache();
  if (all) {
    k.pv.releasePt(k.levels, mm.root, mm.root);
    releaseFrame(k, mm.root);
  }
}

/**
 * Free the tables under `table` (a level-`level` table covering pages from `base`) whose range no
 * VMA uses any more (all of them with `all`); recurse into the ones still needed.
 */
function freeLevel(k: Kernel, mm: Mm, table: number, level: number, base: number, all: boolean): void {
  const span = 512 ** (level - 1); // pages covered by one entry
  for (let i = 0; i < 512; i++) {
    const lo = k.readLo(table, i);
    if ((lo & P) === 0 || isLeaf(level, lo)) continue;
    const child = k.frameOf(level, lo, k.readHi(table, i));
    const start = base + i * span;
    if (all || mm.vmas.isFree(start, start + span)) {
      freeSubtree(k, mm, child, level - 1);
      k.pv.setUpper(level, table, i, 0, 0);
      k.pv.releasePt(level - 1, child, mm.root);
      releaseFrame(k, child);
      mm.ptPages--;
    } else if (level - 1 >= 2) {
      freeLevel(k, mm, child, level - 1, start, all);
    }
  }
}

/** Free every table below `table` (its entries' ranges are unused and already zapped). */
function freeSubtree(k: Kernel, mm: Mm, table: number, level: number): void {
  if (level < 2) return;
  for (let i = 0; i < 512; i++) {
    const lo = k.readLo(table, i);
    if ((lo & P) === 0 || isLeaf(level, lo)) continue;
    const child = k.frameOf(level, lo, k.readHi(table, i));
    freeSubtree(k, mm, child, level - 1);
    // free_pte_range / free_pmd_range: clear the entry before the table goes (a pinned table must
    // never point at a frame that is no longer a page table).
    k.pv.setUpper(level, table, i, 0, 0);
    k.pv.releasePt(level - 1, child, mm.root);
    releaseFrame(k, child);
    mm.ptPages--;
  }
}

function releaseFrame(k: Kernel, pfn: number): void {
  k.freePtFrame(pfn);
  k.stats.ptFrees++;
  k.charge(k.catZap, k.costs.ptFree);
}
