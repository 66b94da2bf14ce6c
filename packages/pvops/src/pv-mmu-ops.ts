import type { Counters } from '@pte/core';
import type { PhysMem } from '@pte/arch-x86';

/**
 * The paravirt MMU interface, modelled on x86 `struct pv_mmu_ops` (arch/x86/include/asm/paravirt_types.h)
 * plus the generic lazy-MMU wrappers. The guest kernel writes its page tables only through these
 * calls (it reads them directly, as Linux does), so each platform turns a PTE update into what it
 * really costs there: a store (native, nested paging), a hypercall or multicall batch (Xen PV), or
 * a trapped store on a write-protected frame (KVM shadow paging).
 *
 * Entries are addressed as (table frame, index) with halves (lo, hi). Frames are the guest's
 * (pfns); a backend whose hardware sees other frame numbers (Xen PV: machine frames) converts
 * both the table and the frame inside a new entry on the way in (xen_make_pte), and the kernel
 * converts frames it reads back with `pfnOf` (xen_pte_val). Calls that return an old entry leave
 * its raw value in `oldLo`/`oldHi`, so the hot path allocates nothing.
 *
 * Lazy MMU mode follows the nesting rules of the generic layer (Kevin Brodsky, "Nesting support for
 * lazy MMU mode", 2025; linux-mm.md §6): a depth count, the arch hooks called only at the outermost
 * level, and a nested leave that flushes (arch_flush_lazy_mmu_mode).
 */
/**
 * What the vmap layer offers a backend that must not pin a page with a stale writable alias
 * (seed 003): vm_unmap_aliases(), and the per-page test Nick Piggin sketched (a p→v bit).
 */
/**
 * The CPU as the guest kernel's TLB and CR3 operations see it: the hardware MMU natively, or a
 * hypervisor's virtual CPU that intercepts INVLPG and CR3 writes (KVM shadow paging).
 */
export interface GuestCpu {
  /** Frame of the top-level table the guest loaded (-1 before the first CR3 write). */
  readonly root: number;
  readonly pcid: number;
  invlpg(hi: number, lo: number): void;
  writeCr3(root: number, pcid: number): void;
  /** The guest kernel touched the contents of frame `pfn` (see Mmu.kernelAccess). */
  kernelAccess?(pfn: number): void;
}

export interface VmapAliases {
  unmapAliases(): void;
  hasAlias(pfn: number): boolean;
}

/** The ledger phase a backend charges pgd_pin / pgd_unpin to (Xen: xen_pgd_pin, xen_pgd_unpin). */
export const PGD_PIN_PHASE = 'pgd_pin_unpin';

export abstract class PvMmuOps {
  /** The guest's vmap layer, registered by it (null when the guest has none). */
  vmapAliases: VmapAliases | null = null;
  /** Old value of the last ptep_get_and_clear / ptep_modify_prot_start. */
  oldLo = 0;
  oldHi = 0;
  /** Lazy-MMU nesting depth (task_struct->lazy_mmu_state). */
  lazyDepth = 0;
  /** Entry writes issued through this interface (counter `pte.writes`). */
  pteWrites = 0;

  constructor(
    /** Platform name, e.g. "native". */
    readonly name: string,
    readonly mem: PhysMem,
  ) {}

  // --- frame contents -----------------------------------------------------------------------

  /**
   * The guest kernel accessed the contents of frames [pfn, pfn + n) itself: a write() or read()
   * copy, zeroing, a COW copy. Only a backend whose CPU runs under nested paging cares (the first access to a
   * guest frame is an EPT violation); DMA from a device does not come here.
   */
  kernelAccess(_pfn: number, _n: number): void {}

  // --- frame numbers ------------------------------------------------------------------------

  /** The machine frame behind guest frame `pfn` (Xen's P2M); the identity elsewhere. */
  mfn(pfn: number): number {
    return pfn;
  }

  /** The guest frame behind machine frame `mfn` (Xen's M2P); the identity elsewhere. */
  pfnOf(mfn: number): number {
    return mfn;
  }

  // --- PTE updates -------------------------------------------------------------------------

  /** set_pte(): one leaf entry. */
  abstract setPte(table: number, index: number, lo: number, hi: number): void;

  /**
   * set_ptes(mm, addr, ptep, pte, nr): `nr` consecutive entries of one table for one folio, the
   * frame advancing by one per entry (include/linux/pgtable.h; the default loop runs in lazy mode).
   */
  abstract setPtes(table: number, index: number, nr: number, lo: number, hi: number): void;

  /** ptep_get_and_clear(): clear an entry, old value in oldLo/oldHi. */
  abstract ptepGetAndClear(table: number, index: number): void;

  /** ptep_modify_prot_start(): begin a protection change; current value in oldLo/oldHi. */
  abstract ptepModifyProtStart(table: number, index: number): void;

  /** ptep_modify_prot_commit(): finish it with the new value. */
  abstract ptepModifyProtCommit(table: number, index: number, lo: number, hi: number): void;

  /** ptep_set_wrprotect(): clear RW of a present entry (COW protection at fork). */
  abstract ptepSetWrprotect(table: number, index: number): void;

  /** ptep_test_and_clear_young(): clear A, return whether it was set (reclaim's signal). */
  abstract ptepTestAndClearYoung(table: number, index: number): boolean;

  /** set_pmd / set_pud / set_p4d / set_pgd: an entry of an upper-level table (`level` 2..5). */
  abstract setUpper(level: number, table: number, index: number, lo: number, hi: number): void;

  // --- page-table pages ----------------------------------------------------------------------

  /**
   * paravirt_alloc_pte/pmd/pud/p4d(mm, pfn): frame `pfn` becomes a level-`level` table (zeroed)
   * of the address space whose top-level table is `root` (a new pgd passes itself).
   */
  abstract allocPt(level: number, pfn: number, root: number): void;

  /** paravirt_release_pte/...(pfn): the table frame of `root`'s address space returns to ordinary use. */
  abstract releasePt(level: number, pfn: number, root: number): void;

  /** enter_mmap (Xen: xen_pgd_pin): an address space is about to be used. */
  abstract pgdPin(root: number): void;

  /** exit_mmap (Xen: xen_pgd_unpin): the address space is being torn down. */
  abstract pgdUnpin(root: number): void;

  // --- TLB and CR3 ---------------------------------------------------------------------------

  /** flush_tlb_one_user(): one page of the current address space. */
  abstract flushTlbOne(hi: number, lo: number): void;

  /** flush_tlb_user()/flush_tlb_multi(): the whole current address space. */
  abstract flushTlbAll(): void;

  /** write_cr3(): switch address space. */
  abstract writeCr3(root: number, pcid: number): void;

  /** Flush IPIs this CPU sent (counter `smp.ipis`, published by the kernel when it has several CPUs). */
  ipisSent = 0;
  /** Flushes sent to other CPUs (calls of sendFlushIpis; under KVM, one hypercall each). */
  ipiCalls = 0;

  /**
   * pv_ops.mmu.flush_tlb_multi's delivery: send a flush to `targets` other CPUs, each of which then
   * takes an interrupt, and charge what sending costs this CPU (ledger `smp.ipi`). What the targets
   * do and how long the sender waits for them is the kernel's (smp_call_function_many_cond).
   */
  abstract sendFlushIpis(targets: number): void;

  /**
   * A KVM guest's view of another vCPU at a flush (steal_time.preempted): whether the host has
   * it preempted now (never, natively or without vCPU overcommit).
   */
  vcpuPreempted(_cpu: number): boolean {
    return false;
  }

  /**
   * kvm_flush_tlb_multi (KVM_FEATURE_PV_TLB_FLUSH): a preempted vCPU gets no IPI; KVM flushes its
   * TLB when it next enters the guest. False: the IPI waits for the vCPU to run again.
   */
  pvTlbFlush = false;

  /** Cycles a flush waits for a preempted vCPU to be scheduled again and take its IPI. */
  vcpuReschedCycles = 0;

  /**
   * pv_ops.mmu.flush_tlb_multi when the hypervisor flushes the other CPUs itself: Xen PV's
   * xen_flush_tlb_multi() makes one MMUEXT_INVLPG_MULTI (exactly one page) or
   * MMUEXT_TLB_FLUSH_MULTI hypercall for the vCPUs in `mask`, this one included. Returns false
   * where the kernel must interrupt each target itself (native_flush_tlb_multi, KVM).
   */
  flushTlbMulti(_mask: number, _hi: number, _lo: number, _onePage: boolean): boolean {
    return false;
  }

  /** Publish this backend's counters (`pte.writes`, and the platform's own). */
  addCountersTo(c: Counters): void {
    c.add(c.id('pte.writes'), this.pteWrites);
  }

  // --- traps -------------------------------------------------------------------------------

  /**
   * The CPU raised #PF for the guest. Natively it goes straight to the kernel; under Xen PV it
   * traps to Xen first and is bounced to the guest (a backend charges that here).
   */
  onPageFault(): void {}

  // --- lazy MMU mode -------------------------------------------------------------------------

  /** lazy_mmu_mode_enable(): outermost level calls arch_enter_lazy_mmu_mode(). */
  lazyEnter(): void {
    if (this.lazyDepth++ === 0) this.archEnterLazy();
  }

  /** lazy_mmu_mode_disable(): outermost level leaves; a nested level flushes. */
  lazyLeave(): void {
    if (this.lazyDepth === 0) throw new Error('lazy MMU mode left more often than entered');
    if (--this.lazyDepth === 0) this.archLeaveLazy();
    else this.archFlushLazy();
  }

  /** arch_flush_lazy_mmu_mode(): issue what is queued, stay lazy. */
  lazyFlush(): void {
    if (this.lazyDepth > 0) this.archFlushLazy();
  }

  protected abstract archEnterLazy(): void;
  protected abstract archLeaveLazy(): void;
  protected abstract archFlushLazy(): void;
}
