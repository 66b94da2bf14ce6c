import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { vpnHi, vpnLo } from './pgtable.js';
import { FLUSH_FULL, FLUSH_RANGE, flushTlbMmRange } from './tlb-flush.js';

/**
 * The mmu_gather of mm/mmu_gather.c with x86's flush_tlb_mm_range() policy (arch/x86/mm/tlb.c):
 * unmapped pages are collected and flushed once at the end. A range of at most
 * `tlb_single_page_flush_ceiling` entries (33) is flushed entry by entry with INVLPG — a page
 * each, or 2 MiB each when only PMD leaves were cleared; a larger one, or a full-mm teardown,
 * flushes the whole address space. Which CPUs flush, and how, is flush_tlb_mm_range()'s decision
 * (tlb-flush.ts): with one CPU, the CPU flushes only if it has the mm loaded.
 */
export class MmuGather {
  private start = Infinity;
  private end = -Infinity;
  private pages = 0;
  /** cleared_ptes / cleared_pmds: the flush stride is a page if any PTE went, else 2 MiB. */
  private ptes = false;

  constructor(
    private readonly k: Kernel,
    private mm: Mm | null,
    /** tlb_gather_mmu_fullmm(): the whole address space is going away. */
    private fullMm: boolean,
  ) {}

  /**
   * tlb_gather_mmu(): start gathering for `mm` afresh, as a new gather would. Lets a preallocated
   * gather (Cpu.tlb) serve a path that must not allocate.
   */
  gather(mm: Mm, fullMm: boolean): this {
    this.mm = mm;
    this.fullMm = fullMm;
    this.start = Infinity;
    this.end = -Infinity;
    this.pages = 0;
    this.ptes = false;
    return this;
  }

  /** tlb_remove_tlb_entry(): page `vpn` was unmapped. */
  add(vpn: number, pages = 1): void {
    this.extend(vpn, pages);
    this.ptes = true;
  }

  /** tlb_remove_pmd_tlb_entry(): the 2 MiB PMD leaf at `base` was cleared (or invalidated for a split). */
  addPmd(base: number): void {
    this.extend(base, 512);
  }

  private extend(vpn: number, pages: number): void {
    if (vpn < this.start) this.start = vpn;
    if (vpn + pages > this.end) this.end = vpn + pages;
    this.pages += pages;
  }

  /** tlb_finish_mmu(): flush what was gathered. */
  finish(): void {
    const k = this.k;
    if (this.pages === 0) return;
    // tlb_get_unmap_shift(): flush_tlb_mm_range() counts entries in strides of the largest
    // mapping size cleared everywhere in the range (one INVLPG per 2 MiB when only PMDs went).
    const stride = this.ptes ? 1 : 512;
    const entries = Math.ceil((this.end - this.start) / stride);
    const cpu = k.cpu;
    const plan = flushTlbMmRange(
      this.mm!.tlb,
      k.tlbStates,
      cpu.id,
      {
        strides: this.fullMm ? 0 : entries,
        // free_pgtables() is not gathered yet: it matters only to lazy CPUs, and one CPU has none.
        freedTables: false,
        ceiling: k.policy.tlbFlushCeiling,
        now: k.now(),
        trimInterval: k.trimIntervalCycles,
      },
      cpu.flushPlan,
    );
    const local = plan.action[cpu.id];
    if (local === FLUSH_FULL) {
      k.stats.tlbFlushCalls++;
      k.charge(k.catFlush, k.costs.flushTlbCall);
      k.stats.tlbFlushFull++;
      k.pv.flushTlbAll();
    } else if (local === FLUSH_RANGE) {
      k.stats.tlbFlushCalls++;
      k.charge(k.catFlush, k.costs.flushTlbCall);
      for (let v = this.start; v < this.end; v += stride) k.pv.flushTlbOne(vpnHi(v), vpnLo(v));
      k.stats.tlbFlushPages += entries;
    }
    this.start = Infinity;
    this.end = -Infinity;
    this.pages = 0;
    this.ptes = false;
  }
}
