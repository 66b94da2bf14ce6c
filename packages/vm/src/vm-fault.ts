import type { Mm } from './mm.js';
import { PT_NONE } from './pgtable.js';
import type { Vma } from './vma.js';

/** include/linux/mm_types.h enum fault_flag: the access that faulted (from the #PF error code). */
export const FAULT_FLAG_WRITE = 1;
export const FAULT_FLAG_USER = 2;
export const FAULT_FLAG_INSTRUCTION = 4;

/**
 * include/linux/mm.h struct vm_fault: the state of one fault as it flows down the fault path.
 * Preallocated and reset per fault (the fault path allocates nothing). It also carries the
 * set_pte_range() decision of the path that maps (writable, dirty, anon) and whether that path
 * charges guest.map_page (the anonymous and CoW paths do not).
 */
export class VmFault {
  mm: Mm | null = null;
  vma: Vma | null = null;
  /** The faulting page (vmf->address), or -1 when no page is being faulted (map-on-io). */
  vpn = -1;
  pgoff = 0;
  /** FAULT_FLAG_* bits. */
  flags = 0;
  /** The PMD table and the index of the faulting address in it (-1: not looked up). */
  pmd = -1;
  pmdIdx = 0;
  /** The PTE table page, or PT_NONE / PT_HUGE. */
  pte = PT_NONE;
  /** The PTE as read by handle_pte_fault() (vmf->orig_pte). */
  origLo = 0;
  origHi = 0;
  /** The page of orig_pte that do_wp_page() works on (vmf->page), or -1 for none (the zero page). */
  page = -1;
  /** set_pte_range() decision. */
  writable = false;
  dirty = false;
  anon = false;
  chargeMapPage = true;

  /** Start a fault at page `vpn` of `vma`. */
  reset(mm: Mm, vma: Vma | null, vpn: number, flags: number): void {
    this.mm = mm;
    this.vma = vma;
    this.vpn = vpn;
    this.pgoff = vma === null ? 0 : vma.pgoffOf(vpn);
    this.flags = flags;
    this.pmd = -1;
    this.pmdIdx = 0;
    this.pte = PT_NONE;
    this.origLo = 0;
    this.origHi = 0;
    this.page = -1;
    this.writable = false;
    this.dirty = false;
    this.anon = false;
    this.chargeMapPage = true;
  }

  /** Set the set_pte_range() decision. */
  mapAs(writable: boolean, dirty: boolean, anon: boolean, chargeMapPage: boolean): void {
    this.writable = writable;
    this.dirty = dirty;
    this.anon = anon;
    this.chargeMapPage = chargeMapPage;
  }
}
