import { A, P, PS } from '@pte/arch-x86';
import { filemapMapPages } from './filemap.js';
import type { Kernel } from './kernel.js';
import type { VmFault } from './vm-fault.js';

/** The fault-around window in pages of the VMA: [from, to] inclusive, as virtual page numbers. */
export interface Window {
  from: number;
  to: number;
}

/**
 * mm/memory.c do_fault_around() window geometry (linux-mm.md §1.2):
 *   from_pte = max(ALIGN_DOWN(pte_off, nr), pte_off - min(pte_off, vma_off))
 *   to_pte   = min3(from_pte + nr, PTRS_PER_PTE, pte_off + vma_pages - vma_off) - 1
 * It starts at the nr-aligned boundary below the fault, or at the VMA start when that is later,
 * and runs up to nr pages from there, clipped to the VMA end and the page table: naturally aligned
 * inside a VMA, shifted (reaching into the next aligned block) when the VMA starts mid-block.
 * Pure: exact tests.
 */
export function faultAroundWindow(vpn: number, vmaStart: number, vmaEnd: number, nr: number): Window {
  const pteOff = vpn % 512;
  const vmaOff = vpn - vmaStart;
  const fromPte = Math.max(pteOff - (pteOff % nr), pteOff - Math.min(pteOff, vmaOff));
  const toPte = Math.min(fromPte + nr, 512, pteOff + (vmaEnd - vmaStart) - vmaOff) - 1;
  const base = vpn - pteOff;
  return { from: base + fromPte, to: base + toPte };
}

/**
 * do_fault_around(): map the cached neighbours of a read fault at `vpn` through
 * filemap_map_pages(). vmf.pte is the PTE page or PT_NONE when the PMD is none. Returns true when the
 * faulting address itself got mapped (VM_FAULT_NOPAGE: no ->fault needed).
 */
export function doFaultAround(k: Kernel, vmf: VmFault): boolean {
  const vma = vmf.vma!;
  const w = faultAroundWindow(vmf.vpn, vma.start, vma.end, k.policy.faultAround);
  if (!k.policy.faultAroundLazy) return filemapMapPages(k, vmf, vma.pgoffOf(w.from), vma.pgoffOf(w.to));
  k.pv.lazyEnter();
  const mapped = filemapMapPages(k, vmf, vma.pgoffOf(w.from), vma.pgoffOf(w.to));
  k.pv.lazyLeave();
  return mapped;
}

/** Whether a PMD entry is a present 2 MiB leaf. */
export function isPmdLeaf(lo: number): boolean {
  return (lo & (P | PS)) === (P | PS);
}

/** The A bit of a PMD leaf (for zap's folio_mark_accessed). */
export function pmdYoung(lo: number): boolean {
  return (lo & A) !== 0;
}
