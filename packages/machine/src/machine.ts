import { Counters, CycleLedger, diffSnapshots, Prng, type CostTable, type TallySnapshot } from '@pte/core';
import { ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE, Mmu, PhysMem, TRANSLATE_GP, type ArchCostKey } from '@pte/arch-x86';
import { NativePvMmu, type PvMmuOps, type PvopsCostKey } from '@pte/pvops';
import {
  assertInvariants, FAULT_RETRY, handleMmFault, Kernel, Syscalls, vpnHi, vpnLo,
  type Inode, type KernelProfile, type Task, type Vma, type VmCostKey, type VmPolicy,
} from '@pte/vm';
import { AccessStream, type PatternSpec } from '@pte/workloads';
import type { Platform } from './platform.js';

export interface MachineOptions {
  readonly platform: Platform;
  readonly profile: KernelProfile;
  /** The profile's policy with the run's overrides applied. */
  readonly policy: VmPolicy;
  /** Guest memory in bytes. */
  readonly memBytes: number;
  readonly seed: number;
  readonly costs: CostTable;
  /** Run the invariant checkers after every operation. */
  readonly check?: boolean;
}

export type AccessKind = 'read' | 'write' | 'fetch';

/**
 * One simulated computer: a CPU (MMU with TLBs), a platform backend behind pvops, the guest
 * kernel, and the workload driver. The access loop is the hardware path: translate, and on a page
 * fault, the guest kernel's handler, then retry (DESIGN.md "One access, end to end").
 */
export class Machine {
  readonly ledger = new CycleLedger();
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: PvMmuOps;
  readonly kernel: Kernel;
  readonly sys: Syscalls;
  readonly prng: Prng;
  private readonly check: boolean;
  private baseCycles: TallySnapshot = {};
  private baseCounters: TallySnapshot = {};
  /** Workload figures. */
  touches = 0;
  accesses = 0;
  segv = 0;
  private peakRss = 0;
  private sampledRss = 0;

  constructor(readonly opts: MachineOptions) {
    const frames = Math.floor(opts.memBytes / 4096);
    this.mem = new PhysMem(frames);
    const costs = opts.costs;
    this.mmu = new Mmu(this.mem, { ledger: this.ledger, costs: costs as CostTable<ArchCostKey> });
    this.pv = new NativePvMmu(this.mem, this.mmu, this.ledger, costs as CostTable<PvopsCostKey>);
    this.kernel = new Kernel({ mem: this.mem, pv: this.pv, policy: opts.policy, ledger: this.ledger, costs: costs as CostTable<VmCostKey> });
    this.sys = new Syscalls(this.kernel);
    this.prng = new Prng(opts.seed, 'machine');
    this.check = opts.check ?? false;
  }

  /** Start counting: cycles and counters before this point (setup) are left out of the result. */
  startMeasurement(): void {
    this.baseCycles = this.ledger.snapshot();
    this.baseCounters = this.counterSnapshot();
    this.touches = 0;
    this.accesses = 0;
  }

  /** Cycles by category since startMeasurement(). */
  measuredCycles(): TallySnapshot {
    const d = diffSnapshots(this.baseCycles, this.ledger.snapshot());
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(d)) out[k] = v;
    return out;
  }

  /** Counters since startMeasurement(). */
  measuredCounters(): TallySnapshot {
    return diffSnapshots(this.baseCounters, this.counterSnapshot());
  }

  private counterSnapshot(): TallySnapshot {
    const c = new Counters();
    this.mmu.addCountersTo(c);
    this.kernel.stats.addCountersTo(c);
    c.add(c.id('pte.prefaulted_used'), this.mmu.walker.markedUses);
    c.add(c.id('pte.writes'), this.pv.pteWrites);
    c.add(c.id('workload.touches'), this.touches);
    c.add(c.id('workload.accesses'), this.accesses);
    c.add(c.id('workload.segv'), this.segv);
    return c.snapshot();
  }

  spawn(): Task {
    const t = this.sys.spawn();
    this.verify('after spawn');
    return t;
  }

  /**
   * Touch the pages of `vma` in the order `pattern` gives (page indices relative to the VMA),
   * `runs` accesses per touch. Runs on `task`'s address space.
   */
  touch(task: Task, vma: Vma, pattern: PatternSpec, kind: AccessKind, runs: number, pages = vma.pages): void {
    const k = this.kernel;
    k.switchMm(task.mm);
    const mmu = this.mmu;
    const access = ACCESS_USER | (kind === 'write' ? ACCESS_WRITE : kind === 'fetch' ? ACCESS_FETCH : 0);
    const stream = new AccessStream(pattern, pages, this.prng);
    const buf = new Uint32Array(4096);
    const mm = task.mm;
    const base = vma.start;
    let n: number;
    while ((n = stream.fill(buf)) > 0) {
      for (let i = 0; i < n; i++) {
        const vpn = base + buf[i]!;
        const hi = vpnHi(vpn);
        const lo = vpnLo(vpn);
        let pfn = mmu.translate(hi, lo, access);
        let tries = 0;
        while (pfn < 0) {
          if (pfn === TRANSLATE_GP) throw new Error(`non-canonical address for page ${vpn}`);
          if (handleMmFault(k, mm, vpn, mmu.faultCode | ACCESS_USER) !== FAULT_RETRY) {
            this.segv++;
            break;
          }
          if (++tries > 4) throw new Error(`page ${vpn} still faults after ${tries} retries`);
          pfn = mmu.translate(hi, lo, access);
        }
        if (runs > 1 && pfn >= 0) mmu.translateRun(hi, lo, access, runs - 1);
      }
      this.touches += n;
      this.accesses += n * runs;
    }
    this.noteRss();
    this.verify('after touch');
  }

  /** Record RSS now (memory.rss_pages is the last sample; peak is the highest per-process RSS). */
  noteRss(): void {
    let total = 0;
    for (const mm of this.kernel.mms) {
      total += mm.rssPages;
      if (mm.hiwaterRss > this.peakRss) this.peakRss = mm.hiwaterRss;
    }
    this.sampledRss = total;
  }

  get rssPages(): number {
    return this.sampledRss;
  }

  get peakRssPages(): number {
    return this.peakRss;
  }

  createFile(name: string, bytes: number): Inode {
    return this.kernel.pageCache.createFile(name, bytes);
  }

  /** Run the invariant checkers if --check is on. */
  verify(where: string): void {
    if (this.check) assertInvariants(this.kernel, where);
  }
}
