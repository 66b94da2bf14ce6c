import { Prng, PteError, type Counters } from '@pte/core';
import { Mmu, type PhysMem } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import { evtchnSend, XenHypervisor, XenPvMmu } from '@pte/xen';
import type { VmPolicy } from '@pte/vm';
import type { Platform, PlatformCpu, PlatformSetup } from '../platform.js';

/**
 * Xen PV: the CPU walks machine memory; the guest's frames map onto it through the P2M, and its
 * page-table writes go through hypercalls (xen_set_pte, xen_pgd_pin) that Xen validates.
 */
export class XenPvPlatform implements Platform {
  readonly name = 'xen-pv';
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
  readonly xen: XenHypervisor;
  readonly cpus: readonly PlatformCpu[];

  constructor(s: PlatformSetup) {
    const xen = new XenHypervisor({ guestFrames: s.frames, seed: s.seed, ledger: s.ledger, costs: s.costs });
    xen.strict = s.check;
    this.xen = xen;
    this.mem = xen.mem;
    // One MMU and one backend (its multicall buffer and lazy-MMU state) per vCPU, as Linux keeps
    // xen_mc_buffer and xen_lazy_mode per CPU; the guest's page flags are shared.
    const cpus: PlatformCpu[] = [];
    let first: XenPvMmu | null = null;
    for (let id = 0; id < s.cpus; id++) {
      const mmu = new Mmu(this.mem, { ledger: s.ledger, costs: s.costs });
      const pv: XenPvMmu = new XenPvMmu(
        xen,
        mmu,
        s.xenPteWrite ?? s.profile.xenPteWrite,
        s.ledger,
        s.costs,
        s.xenAlias ?? 'always',
        first,
      );
      first ??= pv;
      cpus.push({ mmu, pv });
    }
    this.cpus = cpus;
    this.mmu = cpus[0]!.mmu;
    this.pv = cpus[0]!.pv;
    xen.attachCpus(
      cpus.map((c) => c.mmu),
      {
        ipiSend: s.costs['native.ipi_send'],
        ipiLatency: s.costs['smp.ipi_latency'],
        ipiHandler: s.costs['smp.ipi_handler'],
        lineTransfer: s.costs['smp.line_transfer'],
        clocks: s.clocks,
        descheduled: descheduled(s),
      },
    );
  }

  runOn(id: number): void {
    this.xen.runOn(id);
  }

  /** PV guests get no superpages: a PMD leaf would need machine-contiguous frames Xen never grants. */
  /** A blkfront request: one event-channel notify (evtchnSend); the completion upcall is free. */
  ioRequest(): void {
    evtchnSend(this.xen);
  }

  limitPolicy(policy: VmPolicy): VmPolicy {
    return { ...policy, pmdMapFileFolios: false, anonThp: false };
  }

  pageFaultExit(_hi: number, _lo: number, _access: number, code: number): number {
    return code;
  }

  /** A refused update leaves the fault unfixable; the guest would BUG() (xen_set_pte's failed hypercall). */
  unfixableFault(vpn: number): Error | null {
    if (this.xen.refused === 0) return null;
    return new PteError(
      'model',
      `page 0x${vpn.toString(16)} cannot be mapped: Xen refused the guest's page-table update (xen.refused = ${this.xen.refused}); the guest would BUG()`,
    );
  }

  addCountersTo(_c: Counters): void {}

  verify(where: string): void {
    const broken = this.xen.checkInvariants();
    if (broken.length > 0)
      throw new PteError('model', `Xen invariant failed ${where}: ${broken.slice(0, 3).join('; ')}`);
  }
}

/** The hypervisor of a machine on xen-pv (tests and Xen-only scenarios). */
export function hypervisorOf(m: { readonly platform: Platform }): XenHypervisor {
  if (!(m.platform instanceof XenPvPlatform)) throw new Error(`not a xen-pv machine: ${m.platform.name}`);
  return m.platform.xen;
}

/** A Xen vCPU found descheduled at a flush, with probability `vcpu_preempted` (a seeded stream), or never. */
function descheduled(s: PlatformSetup): (() => boolean) | null {
  if (s.vcpuPreempted <= 0) return null;
  const prng = new Prng(s.seed, 'xen.descheduled');
  return () => prng.nextFloat() < s.vcpuPreempted;
}
