import { CycleLedger, resolveCosts, type CostTable, type Prng } from '@pte/core';
import { A, RW, type PhysMem } from '@pte/arch-x86';
import { PVOPS_COSTS, type PvopsCostKey } from './costs.js';
import { PvMmuOps, type GuestCpu } from './pv-mmu-ops.js';

/**
 * The native backend (native_set_pte & co., arch/x86/include/asm/pgtable_64.h): plain stores into
 * guest memory; lazy MMU mode does nothing on bare metal (UNVERIFIED in linux-mm.md: "the x86
 * native lazy-MMU no-op"). Nested paging (KVM TDP) uses this backend too: its page-table writes are
 * native.
 */
export class NativePvMmu extends PvMmuOps {
  private readonly ledger: CycleLedger;
  private readonly catWrite: number;
  private readonly cStore: number;
  private readonly cRmw: number;
  private readonly cIpiSend: number;
  /** Ledger `smp.ipi`, registered at the first IPI (a one-CPU run never has the category). */
  private catIpi = -1;

  constructor(
    mem: PhysMem,
    private readonly cpu: GuestCpu,
    ledger: CycleLedger = new CycleLedger(),
    costs: CostTable<PvopsCostKey> = resolveCosts(PVOPS_COSTS),
    name = 'native',
    /**
     * KVM's PV send-IPI (kvm_send_ipi_mask → KVM_HC_SEND_IPI, 4.19+): one hypercall of these
     * cycles carries the whole mask instead of an x2APIC ICR write (a VM exit) per target; 0 on
     * bare metal.
     */
    private readonly ipiHypercall = 0,
  ) {
    super(name, mem);
    this.ledger = ledger;
    this.catWrite = ledger.id('guest.pte_write');
    this.cStore = costs['native.pte_store'];
    this.cRmw = costs['native.pte_rmw'];
    this.cIpiSend = costs['native.ipi_send'];
  }

  /**
   * vCPU overcommit under KVM: each other vCPU is found preempted at a flush with this
   * probability (seeded), and whether the guest has the PV TLB flush. Set by the platform.
   */
  overcommit(fraction: number, prng: Prng, pvTlbFlush: boolean, reschedCycles: number): void {
    this.preemptedFraction = fraction;
    this.preemptPrng = prng;
    this.pvTlbFlush = pvTlbFlush;
    this.vcpuReschedCycles = reschedCycles;
  }

  private preemptedFraction = 0;
  private preemptPrng: Prng | null = null;

  override vcpuPreempted(_cpu: number): boolean {
    return this.preemptPrng !== null && this.preemptPrng.nextFloat() < this.preemptedFraction;
  }

  /**
   * native_flush_tlb_multi() → smp_call_function_many_cond() → send_IPI_mask: bare metal writes the
   * x2APIC ICR once per target; under KVM the guest makes one KVM_HC_SEND_IPI hypercall instead.
   */
  sendFlushIpis(targets: number): void {
    if (this.catIpi < 0) this.catIpi = this.ledger.id('smp.ipi');
    this.ipisSent += targets;
    this.ipiCalls++;
    this.ledger.charge(this.catIpi, this.ipiHypercall > 0 ? this.ipiHypercall : this.cIpiSend * targets);
  }

  setPte(table: number, index: number, lo: number, hi: number): void {
    this.mem.write(table, index, lo, hi);
    this.pteWrites++;
    this.ledger.charge(this.catWrite, this.cStore);
  }

  setPtes(table: number, index: number, nr: number, lo: number, hi: number): void {
    // The default set_ptes() loop: pte_advance_pfn() adds one frame (4096 to the low half) per entry.
    const mem = this.mem;
    for (let i = 0; i < nr; i++) {
      const l = lo + i * 4096;
      mem.write(table, index + i, l >>> 0, (hi + Math.floor(l / 4294967296)) >>> 0);
    }
    this.pteWrites += nr;
    this.ledger.charge(this.catWrite, this.cStore * nr);
  }

  ptepGetAndClear(table: number, index: number): void {
    const e = 2 * this.mem.entryIndex(table, index);
    this.oldLo = this.mem.ent[e]!;
    this.oldHi = this.mem.ent[e + 1]!;
    this.mem.write(table, index, 0, 0);
    this.pteWrites++;
    this.ledger.charge(this.catWrite, this.cRmw);
  }

  ptepModifyProtStart(table: number, index: number): void {
    this.ptepGetAndClear(table, index);
  }

  ptepModifyProtCommit(table: number, index: number, lo: number, hi: number): void {
    this.setPte(table, index, lo, hi);
  }

  ptepSetWrprotect(table: number, index: number): void {
    const e = 2 * this.mem.entryIndex(table, index);
    this.mem.write(table, index, (this.mem.ent[e]! & ~RW) >>> 0, this.mem.ent[e + 1]!);
    this.pteWrites++;
    this.ledger.charge(this.catWrite, this.cRmw);
  }

  ptepTestAndClearYoung(table: number, index: number): boolean {
    const e = 2 * this.mem.entryIndex(table, index);
    const lo = this.mem.ent[e]!;
    this.ledger.charge(this.catWrite, this.cRmw);
    if ((lo & A) === 0) return false;
    this.mem.write(table, index, (lo & ~A) >>> 0, this.mem.ent[e + 1]!);
    this.pteWrites++;
    return true;
  }

  setUpper(_level: number, table: number, index: number, lo: number, hi: number): void {
    this.setPte(table, index, lo, hi);
  }

  allocPt(_level: number, pfn: number, _root: number): void {
    this.mem.makeTable(pfn);
  }

  releasePt(_level: number, pfn: number, _root: number): void {
    this.mem.releaseTable(pfn);
  }

  pgdPin(_root: number): void {}

  pgdUnpin(_root: number): void {}

  flushTlbOne(hi: number, lo: number): void {
    this.cpu.invlpg(hi, lo);
  }

  flushTlbAll(): void {
    // flush_tlb_local(): a CR3 reload drops the non-global entries of the current PCID (no CR3 loaded yet: nothing cached).
    if (this.cpu.root >= 0) this.cpu.writeCr3(this.cpu.root, this.cpu.pcid);
  }

  writeCr3(root: number, pcid: number): void {
    this.cpu.writeCr3(root, pcid);
  }

  protected archEnterLazy(): void {}
  protected archLeaveLazy(): void {}
  protected archFlushLazy(): void {}

  override kernelAccess(pfn: number, n: number): void {
    const cpu = this.cpu;
    if (cpu.kernelAccess === undefined) return;
    for (let i = 0; i < n; i++) cpu.kernelAccess(pfn + i);
  }
}
