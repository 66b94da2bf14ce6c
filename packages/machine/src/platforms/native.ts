import { Prng, type Counters } from '@pte/core';
import { Mmu, PhysMem, type NestedPaging } from '@pte/arch-x86';
import { NativePvMmu, type PvMmuOps } from '@pte/pvops';
import type { VmPolicy } from '@pte/vm';
import type { Platform, PlatformCpu, PlatformSetup } from '../platform.js';

/** Bare metal: the CPU walks the guest's own tables; pvops writes PTEs directly (native_set_pte). */
export class NativePlatform implements Platform {
  readonly name = 'native';
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
  readonly cpus: readonly PlatformCpu[];

  constructor(s: PlatformSetup) {
    this.mem = new PhysMem(s.frames);
    this.cpus = nativeCpus(this.mem, s, 'native', null);
    this.mmu = this.cpus[0]!.mmu;
    this.pv = this.cpus[0]!.pv;
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

/**
 * One MMU and one native pvops backend per CPU over `mem`: bare metal, and KVM with nested paging,
 * whose vCPUs all walk the VM's one EPT (`nested`).
 */
export function nativeCpus(
  mem: PhysMem,
  s: PlatformSetup,
  name: 'native' | 'kvm-tdp',
  nested: NestedPaging | null,
): PlatformCpu[] {
  return Array.from({ length: s.cpus }, (_, id) => {
    const mmu = new Mmu(mem, { ledger: s.ledger, costs: s.costs, ...(nested !== null ? { nested } : {}) });
    // KVM guests send flush IPIs with one KVM_HC_SEND_IPI hypercall (kvm_setup_pv_ipi, 4.19+).
    const ipiHypercall = name === 'kvm-tdp' ? s.costs['kvm.exit'] : 0;
    const pv = new NativePvMmu(mem, mmu, s.ledger, s.costs, name, ipiHypercall);
    if (name === 'kvm-tdp') kvmOvercommit(pv, s, id);
    return { mmu, pv };
  });
}

/**
 * A KVM guest's vCPU overcommit (`vcpu_preempted`, `pv_tlb_flush`): which flush targets the host
 * has preempted, drawn from a seeded stream per vCPU, and what a flush does about them.
 */
export function kvmOvercommit(pv: NativePvMmu, s: PlatformSetup, id: number): void {
  if (s.vcpuPreempted <= 0) return;
  pv.overcommit(s.vcpuPreempted, new Prng(s.seed, `vcpu.preempted.${id}`), s.pvTlbFlush, s.costs['kvm.vcpu_resched']);
}
