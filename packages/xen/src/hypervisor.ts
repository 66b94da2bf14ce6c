import { CycleLedger, Prng, resolveCosts, type CostTable, type RemoteClock } from '@pte/core';
import { entryPfn, P, PhysMem, RW, type Mmu } from '@pte/arch-x86';
import { HYPERVISOR } from './abi.js';
import { XEN_COSTS, type XenCostKey } from './costs.js';
import { doMulticall } from './do-multicall.js';
import { doMmuextOp, doMmuUpdate, doUpdateVaMapping, enterHypercall } from './mm.js';
import type { McQueue } from './multicall.js';
import { ptwrStore } from './ptwr.js';
import { bouncePageFault } from './traps.js';

export { XEN_OK, XEN_EINVAL } from './mm.js';

const HC_MMU_UPDATE = HYPERVISOR.mmu_update;
const HC_UPDATE_VA_MAPPING = HYPERVISOR.update_va_mapping;
const HC_MMUEXT_OP = HYPERVISOR.mmuext_op;

/**
 * What a flush of other vCPUs costs inside Xen (flush_area_mask: a physical IPI per target pCPU,
 * spinning until each acks) and the clocks it charges: the same hardware as a native shootdown, so
 * the run's native costs (docs/cost-model.md).
 */
export interface XenSmp {
  readonly ipiSend: number;
  readonly ipiLatency: number;
  readonly ipiHandler: number;
  readonly lineTransfer: number;
  readonly clocks: RemoteClock;
  /** vCPU overcommit: whether the next flush target is descheduled (a seeded draw), or null: never. */
  readonly descheduled: (() => boolean) | null;
}

export interface XenOptions {
  /** Frames of the guest (its pseudo-physical memory). */
  readonly guestFrames: number;
  /** Machine frames Xen keeps for itself below the guest's (the heap, other domains). */
  readonly xenFrames?: number;
  /** Seeds the P2M: which machine frame backs each guest frame. */
  readonly seed: number;
  readonly ledger?: CycleLedger;
  readonly costs?: CostTable<XenCostKey>;
}

/**
 * The Xen hypervisor as one PV domain sees it: machine memory and the domain's P2M/M2P, page
 * types with type counts, pinning with validation, and the MMU hypercalls (xen/arch/x86/mm.c,
 * xen/common/multicall.c, xen/arch/x86/pv/ro-page-fault.c).
 *
 * Page types (hypervisors.md §1.1): a frame referenced as a page table (from a validated upper
 * entry, or pinned) holds type L1..L4 with a type count; a frame with writable mappings holds
 * PGT_writable_page with a count. The two exclude each other — "a page can only change its type
 * when its type count is zero" — so Xen refuses a writable mapping of a page-table frame and
 * refuses to make a frame a page table while a writable mapping of it exists. Every guest frame
 * starts with one writable mapping: the guest kernel's direct map, which the guest makes
 * read-only (update_va_mapping) before it pins a frame as a page table.
 *
 * Frames in the guest's tables are machine frames. Refused requests leave memory unchanged and
 * are counted (`xen.refused`); `strict` turns them into a model error for --check runs.
 *
 * This class holds the state (struct domain, the frame table); the logic lives in files named after
 * Xen's sources: mm.ts (arch/x86/mm.c: page types, mod_lN_entry, do_mmu_update, do_mmuext_op,
 * update_va_mapping), ptwr.ts (pv/ro-page-fault.c), traps.ts (the #PF bounce) and
 * do-multicall.ts (common/multicall.c).
 */
export class XenHypervisor {
  readonly mem: PhysMem;
  readonly guestFrames: number;
  readonly p2m: Int32Array;
  readonly m2p: Int32Array;
  /** Page-table level (1..4) of a frame with type references, 0 otherwise. */
  readonly ptType: Uint8Array;
  /** Type references as a page table: validated upper-level entries pointing here, plus a pin. */
  readonly ptRefs: Uint32Array;
  readonly pinned: Uint8Array;
  /** Writable mappings: present RW entries in validated L1s, plus the guest's direct-map alias. */
  readonly writable: Uint32Array;
  /** The guest's direct map of each guest frame is writable (1) or read-only (0). */
  readonly directMapRW: Uint8Array;
  /** @internal The MMU of the vCPU making the current hypercall (runOn), or null before attachCpus. */
  cpu: Mmu | null = null;
  /** @internal Every vCPU's MMU, by id. */
  vcpus: Mmu[] = [];
  /** @internal The vCPU making the current hypercall. */
  current = 0;
  /** @internal What a cross-vCPU flush costs and whose clock it charges (attachCpus). */
  smp: XenSmp | null = null;
  /** flush_lock (xen/arch/x86/smp.c): when the cross-CPU flush holding it finishes. */
  flushLockFreeAt = 0;
  strict = false;
  /** @internal */ readonly ledger: CycleLedger;
  /** @internal */ readonly catHypercall: number;
  /** @internal */ readonly catValidate: number;
  /** @internal */ readonly catEmulate: number;
  /** @internal */ readonly catBounce: number;
  /** @internal */ readonly c: CostTable<XenCostKey>;

  // Statistics (published as xen.*).
  hypercalls = 0;
  readonly byOp = new Float64Array(64);
  updateEntries = 0;
  multicallEntries = 0;
  refused = 0;
  pins = 0;
  unpins = 0;
  validatedEntries = 0;
  ptwrEmulations = 0;
  pfBounces = 0;
  /** MMUEXT_TLB_FLUSH_MULTI / MMUEXT_INVLPG_MULTI operations, and the physical IPIs they sent. */
  flushMulti = 0;
  flushIpis = 0;
  /** Targets of those that were descheduled: no IPI, flushed when next scheduled. */
  flushSkipped = 0;

  constructor(o: XenOptions) {
    const xenFrames = o.xenFrames ?? Math.max(256, Math.floor(o.guestFrames / 16));
    const machineFrames = o.guestFrames + xenFrames;
    this.mem = new PhysMem(machineFrames);
    this.guestFrames = o.guestFrames;
    this.p2m = new Int32Array(o.guestFrames);
    this.m2p = new Int32Array(machineFrames).fill(-1);
    // A domain's memory is scattered over machine memory: a seeded permutation of the frames above Xen's.
    const perm = new Uint32Array(o.guestFrames);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    new Prng(o.seed, 'xen.p2m').shuffle(perm);
    for (let pfn = 0; pfn < o.guestFrames; pfn++) {
      const mfn = xenFrames + perm[pfn]!;
      this.p2m[pfn] = mfn;
      this.m2p[mfn] = pfn;
    }
    this.ptType = new Uint8Array(machineFrames);
    this.ptRefs = new Uint32Array(machineFrames);
    this.pinned = new Uint8Array(machineFrames);
    this.writable = new Uint32Array(machineFrames);
    this.directMapRW = new Uint8Array(o.guestFrames).fill(1);
    for (let pfn = 0; pfn < o.guestFrames; pfn++) this.writable[this.p2m[pfn]!] = 1;
    this.ledger = o.ledger ?? new CycleLedger();
    this.catHypercall = this.ledger.id('xen.hypercall');
    this.catValidate = this.ledger.id('xen.validate');
    this.catEmulate = this.ledger.id('xen.emulate');
    this.catBounce = this.ledger.id('xen.pf_bounce');
    this.c = o.costs ?? resolveCosts(XEN_COSTS);
  }

  /** The CPU whose TLB the flush operations act on (a one-vCPU domain). */
  attachCpu(mmu: Mmu): void {
    this.attachCpus([mmu], null);
  }

  /** The domain's vCPUs, by id; `smp` prices the flushes that reach other vCPUs (needed with several). */
  attachCpus(mmus: readonly Mmu[], smp: XenSmp | null): void {
    if (mmus.length > 1 && smp === null) throw new Error('several vCPUs need the cost of flushing each other');
    this.vcpus = [...mmus];
    this.smp = smp;
    this.runOn(0);
  }

  /** vCPU `id` makes the hypercalls from now on. */
  runOn(id: number): void {
    const mmu = this.vcpus[id];
    if (mmu === undefined) throw new Error(`no vCPU ${id}`);
    this.current = id;
    this.cpu = mmu;
  }

  // --- traps -----------------------------------------------------------------------------------

  /** A guest #PF arrives in Xen, which bounces it to the guest kernel (CR2 in vcpu_info). */
  bouncePageFault(): void {
    bouncePageFault(this);
  }

  // --- hypercalls ------------------------------------------------------------------------------

  /** HYPERVISOR_mmu_update with the queue's items [first, first + count). Returns failures. */
  mmuUpdate(q: McQueue, first: number, count: number): number {
    enterHypercall(this, HC_MMU_UPDATE);
    return doMmuUpdate(this, q, first, count);
  }

  /** HYPERVISOR_update_va_mapping: one L1 entry (addressed by its table and index), flush per flags. */
  updateVaMapping(
    table: number,
    index: number,
    lo: number,
    hi: number,
    flags: number,
    vaHi: number,
    vaLo: number,
  ): number {
    enterHypercall(this, HC_UPDATE_VA_MAPPING);
    return doUpdateVaMapping(this, table, index, lo, hi, flags, vaHi, vaLo);
  }

  /** HYPERVISOR_mmuext_op with one operation. */
  mmuextOp(cmd: number, arg: number, vaHi = 0, vaLo = 0): number {
    enterHypercall(this, HC_MMUEXT_OP);
    return doMmuextOp(this, cmd, arg, vaHi, vaLo);
  }

  /** HYPERVISOR_multicall over the guest's buffer (do_multicall). Returns failed entries. */
  multicall(q: McQueue): number {
    return doMulticall(this, q);
  }

  /**
   * A plain guest store to a frame Xen has write-protected because it is an L1 page table:
   * the write faults and Xen emulates it (ptwr.ts). Stores to other page-table levels are refused.
   */
  ptwrStore(table: number, index: number, lo: number, hi: number): number {
    return ptwrStore(this, table, index, lo, hi);
  }

  /** Whether `table` is a validated page table (the guest may not store to it directly). */
  isPageTable(table: number): boolean {
    return this.ptRefs[table] !== 0;
  }

  /**
   * Invariant of --check runs: no page-table frame is mapped writable, and the writable counts
   * equal the present RW entries of validated L1 tables plus the direct-map aliases.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    const count = new Uint32Array(this.mem.frames);
    for (let pfn = 0; pfn < this.guestFrames; pfn++) if (this.directMapRW[pfn] === 1) count[this.p2m[pfn]!]!++;
    for (let f = 0; f < this.mem.frames; f++) {
      if (this.ptType[f] !== 1 || this.ptRefs[f] === 0) continue;
      for (let i = 0; i < 512; i++) {
        const lo = this.mem.readLo(f, i);
        if ((lo & (P | RW)) === (P | RW)) count[entryPfn(1, lo, this.mem.readHi(f, i))]!++;
      }
    }
    for (let f = 0; f < this.mem.frames; f++) {
      if (this.ptRefs[f] !== 0 && count[f] !== 0)
        out.push(`page-table frame 0x${f.toString(16)} is mapped writable ${count[f]} time(s)`);
      if (count[f] !== this.writable[f])
        out.push(`frame 0x${f.toString(16)}: ${this.writable[f]} writable references counted, ${count[f]} found`);
    }
    return out;
  }
}
