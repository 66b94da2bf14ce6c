import { CycleLedger, resolveCosts, type CostTable } from '@pte/core';
import type { PhysMem } from '@pte/arch-x86';
import { NativePvMmu, PVOPS_COSTS, type PvopsCostKey } from '@pte/pvops';
import type { ShadowMmu } from './shadow-mmu.js';

/**
 * The guest's pvops under KVM shadow paging: native stores (an HVM guest has no paravirt MMU), so
 * writes to shadowed tables reach KVM through page-track, and INVLPG / CR3 writes exit to the
 * shadow MMU (the guest CPU). A table page the guest (re)allocates drops any stale shadow of that
 * frame, as the trapped writes that clear a reused page would.
 */
export class KvmShadowPvMmu extends NativePvMmu {
  constructor(
    mem: PhysMem,
    private readonly kvm: ShadowMmu,
    ledger: CycleLedger = new CycleLedger(),
    costs: CostTable<PvopsCostKey> = resolveCosts(PVOPS_COSTS),
    /** The vCPU this backend is (its INVLPG and CR3 writes exit as that vCPU's). */
    vcpu = 0,
    /** The PV send-IPI hypercall's cycles (NativePvMmu's ipiHypercall). */
    ipiHypercall = 0,
  ) {
    super(mem, kvm.vcpus.length > 1 ? kvm.guestCpu(vcpu) : kvm, ledger, costs, 'kvm-shadow', ipiHypercall);
  }

  override allocPt(level: number, pfn: number, root: number): void {
    this.kvm.onGuestTable(pfn);
    super.allocPt(level, pfn, root);
  }

  override releasePt(level: number, pfn: number, root: number): void {
    this.kvm.onGuestTable(pfn);
    super.releasePt(level, pfn, root);
  }

  /** With the proposed deferred A/D mode, entering lazy MMU mode fetches the A bits from the host. */
  protected override archEnterLazy(): void {
    if (this.kvm.deferredAD) this.kvm.syncAccessed();
  }
}
