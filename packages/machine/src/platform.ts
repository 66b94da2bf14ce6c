import { configError, type CostTable, type Counters, type CycleLedger, type RemoteClock } from '@pte/core';
import type { Mmu, PhysMem } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import type { KernelProfile, VmPolicy } from '@pte/vm';
import type { XenAliasPolicy, XenPteWrite } from '@pte/xen';
import type { ShadowEra } from '@pte/kvm-shadow';
import type { RunCostKey } from './costs.js';

/** The platforms of DESIGN.md. */
export const PLATFORMS = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'] as const;
export type PlatformName = (typeof PLATFORMS)[number];

/** Platforms this build can run; the others arrive with their issues (Xen PV, KVM). */
export const IMPLEMENTED_PLATFORMS: readonly PlatformName[] = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'];

export function parsePlatform(text: string, where = '--platform'): PlatformName {
  if (!(PLATFORMS as readonly string[]).includes(text)) {
    throw configError(`${where}: unknown platform '${text}'`, `platforms are ${PLATFORMS.join(', ')}`);
  }
  const p = text as PlatformName;
  if (!IMPLEMENTED_PLATFORMS.includes(p)) {
    throw configError(
      `${where}: platform '${p}' is not implemented yet`,
      `this build runs ${IMPLEMENTED_PLATFORMS.join(', ')}`,
    );
  }
  return p;
}

/** What a platform is built from: the machine's size, ledger, costs and the run's platform settings. */
export interface PlatformSetup {
  readonly frames: number;
  readonly seed: number;
  readonly ledger: CycleLedger;
  readonly costs: CostTable<RunCostKey>;
  readonly profile: KernelProfile;
  readonly check: boolean;
  readonly xenPteWrite?: XenPteWrite | undefined;
  readonly xenAlias?: XenAliasPolicy | undefined;
  readonly shadowEra?: ShadowEra | undefined;
  readonly deferredAD?: boolean | undefined;
  /** CPUs (vCPUs) of the machine: 1 unless the several-CPU model asks for more. */
  readonly cpus: number;
  /** The CPUs' clocks, shared with the kernel (a hypervisor that flushes other vCPUs charges them). */
  readonly clocks: RemoteClock;
  /** KVM: the share of flush targets found preempted, and whether the guest has the PV TLB flush. */
  readonly vcpuPreempted: number;
  readonly pvTlbFlush: boolean;
  /** KVM TDP: the EPT already maps all of guest memory (MachineOptions.hostBacked). */
  readonly hostBacked: boolean;
  /** KVM shadow: 2 MiB host pages behind guest memory (MachineOptions.hostHuge). */
  readonly hostHuge: boolean;
}

/** One CPU as the platform builds it: its MMU (TLBs, CR3) and its pvops backend. */
export interface PlatformCpu {
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
}

/** pageFaultExit's answer when the host fixed the fault itself: the access retries, the guest sees nothing. */
export const FAULT_FIXED_BY_HOST = -1;

/**
 * What lies under the guest kernel: the memory it sees, the MMU the CPU walks with, the pvops
 * backend its page-table writes go through, and what happens on a #PF before the guest's handler.
 */
export interface Platform {
  readonly name: PlatformName;
  /** Guest-physical memory: the frames the guest kernel allocates and writes its tables into. */
  readonly mem: PhysMem;
  /** CPU 0's MMU and pvops backend (cpus[0]). */
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
  /** Every CPU's MMU and backend, by id; they share `mem` (and the host's tables). */
  readonly cpus: readonly PlatformCpu[];
  /** The running CPU changes (Machine.runOn): a hypervisor that tracks the calling vCPU follows. */
  runOn?(id: number): void;
  /** The platform's restrictions on the guest's policy (a policy choice, not a hardware limit). */
  limitPolicy(policy: VmPolicy): VmPolicy;
  /**
   * A #PF on the CPU's tables, before the guest sees it: FAULT_FIXED_BY_HOST, or the error code
   * the guest's handler gets (e.g. KVM's shadow page-fault exit, kvm_mmu_page_fault).
   */
  pageFaultExit(hi: number, lo: number, access: number, code: number): number;
  /** Why a page still faults after the guest's handler ran, if the platform knows (else null). */
  unfixableFault(vpn: number): Error | null;
  /**
   * What one block-device request costs the guest's CPU beyond the device (the kick of a virtio
   * queue, an event-channel notify, the completion interrupt); absent on native.
   */
  ioRequest?(): void;
  /** The platform's own counters (the pvops backend's are added by the machine). */
  addCountersTo(c: Counters): void;
  /** Throw if the platform's own invariants are broken. */
  verify(where: string): void;
}
