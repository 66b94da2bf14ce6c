import type { Counters } from '@pte/core';
import { Mmu, PhysMem } from '@pte/arch-x86';
import { NativePvMmu, type PvMmuOps } from '@pte/pvops';
import { KvmTdp } from '@pte/kvm-shadow';
import type { VmPolicy } from '@pte/vm';
import type { Platform, PlatformSetup } from '../platform.js';

/**
 * KVM with nested paging (EPT/NPT): the guest writes its tables natively; the CPU's two-dimensional
 * walk exits to KVM on an EPT violation (tdp_page_fault), counted here.
 */
export class KvmTdpPlatform implements Platform {
  readonly name = 'kvm-tdp';
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
  readonly tdp: KvmTdp;

  constructor(s: PlatformSetup) {
    this.mem = new PhysMem(s.frames);
    this.tdp = new KvmTdp(s.frames, s.ledger, s.costs);
    this.mmu = new Mmu(this.mem, { ledger: s.ledger, costs: s.costs, nested: this.tdp });
    this.pv = new NativePvMmu(this.mem, this.mmu, s.ledger, s.costs, 'kvm-tdp');
  }

  limitPolicy(policy: VmPolicy): VmPolicy {
    return policy;
  }

  pageFaultExit(_hi: number, _lo: number, _access: number, code: number): number {
    return code;
  }

  unfixableFault(): Error | null {
    return null;
  }

  addCountersTo(c: Counters): void {
    c.add(c.id('kvm.exits'), this.tdp.violations);
    c.add(c.id('kvm.ept_violations'), this.tdp.violations);
  }

  verify(): void {}
}
