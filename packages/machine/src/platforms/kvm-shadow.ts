import { PteError, type Counters } from '@pte/core';
import { Mmu, PhysMem } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import { KvmShadowPvMmu, ShadowMmu } from '@pte/kvm-shadow';
import type { VmPolicy } from '@pte/vm';
import { FAULT_FIXED_BY_HOST, type Platform, type PlatformCpu, type PlatformSetup } from '../platform.js';
import { kvmOvercommit } from './native.js';

/**
 * KVM shadow paging: the guest's tables live in guest memory; the CPU walks KVM's shadow tables,
 * and a #PF on them exits to KVM first (kvm_mmu_page_fault → FNAME(page_fault)).
 */
export class KvmShadowPlatform implements Platform {
  readonly name = 'kvm-shadow';
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
  readonly shadow: ShadowMmu;
  readonly cpus: readonly PlatformCpu[];

  constructor(s: PlatformSetup) {
    this.mem = new PhysMem(s.frames);
    const shadow = new ShadowMmu({
      gmem: this.mem,
      era: s.shadowEra ?? s.profile.shadowEra,
      ledger: s.ledger,
      costs: s.costs,
      deferredAD: s.deferredAD ?? false,
      hostHuge: s.hostHuge,
    });
    this.shadow = shadow;
    // One real CPU per vCPU, all walking the VM's one set of shadow pages.
    const mmus = Array.from({ length: s.cpus }, () => new Mmu(shadow.smem, { ledger: s.ledger, costs: s.costs }));
    shadow.attachCpus(mmus, {
      ipiSend: s.costs['native.ipi_send'],
      ipiLatency: s.costs['smp.ipi_latency'],
      lineTransfer: s.costs['smp.line_transfer'],
      clocks: s.clocks,
    });
    // A KVM guest sends flush IPIs with one KVM_HC_SEND_IPI hypercall (kvm_setup_pv_ipi, 4.19+).
    this.cpus = mmus.map((mmu, id) => {
      const pv = new KvmShadowPvMmu(this.mem, shadow, s.ledger, s.costs, id, s.cpus > 1 ? s.costs['kvm.exit'] : 0);
      kvmOvercommit(pv, s, id);
      return { mmu, pv };
    });
    this.mmu = this.cpus[0]!.mmu;
    this.pv = this.cpus[0]!.pv;
  }

  runOn(id: number): void {
    this.shadow.runOn(id);
  }

  /**
   * Guest 2 MiB mappings (THP, PMD-mapped file folios) are shadowed by direct shadow pages of 4
   * KiB sptes (the host backs guest memory with 4 KiB pages): nothing to limit.
   */
  limitPolicy(policy: VmPolicy): VmPolicy {
    return policy;
  }

  /** A virtio-blk request: the kick exits, the completion is injected (ShadowMmu.ioKick). */
  ioRequest(): void {
    this.shadow.ioKick();
  }

  /** KVM fixes its shadow tables (the access retries) or injects the fault into the guest. */
  pageFaultExit(hi: number, lo: number, access: number): number {
    const shadow = this.shadow;
    return shadow.handlePageFault(hi, lo, access) ? FAULT_FIXED_BY_HOST : shadow.injectCode;
  }

  unfixableFault(): Error | null {
    return null;
  }

  addCountersTo(c: Counters): void {
    this.shadow.addCountersTo(c);
  }

  verify(where: string): void {
    const broken = this.shadow.checkInvariants();
    if (broken.length > 0)
      throw new PteError('model', `shadow MMU invariant failed ${where}: ${broken.slice(0, 3).join('; ')}`);
  }
}

/** KVM's shadow MMU of a machine on kvm-shadow (tests and KVM-only scenarios). */
export function shadowOf(m: { readonly platform: Platform }): ShadowMmu {
  if (!(m.platform instanceof KvmShadowPlatform)) throw new Error(`not a kvm-shadow machine: ${m.platform.name}`);
  return m.platform.shadow;
}
