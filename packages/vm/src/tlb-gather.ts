import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { vpnHi, vpnLo } from './pgtable.js';

/**
 * The mmu_gather of mm/mmu_gather.c with x86's flush_tlb_mm_range() policy (arch/x86/mm/tlb.c):
 * unmapped pages are collected and flushed once at the end. A range of at most
 * `tlb_single_page_flush_ceiling` pages (33) is flushed page by page with INVLPG; a larger one,
 * or a full-mm teardown, flushes the whole address space. Only the loaded mm needs a flush (one
 * CPU, no PCID reuse of stale entries).
 */
export class MmuGather {
  private start = Infinity;
  private end = -Infinity;
  private pages = 0;

  constructor(
    private readonly k: Kernel,
    private readonly mm: Mm,
    /** tlb_gather_mmu_fullmm(): the whole address space is going away. */
    private readonly fullMm: boolean,
  ) {}

  /** tlb_remove_tlb_entry(): page `vpn` was unmapped. */
  add(vpn: number, pages = 1): void {
    if (vpn < this.start) this.start = vpn;
    if (vpn + pages > this.end) this.end = vpn + pages;
    this.pages += pages;
  }

  /** tlb_finish_mmu(): flush what was gathered. */
  finish(): void {
    const k = this.k;
    if (this.pages === 0 || k.currentMm !== this.mm) return;
    const span = this.end - this.start;
    k.stats.tlbFlushCalls++;
    k.charge(k.catFlush, k.c.flushTlbCall);
    if (this.fullMm || span > k.policy.tlbFlushCeiling) {
      k.stats.tlbFlushFull++;
      k.pv.flushTlbAll();
    } else {
      for (let v = this.start; v < this.end; v++) k.pv.flushTlbOne(vpnHi(v), vpnLo(v));
      k.stats.tlbFlushPages += span;
    }
    this.start = Infinity;
    this.end = -Infinity;
    this.pages = 0;
  }
}
