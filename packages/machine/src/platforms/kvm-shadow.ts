import { PteError, type Counters } from '@pte/core';
import { Mmu, PhysMem } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import { KvmShadowPvMmu, ShadowMmu } from '@pte/kvm-shadow';
import type { VmPolicy } from '@pte/vm';
import { FAULT_FIXED_BY_HOST, oneCpuOnly, type Platform, type PlatformCpu, type PlatformSetup } from '../platform.js';

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
    oneCpuOnly('kvm-shadow', s.cpus);
    this.mem = new PhysMem(s.frames);
    const shadow = new ShadowMmu({
      gmem: this.mem,
      era: s.shadowEra ?? s.profile.shadowEra,
      ledger: s.ledger,
      costs: s.costs,
      deferredAD: s.deferredAD ?? false,
    });
    this.shadow = shadow;
    this.mmu = new Mmu(shadow.smem, { ledger: s.ledger, costs: s.costs });
    shadow.attachCpu(this.mmu);
    this.pv = new KvmShadowPvMmu(this.mem, shadow, s.ledger, s.costs);
    this.cpus = [{ mmu: this.mmu, pv: this.pv }];
  }

  /** The host backs guest memory with 4 KiB pages: guest 2 MiB mappings are not modelled here. */
  limitPolicy(policy: VmPolicy): VmPolicy {
    return { ...policy, pmdMapFileFolios: false, anonThp: false };
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
