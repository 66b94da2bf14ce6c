import type { CycleLedger } from '@pte/core';
import type { PvMmuOps } from '@pte/pvops';
import type { Mm } from './mm.js';
import { CpuTlbState, FlushTlbInfo, switchMmTlb, type FlushEnv } from './tlb-flush.js';
import type { MmuGather } from './tlb-gather.js';
import { VmFault } from './vm-fault.js';

/**
 * A CPU of the guest: the per-CPU part of the kernel's state (the address space it runs, its
 * fault context, its clock), apart from the global state on Kernel.
 */
export class Cpu {
  readonly id: number;
  /** The clock this CPU charges (with one CPU, the machine's ledger). */
  readonly ledger: CycleLedger;
  /**
   * Its pvops backend: CR3 and TLB flushes, and the lazy-MMU state (nesting depth, and under Xen
   * the queued multicalls), which Linux keeps per CPU (xen_lazy_mode, xen_mc_buffer are per-CPU).
   * With one CPU it is the machine's only backend; several CPUs get one each.
   */
  readonly pv: PvMmuOps;
  /** The address space loaded in CR3 (this_cpu(cpu_tlbstate.loaded_mm)). */
  mm: Mm | null = null;
  /**
   * The fault context (struct vm_fault lives on the faulting CPU's stack), preallocated and reset
   * per fault. It keeps the last fault's mm and page after the fault returns.
   */
  readonly vmf = new VmFault();
  /** The context of read completion (map-on-io), which can run inside a fault and must not clobber `vmf`. */
  readonly ioVmf = new VmFault();
  /**
   * The fault path's mmu_gather (do_huge_pmd_wp_page's split), preallocated like `vmf`: restarted
   * by gather() each time, so reuse is invisible.
   */
  readonly tlb: MmuGather;
  /** cpu_tlbstate: the mm loaded, lazy or not, and the generation of its TLB context. */
  readonly tlbState: CpuTlbState;
  /** The flushes this CPU starts (the per-CPU flush_tlb_info), reused. */
  readonly flushInfo: FlushTlbInfo;

  constructor(id: number, ledger: CycleLedger, pv: PvMmuOps, tlb: MmuGather, nrCpus: number, env: FlushEnv) {
    this.id = id;
    this.ledger = ledger;
    this.pv = pv;
    this.tlb = tlb;
    this.tlbState = new CpuTlbState(id);
    this.flushInfo = new FlushTlbInfo(nrCpus, env);
  }

  /**
   * switch_mm(): load `mm` into CR3 (switch_mm_irqs_off: join its mm_cpumask; init_mm, the
   * kernel's address space, has no mask and counts as no user mm loaded).
   */
  switchMm(mm: Mm): void {
    if (this.mm === mm) return;
    this.pv.writeCr3(mm.root, mm.pcid);
    this.mm = mm;
    switchMmTlb(this.tlbState, mm.isInitMm ? null : mm.tlb, this.flushInfo.env.lazyMmCpumask);
  }

  /**
   * leave_mm() in a flush IPI to a lazy CPU (flush_tlb_func): CR3 goes to swapper_pg_dir, which
   * drops the user translations (a full flush: the model's PCID is 0), and no user mm is loaded
   * until the next switch_mm loads one. The flush state has already left the mm (flushTlbMmRange).
   */
  leaveMm(): void {
    this.pv.flushTlbAll();
    this.mm = null;
  }

  /** Nothing loaded any more (the dying mm's tables must not stay in CR3): no user mm for flushes either. */
  dropMm(): void {
    this.mm = null;
    switchMmTlb(this.tlbState, null, this.flushInfo.env.lazyMmCpumask);
  }
}
