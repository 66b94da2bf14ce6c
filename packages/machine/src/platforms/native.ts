import type { Counters } from '@pte/core';
import { Mmu, PhysMem } from '@pte/arch-x86';
import { NativePvMmu, type PvMmuOps } from '@pte/pvops';
import type { VmPolicy } from '@pte/vm';
import type { Platform, PlatformSetup } from '../platform.js';

/** Bare metal: the CPU walks the guest's own tables; pvops writes PTEs directly (native_set_pte). */
export class NativePlatform implements Platform {
  readonly name = 'native';
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;

  constructor(s: PlatformSetup) {
    this.mem = new PhysMem(s.frames);
    this.mmu = new Mmu(this.mem, { ledger: s.ledger, costs: s.costs });
    this.pv = new NativePvMmu(this.mem, this.mmu, s.ledger, s.costs, 'native');
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

  addCountersTo(_c: Counters): void {}

  verify(): void {}
}
