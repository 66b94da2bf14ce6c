import { CycleLedger, Prng, PteError, resolveCosts, type CostTable } from '@pte/core';
import { A, D, entryPfn, isLeaf, P, PhysMem, RW, type Mmu } from '@pte/arch-x86';
import {
  HYPERVISOR, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD, MMUEXT_INVLPG_LOCAL, MMUEXT_NEW_BASEPTR, MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE, MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_UNPIN_TABLE, UVMF_FLUSHTYPE_MASK, UVMF_INVLPG, UVMF_TLB_FLUSH,
} from './abi.js';

import { XEN_COSTS, type XenCostKey } from './costs.js';
import type { McQueue } from './multicall.js';

const HC_MMU_UPDATE = HYPERVISOR.mmu_update;
const HC_UPDATE_VA_MAPPING = HYPERVISOR.update_va_mapping;
const HC_MMUEXT_OP = HYPERVISOR.mmuext_op;
const HC_MULTICALL = HYPERVISOR.multicall;

/** Result codes of an update, as the guest sees them (0 or -EINVAL). */
export const XEN_OK = 0;
export const XEN_EINVAL = -22;

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
  private cpu: Mmu | null = null;
  strict = false;
  private readonly ledger: CycleLedger;
  private readonly catHypercall: number;
  private readonly catValidate: number;
  private readonly catEmulate: number;
  private readonly catBounce: number;
  private readonly c: CostTable<XenCostKey>;

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

  /** The CPU whose TLB the flush operations act on. */
  attachCpu(mmu: Mmu): void {
    this.cpu = mmu;
  }

  // --- traps -----------------------------------------------------------------------------------

  /** A guest #PF arrives in Xen, which bounces it to the guest kernel (CR2 in vcpu_info). */
  bouncePageFault(): void {
    this.pfBounces++;
    this.ledger.charge(this.catBounce, this.c['xen.pf_bounce']);
  }

  // --- hypercalls ------------------------------------------------------------------------------

  /** HYPERVISOR_mmu_update with the queue's items [first, first + count). Returns failures. */
  mmuUpdate(q: McQueue, first: number, count: number): number {
    this.enter(HC_MMU_UPDATE);
    return this.doMmuUpdate(q, first, count);
  }

  /** HYPERVISOR_update_va_mapping: one L1 entry (addressed by its table and index), flush per flags. */
  updateVaMapping(table: number, index: number, lo: number, hi: number, flags: number, vaHi: number, vaLo: number): number {
    this.enter(HC_UPDATE_VA_MAPPING);
    return this.doUpdateVaMapping(table, index, lo, hi, flags, vaHi, vaLo);
  }

  /** HYPERVISOR_mmuext_op with one operation. */
  mmuextOp(cmd: number, arg: number, vaHi = 0, vaLo = 0): number {
    this.enter(HC_MMUEXT_OP);
    return this.doMmuext(cmd, arg, vaHi, vaLo);
  }

  /** HYPERVISOR_multicall over the guest's buffer (do_multicall). Returns failed entries. */
  multicall(q: McQueue): number {
    this.enter(HC_MULTICALL);
    let failed = 0;
    for (let e = 0; e < q.entries; e++) {
      this.multicallEntries++;
      if (e > 0) this.ledger.charge(this.catHypercall, this.c['xen.multicall_entry']);
      const op = q.op[e]!;
      this.byOp[op]!++;
      let rc = 0;
      if (op === HC_MMU_UPDATE) rc = this.doMmuUpdate(q, q.first[e]!, q.count[e]!);
      else if (op === HC_UPDATE_VA_MAPPING) {
        rc = this.doUpdateVaMapping(q.aTable[e]!, q.aIndex[e]!, q.aLo[e]!, q.aHi[e]!, q.aFlags[e]!, 0, 0);
      } else if (op === HC_MMUEXT_OP) rc = this.doMmuext(q.aFlags[e]!, q.aTable[e]!, q.aHi[e]!, q.aLo[e]!);
      if (rc !== 0) failed++;
    }
    return failed;
  }

  /**
   * A plain guest store to a frame Xen has write-protected because it is an L1 page table:
   * the write faults, Xen decodes and emulates it (pv_ro_page_fault → ptwr_emulated_update),
   * validating the new entry as mod_l1_entry does. Stores to other page-table levels are refused.
   */
  ptwrStore(table: number, index: number, lo: number, hi: number): number {
    this.ptwrEmulations++;
    this.ledger.charge(this.catEmulate, this.c['xen.ptwr_emulate']);
    if (this.ptType[table] !== 1) return this.refuse(`store to a level-${this.ptType[table]} page table (only L1 stores are emulated)`);
    return this.modEntry(table, index, lo, hi, false);
  }

  /** Whether `table` is a validated page table (the guest may not store to it directly). */
  isPageTable(table: number): boolean {
    return this.ptRefs[table] !== 0;
  }

  // --- the work behind the hypercalls ------------------------------------------------------------

  private enter(op: number): void {
    this.hypercalls++;
    this.byOp[op]!++;
    this.ledger.charge(this.catHypercall, this.c['xen.hypercall']);
  }

  private doMmuUpdate(q: McQueue, first: number, count: number): number {
    let failed = 0;
    for (let i = first; i < first + count; i++) {
      const cmd = q.iCmd[i]!;
      const table = q.iTable[i]!;
      if (cmd === MMU_PT_UPDATE_PRESERVE_AD) {
        // *ptr = val | (*ptr & (A|D)): keep what the hardware set since the guest read the entry.
        const ad = this.mem.readLo(table, q.iIndex[i]!) & (A | D);
        if (this.modEntry(table, q.iIndex[i]!, (q.iLo[i]! | ad) >>> 0, q.iHi[i]!, true) !== 0) failed++;
      } else if (cmd === MMU_NORMAL_PT_UPDATE) {
        if (this.modEntry(table, q.iIndex[i]!, q.iLo[i]!, q.iHi[i]!, true) !== 0) failed++;
      } else {
        // MMU_MACHPHYS_UPDATE / NO_TRANSLATE: not modelled; fail visibly like doMmuext's default.
        this.refuse(`mmu_update command ${cmd} is not modelled`);
        failed++;
      }
    }
    return failed;
  }

  /**
   * update_va_mapping of a user PTE, or (table < 0) of the guest kernel's direct-map alias of guest
   * frame −1 − table: the model keeps no kernel page tables for the direct map, only its RW state.
   */
  private doUpdateVaMapping(table: number, index: number, lo: number, hi: number, flags: number, vaHi: number, vaLo: number): number {
    const rc = table < 0 ? this.directMap(-table - 1, (lo & RW) !== 0) : this.modEntry(table, index, lo, hi, true);
    if (rc === 0 && this.cpu !== null) {
      const type = flags & UVMF_FLUSHTYPE_MASK;
      if (type === UVMF_INVLPG) this.cpu.invlpg(vaHi, vaLo);
      else if (type === UVMF_TLB_FLUSH) this.cpu.writeCr3(this.cpu.root, this.cpu.tlb.pcid);
    }
    return rc;
  }

  private doMmuext(cmd: number, arg: number, vaHi: number, vaLo: number): number {
    this.ledger.charge(this.catValidate, this.c['xen.update_entry']);
    if (cmd >= MMUEXT_PIN_L1_TABLE && cmd <= MMUEXT_PIN_L4_TABLE) return this.pin(arg, cmd - MMUEXT_PIN_L1_TABLE + 1);
    switch (cmd) {
      case MMUEXT_UNPIN_TABLE:
        return this.unpin(arg);
      case MMUEXT_NEW_BASEPTR:
        if (this.ptType[arg] !== 4) return this.refuse(`new base pointer 0x${arg.toString(16)} is not a validated L4`);
        this.cpu?.writeCr3(arg, this.cpu.tlb.pcid);
        return XEN_OK;
      case MMUEXT_TLB_FLUSH_LOCAL:
        if (this.cpu !== null && this.cpu.root >= 0) this.cpu.writeCr3(this.cpu.root, this.cpu.tlb.pcid);
        return XEN_OK;
      case MMUEXT_INVLPG_LOCAL:
        this.cpu?.invlpg(vaHi, vaLo);
        return XEN_OK;
      default:
        return this.refuse(`mmuext command ${cmd} is not modelled`);
    }
  }

  /** The guest's direct-map alias of guest frame `pfn` becomes writable or read-only (__set_pfn_prot). */
  private directMap(pfn: number, writable: boolean): number {
    this.updateEntries++;
    this.ledger.charge(this.catValidate, this.c['xen.update_entry']);
    const mfn = this.p2m[pfn]!;
    if (writable === (this.directMapRW[pfn] === 1)) return XEN_OK;
    if (writable) {
      if (this.ptRefs[mfn] !== 0) return this.refuse(`writable mapping of page-table frame 0x${mfn.toString(16)} (direct map)`);
      this.writable[mfn]!++;
      this.directMapRW[pfn] = 1;
    } else {
      this.writable[mfn]!--;
      this.directMapRW[pfn] = 0;
    }
    return XEN_OK;
  }

  /**
   * mod_l1_entry / mod_l2..l4_entry for an entry of a validated table, or a plain checked write for
   * a frame that is not a page table. Takes the new entry's references before dropping the old's.
   */
  private modEntry(table: number, index: number, lo: number, hi: number, hypercall: boolean): number {
    if (hypercall) {
      this.updateEntries++;
      this.ledger.charge(this.catValidate, this.c['xen.update_entry']);
    }
    const level = this.ptType[table]!;
    if (level === 0) {
      this.mem.write(table, index, lo, hi);
      return XEN_OK;
    }
    const oldLo = this.mem.readLo(table, index);
    const oldHi = this.mem.readHi(table, index);
    if ((lo & P) !== 0) {
      const rc = this.getRefs(level, lo, hi);
      if (rc !== 0) return rc;
    }
    if ((oldLo & P) !== 0) this.putRefs(level, oldLo, oldHi);
    this.mem.write(table, index, lo, hi);
    return XEN_OK;
  }

  /** get_page_from_l1e / get_page_from_lNe: the references a present entry at `level` takes. */
  private getRefs(level: number, lo: number, hi: number): number {
    const target = entryPfn(level, lo, hi);
    if (target >= this.mem.frames || this.m2p[target] === -1) return this.refuse(`entry maps machine frame 0x${target.toString(16)}, which the domain does not own`);
    if (level === 1 || isLeaf(level, lo)) {
      if (level !== 1) return this.refuse('superpage mappings are not allowed for PV guests');
      if ((lo & RW) === 0) return XEN_OK;
      if (this.ptRefs[target] !== 0) return this.refuse(`writable mapping of page-table frame 0x${target.toString(16)}`);
      this.writable[target]!++;
      return XEN_OK;
    }
    return this.getTypeRef(target, level - 1);
  }

  private putRefs(level: number, lo: number, hi: number): void {
    const target = entryPfn(level, lo, hi);
    if (level === 1) {
      if ((lo & RW) !== 0) this.writable[target]!--;
      return;
    }
    this.putTypeRef(target);
  }

  /** get_page_type(frame, PGT_lN_page_table): validate the table on its first reference. */
  private getTypeRef(frame: number, level: number): number {
    if (this.ptRefs[frame] !== 0) {
      if (this.ptType[frame] !== level) return this.refuse(`frame 0x${frame.toString(16)} is a level-${this.ptType[frame]} table, not level ${level}`);
      this.ptRefs[frame]!++;
      return XEN_OK;
    }
    if (this.writable[frame] !== 0) {
      return this.refuse(`frame 0x${frame.toString(16)} still has ${this.writable[frame]} writable mapping(s)`);
    }
    if (!this.mem.isTable(frame)) return this.refuse(`frame 0x${frame.toString(16)} is not a page table`);
    // Take the type first so entries of this table cannot map it writable, then promote.
    this.ptType[frame] = level;
    this.ptRefs[frame] = 1;
    for (let i = 0; i < 512; i++) {
      const lo = this.mem.readLo(frame, i);
      if ((lo & P) === 0) continue;
      this.validatedEntries++;
      this.ledger.charge(this.catValidate, this.c['xen.pin_validate_entry']);
      const rc = this.getRefs(level, lo, this.mem.readHi(frame, i));
      if (rc !== 0) {
        for (let j = 0; j < i; j++) {
          const l = this.mem.readLo(frame, j);
          if ((l & P) !== 0) this.putRefs(level, l, this.mem.readHi(frame, j));
        }
        this.ptRefs[frame] = 0;
        this.ptType[frame] = 0;
        return rc;
      }
    }
    return XEN_OK;
  }

  /** put_page_type: the last reference devalidates the table and drops its entries' references. */
  private putTypeRef(frame: number): void {
    if (--this.ptRefs[frame]! !== 0) return;
    const level = this.ptType[frame]!;
    for (let i = 0; i < 512; i++) {
      const lo = this.mem.readLo(frame, i);
      if ((lo & P) !== 0) this.putRefs(level, lo, this.mem.readHi(frame, i));
    }
    this.ptType[frame] = 0;
  }

  private pin(frame: number, level: number): number {
    if (this.pinned[frame] === 1) return this.refuse(`frame 0x${frame.toString(16)} is already pinned`);
    const rc = this.getTypeRef(frame, level);
    if (rc !== 0) return rc;
    this.pinned[frame] = 1;
    this.pins++;
    return XEN_OK;
  }

  private unpin(frame: number): number {
    if (this.pinned[frame] !== 1) return this.refuse(`frame 0x${frame.toString(16)} is not pinned`);
    this.pinned[frame] = 0;
    this.unpins++;
    this.putTypeRef(frame);
    return XEN_OK;
  }

  private refuse(why: string): number {
    this.refused++;
    if (this.strict) throw new PteError('model', `Xen refused: ${why}`);
    return XEN_EINVAL;
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
      if (this.ptRefs[f] !== 0 && count[f] !== 0) out.push(`page-table frame 0x${f.toString(16)} is mapped writable ${count[f]} time(s)`);
      if (count[f] !== this.writable[f]) out.push(`frame 0x${f.toString(16)}: ${this.writable[f]} writable references counted, ${count[f]} found`);
    }
    return out;
  }
}
