import { flushTlbMm } from './tlb-gather.js';
import { A, D, isLeaf, P, RW } from '@pte/arch-x86';
import { folioGet, folioHeadOf } from './folio.js';
import { copyHugePmd, isAnonPmd } from './huge-anon.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { PG_ANON, PG_EXCLUSIVE } from './page-flags.js';
import { swpSlot } from './swap.js';
import { PTE_SPECIAL, pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { VM_COPY_ON_FORK, VM_MAYWRITE, VM_SHARED, type Vma } from './vma.js';

/**
 * kernel/fork.c dup_mmap(): the child gets a copy of every VMA; page tables are copied only where
 * vma_needs_copy() says so (an anon_vma, or VM_COPY_ON_FORK), linux-mm.md §4.1: shared and
 * never-written private file mappings are left for the child to refault. COW-protected parent
 * PTEs are flushed from the parent's TLB at the end (flush_tlb_mm).
 */
export function dupMmap(k: Kernel, parent: Mm, child: Mm): void {
  let protectedAny = false;
  for (const vma of parent.vmas.all()) {
    const cvma = vma.clone();
    child.vmas.insert(cvma);
    if (vma.anonVma || (vma.flags & VM_COPY_ON_FORK) !== 0) {
      protectedAny = copyPageRange(k, parent, child, vma) || protectedAny;
    }
  }
  child.brkStart = parent.brkStart; // dup_mm copies the whole mm_struct, the break included
  child.brk = parent.brk;
  if (protectedAny) flushTlbMm(k, parent, 0, 0, 1, k.policy.tlbFlushCeiling); // flush_tlb_mm(oldmm)
  k.stats.forks++;
}

/**
 * copy_page_range() → copy_pte_range() for one VMA, in lazy MMU mode per page table. Present
 * PTEs: the folio gains a mapping and a reference; in a COW mapping a writable PTE is
 * write-protected in the parent and copied read-only; a shared mapping's child PTE is clean;
 * every child PTE is old (pte_mkold), linux-mm.md §4.1; a swap entry is shared (swap_duplicate). PMD-mapped file folios are not copied
 * (the child refaults them); an anonymous THP is shared by one PMD each (copy_huge_pmd). Returns true if any parent PTE was write-protected.
 */
function copyPageRange(k: Kernel, parent: Mm, child: Mm, vma: Vma): boolean {
  const cow = (vma.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  const f = k.frames;
  const pv = k.pv;
  const mem = k.mem;
  let protectedAny = false;
  let vpn = vma.start;
  while (vpn < vma.end) {
    const pmdEnd = Math.min(vma.end, vpn - (vpn % 512) + 512);
    const pmd = pmdTableFor(k, parent, vpn, false);
    const plo = pmd < 0 ? 0 : k.readLo(pmd, vpnIndex(vpn, 2));
    if ((plo & P) !== 0 && isLeaf(2, plo) && isAnonPmd(k, plo, k.readHi(pmd, vpnIndex(vpn, 2)))) {
      const copied = copyHugePmd(k, child, pmd, vpnIndex(vpn, 2), vpn - (vpn % 512));
      if (copied === 1) protectedAny = true;
      if (copied >= 0) {
        vpn = pmdEnd;
        continue;
      }
    }
    const plo2 = pmd < 0 ? 0 : k.readLo(pmd, vpnIndex(vpn, 2)); // reclaim may have split the THP meanwhile
    if ((plo2 & P) === 0 || isLeaf(2, plo2)) {
      vpn = pmdEnd;
      continue;
    }
    const src = k.frameOf(2, plo2, k.readHi(pmd, vpnIndex(vpn, 2)));
    let dst = -1;
    // folio_pte_batch(): the PTE before this one mapped the previous page of the same folio.
    const batched = k.policy.folioPteBatch;
    let prevHead = -1;
    let prevPfn = -1;
    pv.lazyEnter();
    for (let v = vpn; v < pmdEnd; v++) {
      const idx = v % 512;
      const e = 2 * k.entryAt(src, idx);
      if (mem.ent[e] === 0 && mem.ent[e + 1] === 0) continue;
      // The child's table first: its allocation may reclaim, which can swap out the parent's page.
      if (dst < 0) dst = pteTableFor(k, child, v, true);
      let lo = mem.ent[e]!;
      const hi = mem.ent[e + 1]!;
      if ((lo & P) === 0) {
        // copy_nonpresent_pte(): a swap entry is copied with one more slot count (swap_duplicate).
        k.swap!.dup(swpSlot(lo, hi));
        child.swapEnts++;
        k.stats.pteCopied++;
        k.charge(k.catFork, k.costs.forkPte + k.costs.forkFolio);
        pv.setPte(dst, idx, lo, hi);
        prevHead = -1;
        continue;
      }
      k.stats.pteCopied++;
      if ((lo & PTE_SPECIAL) !== 0) {
        k.charge(k.catFork, k.costs.forkPte + k.costs.forkFolio);
        prevHead = -1;
      } else {
        const pfn = k.frameOf(1, lo, hi);
        const head = folioHeadOf(k, pfn);
        // The folio's rmap duplicate and reference: once per batch of its consecutive pages (6.9+), else per PTE.
        const sameBatch = batched && head === prevHead && pfn === prevPfn + 1;
        k.charge(k.catFork, sameBatch ? k.costs.forkPte : k.costs.forkPte + k.costs.forkFolio);
        prevHead = head;
        prevPfn = pfn;
        const anon = (f.flags[pfn]! & PG_ANON) !== 0;
        f.mapcount[pfn] = f.mapcount[pfn]! + 1;
        folioGet(k, pfn, 1);
        if (anon) f.flags[pfn] = f.flags[pfn]! & ~PG_EXCLUSIVE;
        child.addRss(anon ? MM_ANONPAGES : vma.file !== null && vma.file.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, 1);
        if (cow && (lo & RW) !== 0) {
          pv.ptepSetWrprotect(src, idx);
          protectedAny = true;
          lo &= ~RW;
        }
        if (!cow) lo &= ~D;
      }
      pv.setPte(dst, idx, (lo & ~A) >>> 0, hi);
    }
    pv.lazyLeave();
    vpn = pmdEnd;
  }
  return protectedAny;
}
