import { frameHi, frameLo, A, D, isLeaf, LINUX_PAGE_TABLE, P, PS, RW, US, XD_HI } from '@pte/arch-x86';
import { folioGet } from './folio.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, type Mm } from './mm.js';
import { PG_ANON, PG_DIRTY, PG_EXCLUSIVE, PG_UPTODATE, PG_ZERO } from './page-flags.js';
import { mkPteHi, mkPteLo, pmdTableFor, PTE_SPECIAL } from './pgtable.js';
import type { MmuGather } from './tlb-gather.js';
import { VM_EXEC, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_WRITE, type Vma } from './vma.js';
import type { VmFault } from './vm-fault.js';

/**
 * Anonymous transparent huge pages mapped by a PMD (mm/huge_memory.c), THP enabled=madvise
 * (policy anonThp): the fault that makes one (or maps the huge zero page on a read), and what
 * every other path does with it — zap whole or split, copy at fork, reuse or split on a
 * write-protect fault. A split
 * (__split_huge_pmd_locked) turns the PMD into the page table deposited at fault time
 * (pgtable_trans_huge_deposit) holding 512 PTEs with the PMD's bits; the folio stays one order-9
 * folio, now PTE-mapped, with the same per-page mapcounts.
 */

/** The PMD-range key of a page (the deposit map's key). */
function keyOf(vpn: number): number {
  return Math.floor(vpn / 512);
}

/** thp_vma_allowable_order(PMD_ORDER) + thp_vma_suitable_order(): may a fault at `vpn` make a THP? */
export function thpAllowed(k: Kernel, vma: Vma, vpn: number): boolean {
  if (!k.policy.anonThp || vma.file !== null) return false;
  if ((vma.flags & (VM_HUGEPAGE | VM_NOHUGEPAGE)) !== VM_HUGEPAGE) return false;
  const base = vpn - (vpn % 512);
  return base >= vma.start && base + 512 <= vma.end;
}

/**
 * Is the PMD entry (a present leaf) an anonymous VMA's — an anonymous THP or the huge zero page?
 * Those are split into PTEs; a file folio's PMD is zapped instead.
 */
export function isAnonPmd(k: Kernel, lo: number, hi: number): boolean {
  const head = k.frameOf(2, lo, hi);
  return (k.frames.flags[head]! & PG_ANON) !== 0 || head === k.hugeZeroPfn;
}

/** mm_get_huge_zero_folio(): the huge zero folio, allocated and cleared on first use; -1 if no order-9 block. */
function hugeZeroFolio(k: Kernel): number {
  if (k.hugeZeroPfn >= 0) return k.hugeZeroPfn;
  const head = k.frames.allocLarge(9);
  if (head < 0) return -1;
  const f = k.frames;
  for (let i = 0; i < 512; i++) f.flags[head + i] = f.flags[head + i]! | PG_ZERO | PG_UPTODATE;
  f.refcount[head] = 1; // held for good (the shrinker that frees it is not modelled)
  k.charge(k.catFault, k.costs.pageAlloc + k.costs.pageZero * 512);
  k.pv.kernelAccess(head, 512);
  k.hugeZeroPfn = head;
  return head;
}

/**
 * The read-fault half of do_huge_pmd_anonymous_page() (transparent_hugepage_use_zero_page, on by
 * default): the huge zero page by one read-only PMD, with a deposited table; no RSS, no mapcount.
 * A later write splits it into 512 PTEs of the 4 KiB zero page and copies the one page written.
 */
export function doHugeZeroPmd(k: Kernel, vmf: VmFault): boolean {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const z = hugeZeroFolio(k);
  if (z < 0) return false;
  k.stats.faultsAnon++;
  k.stats.faultsMinor++;
  k.stats.thpZeroPmd++;
  mm.deposit.set(keyOf(vpn - (vpn % 512)), depositTable(k, mm, k.catFault));
  const m = k.pv.mfn(z);
  k.pv.setUpper(
    2,
    vmf.pmd,
    vmf.pmdIdx,
    (frameLo(m) + (P | US | PS | A)) >>> 0,
    mkPteHi(m, (vma.flags & VM_EXEC) !== 0),
  );
  k.charge(k.catFault, k.costs.mapPage + k.costs.mapFolio); // one entry, one folio
  return true;
}

/**
 * do_huge_pmd_anonymous_page() for a write fault whose PMD entry (vmf.pmd, vmf.pmdIdx) is none:
 * a zeroed order-9 folio (clear_huge_page), a page table deposited for a later split, and one
 * PMD entry, writable, dirty and young. Returns false when no order-9 block is free
 * (count_vm_event(THP_FAULT_FALLBACK)): the fault goes on with 4 KiB pages.
 */
export function doHugePmdAnonymousPage(k: Kernel, vmf: VmFault): boolean {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const head = k.frames.allocLarge(9);
  if (head < 0) {
    k.stats.thpFaultFallback++;
    return false;
  }
  vma.anonVma = true;
  k.stats.faultsAnon++;
  k.stats.faultsMinor++;
  k.stats.thpFaultAlloc++;
  k.stats.pagesAllocated += 512;
  k.charge(k.catFault, k.costs.pageAlloc + k.costs.pageZero * 512);
  k.pv.kernelAccess(head, 512); // clear_huge_page
  const f = k.frames;
  for (let i = 0; i < 512; i++)
    f.flags[head + i] = f.flags[head + i]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  const base = vpn - (vpn % 512);
  mm.deposit.set(keyOf(base), depositTable(k, mm, k.catFault));
  const m = k.pv.mfn(head);
  const writable = (vma.flags & VM_WRITE) !== 0;
  const lo = (frameLo(m) + (P | US | PS | A | D | (writable ? RW : 0))) >>> 0;
  k.pv.setUpper(2, vmf.pmd, vmf.pmdIdx, lo, mkPteHi(m, (vma.flags & VM_EXEC) !== 0));
  for (let i = 0; i < 512; i++) f.mapcount[head + i] = f.mapcount[head + i]! + 1;
  folioGet(k, head, 512);
  k.reclaim?.addAnon(head, base, 512);
  mm.addRss(MM_ANONPAGES, 512);
  k.stats.pmdMapped++;
  k.charge(k.catFault, k.costs.mapPage + k.costs.mapFolio); // one entry, one folio
  return true;
}

/** pte_alloc_one() for the deposit: a page-table page of `mm` not yet linked anywhere. */
function depositTable(k: Kernel, mm: Mm, cat: number): number {
  const pt = k.allocPtFrame();
  mm.ptPages++;
  k.stats.ptAllocs++;
  k.charge(cat, k.costs.ptAlloc);
  return pt;
}

/** pgtable_trans_huge_withdraw() + pte_free(): the deposit of a zapped PMD goes back (zap_huge_pmd). */
export function freeDeposit(k: Kernel, mm: Mm, base: number): void {
  const pt = mm.deposit.get(keyOf(base));
  if (pt === undefined) throw new Error(`mm ${mm.id}: no page table deposited under the THP at 0x${base.toString(16)}`);
  mm.deposit.delete(keyOf(base));
  k.freePtFrame(pt);
  mm.ptPages--;
  k.stats.ptFrees++;
  k.charge(k.catZap, k.costs.ptFree);
}

/**
 * __split_huge_pmd() for the anonymous PMD leaf at index `pidx` of table `pmd` (pages from
 * `base`): the deposited table gets 512 PTEs with the PMD's permission, young and dirty bits (for
 * the huge zero page: the 4 KiB zero page, special and read-only), the PMD is invalidated
 * (flushed) and then points to the table (pmd_populate).
 */
export function splitAnonPmd(k: Kernel, mm: Mm, pmd: number, pidx: number, base: number, tlb: MmuGather): void {
  const lo = k.readLo(pmd, pidx);
  const hi = k.readHi(pmd, pidx);
  const head = k.frameOf(2, lo, hi);
  const pt = mm.deposit.get(keyOf(base));
  if (pt === undefined) throw new Error(`mm ${mm.id}: no page table deposited under the THP at 0x${base.toString(16)}`);
  mm.deposit.delete(keyOf(base));
  const pv = k.pv;
  pv.allocPt(1, pt, mm.root); // paravirt_alloc_pte, as pmd_populate does
  const writable = (lo & RW) !== 0;
  const young = (lo & A) !== 0;
  const dirty = (lo & D) !== 0;
  const exec = (hi & XD_HI) === 0;
  const zero = head === k.hugeZeroPfn; // __split_huge_zero_page_pmd: 512 special PTEs of the zero page
  const z = pv.mfn(k.zeroPfn);
  pv.lazyEnter();
  for (let i = 0; i < 512; i++) {
    const m = zero ? z : pv.mfn(head + i);
    pv.setPte(
      pt,
      i,
      zero ? (mkPteLo(m, false, young, false) | PTE_SPECIAL) >>> 0 : mkPteLo(m, writable, young, dirty),
      mkPteHi(m, exec),
    );
  }
  pv.lazyLeave();
  k.charge(k.catFault, k.costs.mapPage * 512 + k.costs.mapFolio); // __split_huge_pmd_locked: one folio's 512 PTEs
  pv.setUpper(2, pmd, pidx, 0, 0); // pmdp_invalidate
  tlb.addPmd(base);
  const t = pv.mfn(pt);
  pv.setUpper(2, pmd, pidx, (frameLo(t) + LINUX_PAGE_TABLE) >>> 0, frameHi(t));
  mm.dropPtCache();
  k.stats.thpSplitPmd++;
}

/**
 * copy_huge_pmd() at fork for the parent's anonymous PMD leaf (table `pmd`, index `pidx`) mapping
 * `base`: the child gets the same folio by one PMD (old, write-protected) and a deposit of its own;
 * the parent's PMD is write-protected too, and the folio is no longer exclusive to either. The
 * child's tables come first (pte_alloc_one before the PMD is read, as Linux does): their
 * allocation may reclaim and split this very THP. Returns -1 when the leaf is gone by then (the
 * caller copies the PTEs instead), else 1 if the parent lost write access (its TLB needs a flush),
 * else 0.
 */
export function copyHugePmd(k: Kernel, child: Mm, pmd: number, pidx: number, base: number): number {
  const dst = pmdTableFor(k, child, base, true);
  const deposit = depositTable(k, child, k.catFork);
  const lo = k.readLo(pmd, pidx);
  const hi = k.readHi(pmd, pidx);
  if ((lo & P) === 0 || !isLeaf(2, lo) || !isAnonPmd(k, lo, hi)) {
    k.freePtFrame(deposit);
    child.ptPages--;
    k.stats.ptFrees++;
    return -1;
  }
  child.deposit.set(keyOf(base), deposit);
  const head = k.frameOf(2, lo, hi);
  const f = k.frames;
  if (head === k.hugeZeroPfn) {
    // The huge zero page: the same read-only PMD in the child (mm_get_huge_zero_folio).
    k.pv.setUpper(2, dst, pidx, (lo & ~A) >>> 0, hi);
    k.stats.pteCopied++;
    k.charge(k.catFork, k.costs.forkPte + k.costs.forkFolio);
    return 0;
  }
  for (let i = 0; i < 512; i++) {
    f.mapcount[head + i] = f.mapcount[head + i]! + 1;
    f.flags[head + i] = f.flags[head + i]! & ~PG_EXCLUSIVE;
  }
  folioGet(k, head, 512);
  child.addRss(MM_ANONPAGES, 512);
  const wasWritable = (lo & RW) !== 0;
  if (wasWritable) k.pv.setUpper(2, pmd, pidx, (lo & ~RW) >>> 0, hi); // pmdp_set_wrprotect
  k.pv.setUpper(2, dst, pidx, (lo & ~(RW | A)) >>> 0, hi);
  k.stats.pteCopied++;
  k.charge(k.catFork, k.costs.forkPte + k.costs.forkFolio); // one entry, one folio
  return wasWritable ? 1 : 0;
}

/**
 * do_huge_pmd_wp_page(): a write to a write-protected anonymous PMD (vmf.pmd, vmf.pmdIdx).
 * Exclusively ours (the head page AnonExclusive, or no other reference: the model counts 512 per
 * PMD mapping) → reuse it, writable and dirty; otherwise split it and let the PTE path copy the
 * one page (VM_FAULT_FALLBACK); the split's flush goes through the CPU's preallocated gather (the
 * fault path allocates nothing). Returns true when it reused the PMD.
 */
export function doHugePmdWpPage(k: Kernel, vmf: VmFault): boolean {
  const mm = vmf.mm!;
  const pmd = vmf.pmd;
  const pidx = vmf.pmdIdx;
  const lo = k.readLo(pmd, pidx);
  const hi = k.readHi(pmd, pidx);
  const head = k.frameOf(2, lo, hi);
  const f = k.frames;
  if (head !== k.hugeZeroPfn && ((f.flags[head]! & PG_EXCLUSIVE) !== 0 || f.refcount[head] === 512)) {
    for (let i = 0; i < 512; i++) f.flags[head + i] = f.flags[head + i]! | PG_EXCLUSIVE;
    k.pv.setUpper(2, pmd, pidx, (lo | RW | D | A) >>> 0, hi);
    k.stats.faultsWpReuse++;
    return true;
  }
  const tlb = k.cpu.tlb.gather(mm, false);
  splitAnonPmd(k, mm, pmd, pidx, vmf.vpn - (vmf.vpn % 512), tlb);
  tlb.finish();
  return false;
}
