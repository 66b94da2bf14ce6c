import { frameHi, frameLo, A, D, isLeaf, LINUX_PAGE_TABLE, P, PS, RW, SW1, US, XD_HI } from '@pte/arch-x86';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';

/**
 * Page-table helpers of the guest kernel: the software walk that finds or allocates the PTE page
 * for an address (pgd_offset → p4d_alloc → pud_alloc → pmd_alloc → pte_alloc, mm/memory.c
 * __handle_mm_fault), and PTE construction (mk_pte, pfn_pte). The kernel reads its tables
 * directly and writes them only through pvops.
 */

/** _PAGE_SPECIAL (= _PAGE_SOFTW1): the zero page and other pages without a struct page refcount. */
export const PTE_SPECIAL = SW1;

/** Index of `vpn` in the table at `level` (1 = PTE ... 5 = PML5). */
export function vpnIndex(vpn: number, level: number): number {
  return Math.floor(vpn / 2 ** (9 * (level - 1))) % 512;
}

/** Halves of the virtual address of page `vpn`. */
export function vpnHi(vpn: number): number {
  return Math.floor(vpn / 1048576);
}
export function vpnLo(vpn: number): number {
  return ((vpn % 1048576) * 4096) >>> 0;
}

/** Result of `pmdLookup`: the PMD entry's table and index, for PMD-level mapping (do_set_pmd). */
export interface PmdSlot {
  table: number;
  index: number;
}

/**
 * Walk `mm`'s tables down to the PMD level for `vpn`, allocating missing PUD/PMD tables when
 * `alloc`. Returns the PMD table frame (the entry is at vpnIndex(vpn, 2)) or -1.
 */
export function pmdTableFor(k: Kernel, mm: Mm, vpn: number, alloc: boolean): number {
  const ent = k.mem.ent;
  let table = mm.root;
  for (let level = k.levels; level > 2; level--) {
    const idx = vpnIndex(vpn, level);
    const e = 2 * k.entryAt(table, idx);
    const lo = k.mem.ent[e]!;
    if ((lo & P) === 0) {
      if (!alloc) return -1;
      table = allocTable(k, mm, level - 1, table, level, idx);
      continue;
    }
    table = k.frameOf(level, lo, ent[e + 1]!);
  }
  return table;
}

/** pteTableFor() results other than a table: pmd_none (no PTE table) and pmd_trans_huge (a PMD leaf). */
export const PT_NONE = -1;
export const PT_HUGE = -2;

/**
 * The PTE page for `vpn` (pte_offset_map after pte_alloc), or PT_NONE when absent and not allocated,
 * or PT_HUGE when a PMD leaf (a 2 MiB page) maps the address. Sequential faults reuse the last answer.
 */
export function pteTableFor(k: Kernel, mm: Mm, vpn: number, alloc: boolean): number {
  // The cached answer inline, the walk out of line: kept small so that TurboFan inlines it into
  // the fault path without spending that path's inlining budget on the walk.
  if (mm.cachedPmdKey === Math.floor(vpn / 512)) return mm.cachedPt;
  return pteTableWalk(k, mm, vpn, alloc);
}

/** pteTableFor() past its one-entry cache: walk (and allocate) down to the PMD entry. */
function pteTableWalk(k: Kernel, mm: Mm, vpn: number, alloc: boolean): number {
  const pmdKey = Math.floor(vpn / 512);
  const pmd = pmdTableFor(k, mm, vpn, alloc);
  if (pmd < 0) return PT_NONE;
  const idx = vpnIndex(vpn, 2);
  const e = 2 * k.entryAt(pmd, idx);
  const lo = k.mem.ent[e]!;
  let pt: number;
  if ((lo & P) === 0) {
    if (!alloc) return PT_NONE;
    pt = allocTable(k, mm, 1, pmd, 2, idx);
  } else if (isLeaf(2, lo)) {
    return PT_HUGE;
  } else {
    pt = k.frameOf(2, lo, k.mem.ent[e + 1]!);
  }
  mm.cachedPmdKey = pmdKey;
  mm.cachedPt = pt;
  return pt;
}

/** Allocate a level-`level` table, hook it into `parent` at `idx` (pte_alloc_one + pmd_populate). */
function allocTable(k: Kernel, mm: Mm, level: number, parent: number, parentLevel: number, idx: number): number {
  const pfn = k.allocPtFrame();
  k.pv.allocPt(level, pfn, mm.root);
  const m = k.pv.mfn(pfn);
  k.pv.setUpper(parentLevel, parent, idx, frameLo(m) + LINUX_PAGE_TABLE, frameHi(m));
  mm.ptPages++;
  k.stats.ptAllocs++;
  k.charge(k.catFault, k.costs.ptAlloc);
  return pfn;
}

/**
 * A leaf PTE for frame `pfn` (mk_pte with the VMA's protections): user, present, young unless
 * `old`, writable and dirty as asked, XD unless the VMA is executable.
 */
export function mkPteLo(pfn: number, writable: boolean, young: boolean, dirty: boolean): number {
  return (frameLo(pfn) + (P | US | (writable ? RW : 0) | (young ? A : 0) | (dirty ? D : 0))) >>> 0;
}
export function mkPteHi(pfn: number, exec: boolean): number {
  return (frameHi(pfn) | (exec ? 0 : XD_HI)) >>> 0;
}

/** A PMD leaf (2 MiB) for the folio at `pfn` (do_set_pmd: read-only, young). */
export function mkPmdLo(pfn: number, young: boolean): number {
  return (frameLo(pfn) + (P | US | PS | (young ? A : 0))) >>> 0;
}

/** Frame of a present leaf PTE. */
export function ptePfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & 0xfffff) * 1048576;
}
