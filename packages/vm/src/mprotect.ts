import { configError } from '@pte/core';
import { P, RW, XD_HI } from '@pte/arch-x86';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PT_HUGE, pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { MmuGather } from './tlb-gather.js';
import { vmaModify, vmasOverlapping } from './mmap.js';
import { VM_EXEC, VM_MAYWRITE, VM_READ, VM_WRITE, type Vma } from './vma.js';
import { splitPmd } from './zap.js';

/** Protection bits for mmap/mprotect (PROT_READ/WRITE/EXEC as VM_READ/WRITE/EXEC). */
export type Prot = number;

/**
 * mm/mprotect.c mprotect(): change_protection() → change_pte_range() in lazy MMU mode with
 * ptep_modify_prot_start/commit. Removing write or exec rewrites present PTEs; adding write
 * leaves them read-only (the next write faults: reuse or COW). The range is flushed. A VMA
 * whose flags would not change is left alone, unsplit (mprotect_fixup). A PMD-mapped file folio
 * gets the new protections in place when the VMA covers its 2 MiB (change_huge_pmd), and is
 * split otherwise (__split_huge_pmd: for a file folio, zapped; the pages refault).
 */
export function mprotect(k: Kernel, mm: Mm, start: number, pages: number, prot: Prot): void {
  const end = start + pages;
  const tlb = new MmuGather(k, mm, false);
  // A refusal part-way leaves the VMAs before it changed (as Linux's loop does): flush them anyway.
  try {
    changeProtection(k, mm, start, end, prot, tlb);
  } finally {
    tlb.finish();
  }
}

/** change_protection() over the VMAs of [start, end), mprotect_fixup() splitting them. */
function changeProtection(k: Kernel, mm: Mm, start: number, end: number, prot: Prot, tlb: MmuGather): void {
  for (const v0 of vmasOverlapping(mm, start, end)) {
    if ((prot & VM_WRITE) !== 0 && (v0.flags & VM_MAYWRITE) === 0) {
      throw configError(`mprotect: cannot add write to a read-only shared mapping`);
    }
    const flags = (v0.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | prot;
    if (flags === v0.flags) continue;
    const v = vmaModify(k, mm, v0, start, end);
    v.flags = flags;
    const dropWrite = (prot & VM_WRITE) === 0;
    const noExec = (prot & VM_EXEC) === 0;
    // change_pte_range(): lazy MMU mode once per page table, as Linux holds it per PTE page.
    let lazyTable = -1;
    const leaveLazy = () => {
      if (lazyTable >= 0) k.pv.lazyLeave();
      lazyTable = -1;
    };
    for (let vpn = v.start; vpn < v.end; vpn++) {
      const pt = pteTableFor(k, mm, vpn, false);
      if (pt < 0) {
        leaveLazy();
        if (pt === PT_HUGE && changeHugePmd(k, mm, v, vpn, dropWrite, noExec, tlb)) {
          vpn = Math.max(v.start, vpn - (vpn % 512)) - 1; // split into PTEs: change those
          continue;
        }
        vpn = vpn - (vpn % 512) + 511;
        continue;
      }
      const idx = vpn % 512;
      const lo = k.readLo(pt, idx);
      if ((lo & P) === 0) continue;
      const hi = k.readHi(pt, idx);
      const nlo = dropWrite ? lo & ~RW : lo;
      const nhi = noExec ? hi | XD_HI : hi & ~XD_HI;
      if (nlo === lo && nhi >>> 0 === hi) continue;
      if (lazyTable !== pt) {
        leaveLazy();
        k.pv.lazyEnter();
        lazyTable = pt;
      }
      k.pv.ptepModifyProtStart(pt, idx);
      k.pv.ptepModifyProtCommit(pt, idx, nlo >>> 0, nhi >>> 0);
      tlb.add(vpn);
    }
    leaveLazy();
  }
}

/**
 * change_huge_pmd() for the PMD leaf mapping `vpn` in `v`, or its split when it reaches past `v`.
 * Returns true when the split left PTEs (an anonymous THP) that need the change.
 */
function changeHugePmd(
  k: Kernel,
  mm: Mm,
  v: Vma,
  vpn: number,
  dropWrite: boolean,
  noExec: boolean,
  tlb: MmuGather,
): boolean {
  const base = vpn - (vpn % 512);
  if (base < v.start || base + 512 > v.end) {
    splitPmd(k, mm, vpn);
    return pteTableFor(k, mm, vpn, false) >= 0;
  }
  const pmd = pmdTableFor(k, mm, vpn, false);
  const idx = vpnIndex(vpn, 2);
  const lo = k.readLo(pmd, idx);
  const hi = k.readHi(pmd, idx);
  const nlo = dropWrite ? lo & ~RW : lo;
  const nhi = noExec ? hi | XD_HI : hi & ~XD_HI;
  if (nlo === lo && nhi >>> 0 === hi) return false;
  k.pv.setUpper(2, pmd, idx, nlo >>> 0, nhi >>> 0);
  tlb.addPmd(base);
  return false;
}
