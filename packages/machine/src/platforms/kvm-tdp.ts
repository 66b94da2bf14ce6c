import type { Counters } from '@pte/core';
import { PhysMem, type Mmu } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import { KvmTdp } from '@pte/kvm-shadow';
import type { VmPolicy } from '@pte/vm';
import type { Platform, PlatformCpu, PlatformSetup } from '../platform.js';
import { nativeCpus } from './native.js';

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
  readonly cpus: readonly PlatformCpu[];

  constructor(s: PlatformSetup) {
    this.mem = new PhysMem(s.frames);
    this.tdp = new KvmTdp(s.frames, s.ledger, s.costs, 4, s.hostBacked);
    this.cpus = nativeCpus(this.mem, s, 'kvm-tdp', this.tdp);
    this.mmu = this.cpus[0]!.mmu;
    this.pv = this.cpus[0]!.pv;
  }

  /** A virtio-blk request: the kick exits, the completion is injected (KvmTdp.ioKick). */
  ioRequest(): void {
    this.tdp.ioKick();
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
    // A PV send-IPI hypercall exits too (one per flush that reached another vCPU).
    let hypercalls = 0;
    for (const cpu of this.cpus) hypercalls += cpu.pv.ipiCalls;
    c.add(c.id('kvm.exits'), this.tdp.violations + hypercalls + this.tdp.ioKicks);
    if (this.tdp.ioKicks > 0) c.add(c.id('kvm.io_kicks'), this.tdp.ioKicks);
    c.add(c.id('kvm.ept_violations'), this.tdp.violations);
  }

  verify(): void {}
}
