import { type CostTable, Counters, CycleLedger, resolveCosts } from '@pte/core';
import { PagingStructureCaches } from './psc.js';
import { isCanonical } from './address.js';
import { ARCH_COSTS, type ArchCostKey } from './costs.js';
import type { PhysMem } from './phys-mem.js';
import { DEFAULT_TLB, Tlb, TLB_DIRTY, TLB_GLOBAL, TLB_XD, tlbEntryPkey, type TlbConfig } from './tlb.js';
import { ACCESS_WRITE, DEFAULT_MODE, Walker, type PagingMode } from './walker.js';

/** Returned by translate() for a page fault (error code in `Mmu.faultCode`). */
export const TRANSLATE_PF = -1;
/** Returned by translate() for a non-canonical address (#GP). */
export const TRANSLATE_GP = -2;

/**
 * Nested paging (EPT/NPT) under this MMU: every guest-physical address the walk uses is itself
 * translated through `levels` host levels, so a guest walk of n references costs
 * (n + 1)(levels + 1) − 1 (24 for 4 × 4; hypervisors.md §3.8), or n(levels + 1) when it ends in a
 * guest #PF (no page address left to translate), and the first touch of a
 * guest-physical page is an EPT violation the hypervisor handles (`violation`).
 */
export interface NestedPaging {
  readonly levels: number;
  /** 1 where the host has mapped the guest frame. */
  readonly mapped: Uint8Array;
  violation(pfn: number): void;
}

export interface MmuOptions {
  readonly mode?: PagingMode;
  readonly tlb?: TlbConfig;
  /** CR4.PCIDE: CR3 carries a 12-bit PCID and TLB entries are tagged with it. */
  readonly pcide?: boolean;
  /** CR4.PGE: global leaves survive CR3 writes. */
  readonly pge?: boolean;
  readonly costs?: CostTable<ArchCostKey>;
  readonly ledger?: CycleLedger;
  readonly nested?: NestedPaging;
}

/**
 * One CPU's MMU: CR3, the TLB hierarchy and the walker. `translate` is the hardware path of one
 * memory access: TLB lookup, then a walk on a miss, then a fill; no allocation per call.
 * A TLB hit whose cached rights deny the access, or a write through an entry cached clean, is
 * dropped and re-walked (SDM Vol. 3A §4.10.4.1: a page fault invalidates the address's entries;
 * §4.8: D must be set in memory on the first write), so no spurious fault is modelled.
 */
export class Mmu {
  readonly tlb: Tlb;
  readonly walker: Walker;
  readonly levels: 4 | 5;
  private readonly pcide: boolean;
  private readonly pge: boolean;
  private readonly ledger: CycleLedger;
  private readonly catWalk: number;
  private readonly catStlb: number;
  private readonly catFlush: number;
  private readonly cWalkRef: number;
  private readonly cAdWrite: number;
  private readonly cStlbHit: number;
  private readonly cInvlpg: number;
  private readonly cCr3: number;
  private readonly cGlobal: number;
  private readonly nested: NestedPaging | null;
  /** The CPU's paging-structure caches (psc.ts): how many upper reads a walk skips. */
  readonly psc: PagingStructureCaches;
  /** Under nested paging, the caches of the host (EPT/NPT) levels, by guest frame (no PCID). */
  private readonly nestedPsc: PagingStructureCaches | null;

  /** Top-level table frame (CR3 bits 51:12). */
  root = -1;
  /** #PF error code of the last faulting translate(). */
  faultCode = 0;

  // Statistics.
  accesses = 0;
  walks = 0;
  walkRefs = 0;
  adWrites = 0;
  pageFaults = 0;
  gpFaults = 0;
  invlpgs = 0;
  cr3Writes = 0;
  fullFlushes = 0;

  constructor(
    readonly mem: PhysMem,
    opts: MmuOptions = {},
  ) {
    const mode = opts.mode ?? DEFAULT_MODE;
    this.levels = mode.levels;
    this.walker = new Walker(mem, mode);
    this.tlb = new Tlb(opts.tlb ?? DEFAULT_TLB);
    this.pcide = opts.pcide ?? false;
    this.pge = opts.pge ?? true;
    this.ledger = opts.ledger ?? new CycleLedger();
    this.catWalk = this.ledger.id('tlb.walk');
    this.catStlb = this.ledger.id('tlb.stlb');
    this.catFlush = this.ledger.id('tlb.flush');
    const c = opts.costs ?? resolveCosts(ARCH_COSTS);
    this.cWalkRef = c['tlb.walk_ref'];
    this.cAdWrite = c['tlb.ad_write'];
    this.cStlbHit = c['tlb.stlb_hit'];
    this.cInvlpg = c['tlb.invlpg'];
    this.cCr3 = c['tlb.cr3_write'];
    this.cGlobal = c['tlb.flush_global'];
    this.nested = opts.nested ?? null;
    this.psc = new PagingStructureCaches(this.levels);
    this.nestedPsc = this.nested === null ? null : new PagingStructureCaches(this.nested.levels);
  }

  /** Current PCID (0 without CR4.PCIDE). */
  get pcid(): number {
    return this.tlb.pcid;
  }

  /**
   * MOV to CR3. Without PCIDE every non-global entry is dropped. With PCIDE the PCID is
   * `pcid` and, unless `noFlush` (CR3 bit 63), the non-global entries of that PCID are dropped.
   */
  writeCr3(root: number, pcid = 0, noFlush = false): void {
    if (!this.mem.isTable(root)) throw new Error(`CR3 frame 0x${root.toString(16)} is not a page table`);
    // Validate before any state changes, so a refused write leaves CR3, the TLB and the ledger alone.
    if (this.pcide && (!Number.isInteger(pcid) || pcid < 0 || pcid > 4095))
      throw new Error(`PCID ${pcid} is not 0..4095`);
    this.root = root;
    this.cr3Writes++;
    this.ledger.charge(this.catFlush, this.cCr3);
    if (!this.pcide) {
      this.tlb.pcid = 0;
      this.tlb.flush(-1, false);
      this.psc.flush(-1);
      return;
    }
    this.tlb.pcid = pcid;
    if (!noFlush) {
      this.tlb.flush(pcid, false);
      this.psc.flush(pcid);
    }
  }

  /**
   * A guest-kernel access to the contents of frame `pfn` (a copy into it, zeroing, a COW copy),
   * made through the kernel's direct map and not walked here: under nested paging the first
   * access to a guest frame takes an EPT violation, as any other access would.
   */
  kernelAccess(pfn: number): void {
    const n = this.nested;
    if (n !== null && n.mapped[pfn] === 0) n.violation(pfn);
  }

  /** INVLPG: this PCID's and global entries for the page. */
  invlpg(hi: number, lo: number): void {
    this.invlpgs++;
    this.ledger.charge(this.catFlush, this.cInvlpg);
    this.tlb.invlpg(hi, lo);
    this.psc.flush(this.tlb.pcid);
  }

  /** Flush everything, global entries included (CR4.PGE toggle / INVPCID all-context). */
  flushAll(): void {
    this.fullFlushes++;
    this.ledger.charge(this.catFlush, this.cGlobal);
    this.tlb.flush(-1, true);
    this.psc.flush(-1);
  }

  /**
   * One access. Returns the 4 KiB guest-physical frame, TRANSLATE_PF (error code in faultCode;
   * the address's TLB entries are invalidated) or TRANSLATE_GP for a non-canonical address.
   */
  translate(hi: number, lo: number, access: number): number {
    this.accesses++;
    if (!isCanonical(hi, this.levels)) {
      this.gpFaults++;
      return TRANSLATE_GP;
    }
    const tlb = this.tlb;
    const stlbBefore = tlb.stlbHits;
    if (tlb.lookup(hi, lo)) {
      if (tlb.stlbHits !== stlbBefore) this.ledger.charge(this.catStlb, this.cStlbHit);
      const m = tlb.hitMeta;
      if (
        this.walker.permissionFault(m, (m & TLB_XD) !== 0, tlbEntryPkey(m), access) === 0 &&
        ((access & ACCESS_WRITE) === 0 || (m & TLB_DIRTY) !== 0)
      ) {
        return tlb.hitPfn;
      }
      tlb.dropLastHit(hi, lo);
    }
    return this.walkAndFill(hi, lo, access);
  }

  /**
   * `count` accesses to the same page (a run). Only the first can miss; the others are L1 hits
   * that change nothing (DESIGN: page-granular batching of access runs).
   */
  translateRun(hi: number, lo: number, access: number, count: number): number {
    const pfn = this.translate(hi, lo, access);
    if (pfn >= 0 && count > 1) {
      this.accesses += count - 1;
      this.tlb.l1Hits += count - 1;
    }
    return pfn;
  }

  private walkAndFill(hi: number, lo: number, access: number): number {
    const w = this.walker;
    this.walks++;
    const ok = w.walk(this.root, hi, lo, access);
    const nested = this.nested;
    // The paging-structure caches: the upper reads a cached entry stands for are not charged.
    const skip = this.psc.walk(hi, lo, this.tlb.pcid, w.level);
    const guestRefs = w.refs - skip;
    // 2D walk: each guest entry read needs its table's guest-physical address translated through
    // the host levels first; a successful walk then translates the page's own guest-physical
    // address, a faulting one has none to translate. A host translation whose upper entries are
    // cached reads fewer host levels.
    let refs = guestRefs;
    if (nested !== null) {
      for (let l = this.levels - skip; l >= w.level; l--) refs += this.hostRefs(w.tables[l]!);
      if (ok) refs += this.hostRefs(w.pfn);
    }
    this.walkRefs += refs;
    this.adWrites += w.adWrites;
    this.ledger.charge(this.catWalk, refs * this.cWalkRef + w.adWrites * this.cAdWrite);
    if (!ok) {
      this.pageFaults++;
      this.faultCode = w.errorCode;
      // SDM §4.10.4.1: a #PF invalidates the address's TLB entries. None can be left here: the
      // lookup missed, or its stale hit was dropped for every PCID before the walk.
      return TRANSLATE_PF;
    }
    if (nested !== null) {
      // The guest-physical pages this walk used: its tables and the page itself.
      for (let l = this.levels; l >= w.level; l--)
        if (nested.mapped[w.tables[l]!] === 0) nested.violation(w.tables[l]!);
      if (nested.mapped[w.pfn] === 0) nested.violation(w.pfn);
    }
    const flags = w.rights | (w.xd ? TLB_XD : 0) | (w.dirty ? TLB_DIRTY : 0) | (w.global && this.pge ? TLB_GLOBAL : 0);
    this.tlb.fill(hi, lo, w.level, w.basePfn, flags, w.pkey);
    return w.pfn;
  }

  /** Host (EPT/NPT) reads to translate guest frame `gfn`, through the host's paging-structure caches. */
  private hostRefs(gfn: number): number {
    const psc = this.nestedPsc!;
    const m = this.nested!.levels;
    // The guest frame as the host's "address": its gfn's bits above 32 in hi, the rest in lo.
    return m - psc.walk(Math.floor(gfn / 1048576), ((gfn % 1048576) * 4096) >>> 0, 0, 1);
  }

  /** Add this MMU's statistics to `counters` under dotted names. */
  addCountersTo(counters: Counters): void {
    const add = (name: string, v: number) => counters.add(counters.id(name), v);
    add('mmu.accesses', this.accesses);
    add('tlb.l1_hits', this.tlb.l1Hits);
    add('tlb.stlb_hits', this.tlb.stlbHits);
    add('tlb.misses', this.tlb.misses);
    add('tlb.walks', this.walks);
    add('tlb.walk_refs', this.walkRefs);
    add('tlb.psc_hits', this.psc.hits);
    add('tlb.ad_writes', this.adWrites);
    add('tlb.invlpg', this.invlpgs);
    add('tlb.cr3_writes', this.cr3Writes);
    add('tlb.full_flushes', this.fullFlushes);
    add('faults.hw_pf', this.pageFaults);
    add('faults.hw_gp', this.gpFaults);
  }
}
