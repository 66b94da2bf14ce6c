import { CycleLedger, resolveCosts, type CostTable, type Counters } from '@pte/core';
import { frameHi, frameLo, A, entryPfn, isLeaf, P, RW, type Mmu } from '@pte/arch-x86';
import { PGD_PIN_PHASE, PVOPS_COSTS, PvMmuOps, type PvopsCostKey } from '@pte/pvops';
import {
  HYPERVISOR,
  hypercallName,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_PRESERVE_AD,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  MMUEXT_UNPIN_TABLE,
  UVMF_NONE,
} from './abi.js';

import { XEN_OK, type XenHypervisor } from './hypervisor.js';
import { McQueue, MMU_UPDATE_BYTES, MMUEXT_OP_BYTES } from './multicall.js';

const HC_MMU_UPDATE = HYPERVISOR.mmu_update;
const HC_UPDATE_VA_MAPPING = HYPERVISOR.update_va_mapping;
const HC_MMUEXT_OP = HYPERVISOR.mmuext_op;

/**
 * How the guest writes a PTE of a pinned table outside a batch:
 * - `mmu_update`: modern xen_set_pte, one HYPERVISOR_mmu_update ("a hypercall is much cheaper"
 *   than trap-and-emulate, arch/x86/xen/mmu_pv.c);
 * - `update_va_mapping`: the 2008 xen_set_pte_at for the current mm (2.6.27);
 * - `ptwr`: a plain store that Xen traps and emulates (writable page tables, VMASST 2).
 */
export type XenPteWrite = 'mmu_update' | 'update_va_mapping' | 'ptwr';

/**
 * What the guest does about stale vmap aliases before it pins a page as a page table (seed 003):
 * - `none`: nothing — Xen refuses the pin if a lazily freed vmap area still maps the page writable;
 * - `always`: vm_unmap_aliases() before every pin (Jeremy Fitzhardinge's fix, "xen: make sure
 *   stray alias mappings are gone before pinning", Oct 2008);
 * - `check`: only when a page to pin still has an alias (Nick Piggin's per-page p→v bit).
 * The third alternative of the thread, a cache of alias-free page-table pages, is the guest
 * kernel's `pt_cache` policy.
 */
export type XenAliasPolicy = 'none' | 'always' | 'check';

/**
 * The guest side of Xen PV: Linux's pv_mmu_ops for Xen (arch/x86/xen/mmu_pv.c, multicalls.c),
 * hypervisors.md §2. Tables of a pinned address space are read-only to the guest: every write to
 * them is a hypercall (batched in a multicall while in lazy MMU mode), or a trapped store.
 * Unpinned tables (a child during fork before its pin, everything after exit_mmap's unpin) are
 * ordinary memory: plain stores, no hypercall.
 *
 * Frames: the kernel builds entries with machine frames (`mfn`, the P2M) and this backend
 * addresses tables by their machine frame.
 */
export class XenPvMmu extends PvMmuOps {
  readonly q = new McQueue();
  private readonly ledger: CycleLedger;
  /** The ledger phase of xen_pgd_pin / xen_pgd_unpin (PGD_PIN_PHASE). */
  private readonly pinPhase: number;
  /** PagePinned per guest frame (a table of a pinned address space). */
  private readonly pagePinned: Uint8Array;
  private readonly catWrite: number;
  private readonly cStore: number;
  /** Logical pin batches issued (xen_pgd_pin), each possibly several multicalls. */
  pinBatches = 0;
  /** Failed requests reported back to the guest. */
  failures = 0;

  constructor(
    readonly xen: XenHypervisor,
    readonly mmu: Mmu,
    readonly pteWrite: XenPteWrite = 'mmu_update',
    ledger: CycleLedger = new CycleLedger(),
    costs: CostTable<PvopsCostKey> = resolveCosts(PVOPS_COSTS),
    readonly aliasPolicy: XenAliasPolicy = 'always',
    /**
     * vCPU 0's backend, for another vCPU's: PagePinned is a flag of the guest's pages, not of a
     * CPU, so it is shared; and the hypervisor's counters are published once, by vCPU 0.
     */
    private readonly first: XenPvMmu | null = null,
  ) {
    super('xen-pv', xen.mem);
    this.pagePinned = first !== null ? first.pagePinned : new Uint8Array(xen.guestFrames);
    this.catWrite = ledger.id('guest.pte_write');
    this.cStore = costs['native.pte_store'];
    this.ledger = ledger;
    this.pinPhase = ledger.definePhase(PGD_PIN_PHASE);
  }

  override mfn(pfn: number): number {
    return this.xen.p2m[pfn]!;
  }

  override pfnOf(mfn: number): number {
    return this.xen.m2p[mfn]!;
  }

  override onPageFault(): void {
    this.xen.bouncePageFault();
  }

  override addCountersTo(c: Counters): void {
    super.addCountersTo(c);
    const x = this.xen;
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('xen.pin_batches', this.pinBatches);
    if (this.first !== null) return;
    if (x.vcpus.length > 1) {
      add('smp.flush_hypercalls', x.flushMulti);
      add('xen.flush_ipis', x.flushIpis);
      add('xen.flush_descheduled', x.flushSkipped);
    }
    add('xen.hypercalls', x.hypercalls);
    for (let op = 0; op < x.byOp.length; op++) if (x.byOp[op] !== 0) add(`xen.op.${hypercallName(op)}`, x.byOp[op]!);
    add('xen.update_entries', x.updateEntries);
    add('xen.multicall_entries', x.multicallEntries);
    add('xen.validated_entries', x.validatedEntries);
    add('xen.ptwr_emulations', x.ptwrEmulations);
    add('xen.pf_bounces', x.pfBounces);
    add('xen.pins', x.pins);
    add('xen.unpins', x.unpins);
    add('xen.refused', x.refused);
  }

  // --- PTE writes ---------------------------------------------------------------------------

  setPte(table: number, index: number, lo: number, hi: number): void {
    this.pteWrites++;
    const t = this.mfn(table);
    if (this.pagePinned[table] === 0) return this.store(t, index, lo, hi);
    if (this.lazyDepth > 0) return this.queueUpdate(t, index, lo, hi, MMU_NORMAL_PT_UPDATE);
    switch (this.pteWrite) {
      case 'mmu_update':
        this.q.reset();
        this.q.pushMmuUpdate(HC_MMU_UPDATE, t, index, lo, hi, MMU_NORMAL_PT_UPDATE);
        this.check(this.xen.mmuUpdate(this.q, 0, 1));
        this.q.reset();
        return;
      case 'update_va_mapping':
        this.check(this.xen.updateVaMapping(t, index, lo, hi, UVMF_NONE, 0, 0));
        return;
      case 'ptwr':
        this.check(this.xen.ptwrStore(t, index, lo, hi));
    }
  }

  /**
   * set_ptes(): the generic loop, each next entry made with pte_next_pfn — pte_val/__pte, so the
   * frame advances in guest frames and is translated through the P2M one page at a time.
   */
  setPtes(table: number, index: number, nr: number, lo: number, hi: number): void {
    const pfn0 = this.pfnOf(entryPfn(1, lo, hi));
    const flagsLo = lo & 0xfff;
    const flagsHi = hi & 0xfff00000;
    for (let i = 0; i < nr; i++) {
      const m = this.mfn(pfn0 + i);
      this.setPte(table, index + i, (frameLo(m) + flagsLo) >>> 0, (frameHi(m) | flagsHi) >>> 0);
    }
  }

  ptepGetAndClear(table: number, index: number): void {
    const t = this.mfn(table);
    this.oldLo = this.mem.readLo(t, index);
    this.oldHi = this.mem.readHi(t, index);
    this.pteWrites++;
    if (this.pagePinned[table] === 0) return this.store(t, index, 0, 0);
    // Batched in lazy mode (Fitzhardinge, seed 001: Xen batches "mprotect and unmap"); outside it
    // the native xchg on a read-only table traps and is emulated.
    if (this.lazyDepth > 0) return this.queueUpdate(t, index, 0, 0, MMU_NORMAL_PT_UPDATE);
    this.check(this.xen.ptwrStore(t, index, 0, 0));
  }

  ptepModifyProtStart(table: number, index: number): void {
    const t = this.mfn(table);
    this.oldLo = this.mem.readLo(t, index);
    this.oldHi = this.mem.readHi(t, index);
  }

  /** xen_ptep_modify_prot_commit: MMU_PT_UPDATE_PRESERVE_AD, batched in lazy mode. */
  ptepModifyProtCommit(table: number, index: number, lo: number, hi: number): void {
    this.pteWrites++;
    const t = this.mfn(table);
    if (this.pagePinned[table] === 0) return this.store(t, index, lo, hi);
    if (this.lazyDepth > 0) return this.queueUpdate(t, index, lo, hi, MMU_PT_UPDATE_PRESERVE_AD);
    this.q.reset();
    this.q.pushMmuUpdate(HC_MMU_UPDATE, t, index, lo, hi, MMU_PT_UPDATE_PRESERVE_AD);
    this.check(this.xen.mmuUpdate(this.q, 0, 1));
    this.q.reset();
  }

  /** ptep_set_wrprotect is a native clear_bit: on a pinned (read-only) table it traps to ptwr. */
  ptepSetWrprotect(table: number, index: number): void {
    this.pteWrites++;
    const t = this.mfn(table);
    const lo = (this.mem.readLo(t, index) & ~RW) >>> 0;
    const hi = this.mem.readHi(t, index);
    if (this.pagePinned[table] === 0) return this.store(t, index, lo, hi);
    this.check(this.xen.ptwrStore(t, index, lo, hi));
  }

  /** ptep_test_and_clear_young is a native test_and_clear_bit: trapped on a pinned table. */
  ptepTestAndClearYoung(table: number, index: number): boolean {
    const t = this.mfn(table);
    const lo = this.mem.readLo(t, index);
    if ((lo & A) === 0) return false;
    this.pteWrites++;
    const hi = this.mem.readHi(t, index);
    if (this.pagePinned[table] === 0) this.store(t, index, (lo & ~A) >>> 0, hi);
    else this.check(this.xen.ptwrStore(t, index, (lo & ~A) >>> 0, hi));
    return true;
  }

  /** xen_set_pmd/pud/p4d: a plain store if the table is not pinned, else an mmu_update (batched when lazy). */
  setUpper(_level: number, table: number, index: number, lo: number, hi: number): void {
    this.pteWrites++; // an entry write through pvops, counted as NativePvMmu counts set_pmd & co.
    const t = this.mfn(table);
    if (this.pagePinned[table] === 0) return this.store(t, index, lo, hi);
    if (this.lazyDepth > 0) return this.queueUpdate(t, index, lo, hi, MMU_NORMAL_PT_UPDATE);
    this.q.reset();
    this.q.pushMmuUpdate(HC_MMU_UPDATE, t, index, lo, hi, MMU_NORMAL_PT_UPDATE);
    this.check(this.xen.mmuUpdate(this.q, 0, 1));
    this.q.reset();
  }

  // --- page-table pages -----------------------------------------------------------------------

  /**
   * xen_alloc_pte/pmd/...: in a pinned address space the new table is pinned at once — its
   * direct-map alias made read-only and, for a PTE page, MMUEXT_PIN_L1_TABLE — in one batch
   * (xen_alloc_ptpage). A new pgd, or a table of an unpinned mm, is ordinary memory.
   */
  allocPt(level: number, pfn: number, root: number): void {
    this.mem.makeTable(this.mfn(pfn));
    if (pfn === root || this.pagePinned[root] === 0) return;
    this.guardAliases(pfn);
    this.pagePinned[pfn] = 1;
    this.batch(() => {
      this.queueDirectMap(pfn, false);
      if (level === 1) this.queueMmuext(MMUEXT_PIN_L1_TABLE, this.mfn(pfn));
    });
  }

  /** xen_release_ptpage: unpin a PTE page and make its direct map writable again. */
  releasePt(level: number, pfn: number, _root: number): void {
    if (this.pagePinned[pfn] === 1) {
      this.pagePinned[pfn] = 0;
      this.batch(() => {
        if (level === 1) this.queueMmuext(MMUEXT_UNPIN_TABLE, this.mfn(pfn));
        this.queueDirectMap(pfn, true);
      });
    }
    this.mem.releaseTable(this.mfn(pfn));
  }

  /**
   * xen_pgd_pin (fork's xen_dup_mmap, exec's xen_activate_mm): one batch that makes every table
   * page read-only in the direct map, pins each PTE page (split page-table locks) and pins the pgd
   * as an L4, which validates the whole tree. The separate user pgd of x86-64 PV kernels (two more
   * entries) is not modelled.
   */
  pgdPin(root: number): void {
    if (this.pagePinned[root] === 1) return;
    this.ledger.inPhase(this.pinPhase, () => {
      if (this.aliasPolicy === 'always') this.guardAliases(root);
      else if (this.aliasPolicy === 'check') this.walkTables(root, 4, (pfn) => this.guardAliases(pfn));
      this.pinBatches++;
      this.batch(() => {
        this.walkTables(root, 4, (pfn, level) => {
          this.pagePinned[pfn] = 1;
          this.queueDirectMap(pfn, false);
          if (level === 1) this.queueMmuext(MMUEXT_PIN_L1_TABLE, this.mfn(pfn));
        });
        this.queueMmuext(MMUEXT_PIN_L4_TABLE, this.mfn(root));
      });
    });
  }

  /**
   * xen_pgd_unpin (exit_mmap): unpin the pgd, then each PTE page, and make every table writable in
   * the direct map again, so teardown is plain stores.
   */
  pgdUnpin(root: number): void {
    if (this.pagePinned[root] === 0) return;
    this.ledger.inPhase(this.pinPhase, () =>
      this.batch(() => {
        this.queueMmuext(MMUEXT_UNPIN_TABLE, this.mfn(root));
        this.walkTables(root, 4, (pfn, level) => {
          this.pagePinned[pfn] = 0;
          if (level === 1 && pfn !== root) this.queueMmuext(MMUEXT_UNPIN_TABLE, this.mfn(pfn));
          this.queueDirectMap(pfn, true);
        });
      }),
    );
  }

  /** Every table of the tree under `root` (the root last), as guest frames with their level. */
  private walkTables(table: number, level: number, fn: (pfn: number, level: number) => void): void {
    const t = this.mfn(table);
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        const lo = this.mem.readLo(t, i);
        if ((lo & P) === 0 || isLeaf(level, lo)) continue;
        this.walkTables(this.pfnOf(entryPfn(level, lo, this.mem.readHi(t, i))), level - 1, fn);
      }
    }
    fn(table, level);
  }

  /** Apply the alias policy before `pfn` is pinned. */
  private guardAliases(pfn: number): void {
    const v = this.vmapAliases;
    if (v === null) return;
    if (this.aliasPolicy === 'always' || (this.aliasPolicy === 'check' && v.hasAlias(pfn))) v.unmapAliases();
  }

  // --- TLB and CR3 ----------------------------------------------------------------------------

  /** xen_flush_tlb_one_user: MMUEXT_INVLPG_LOCAL through the multicall buffer. */
  flushTlbOne(hi: number, lo: number): void {
    this.batch(() => this.queueMmuext(MMUEXT_INVLPG_LOCAL, 0, hi, lo));
  }

  /** xen_flush_tlb: MMUEXT_TLB_FLUSH_LOCAL. */
  flushTlbAll(): void {
    this.batch(() => this.queueMmuext(MMUEXT_TLB_FLUSH_LOCAL, 0));
  }

  /**
   * xen_flush_tlb_multi(): one MMUEXT_INVLPG_MULTI (exactly one page) or MMUEXT_TLB_FLUSH_MULTI
   * for the vCPUs in `mask`, through the multicall buffer (batched in lazy MMU mode, issued at
   * once otherwise); Xen flushes them, this vCPU included.
   */
  override flushTlbMulti(mask: number, hi: number, lo: number, onePage: boolean): boolean {
    this.batch(() => this.queueMmuext(onePage ? MMUEXT_INVLPG_MULTI : MMUEXT_TLB_FLUSH_MULTI, mask, hi, lo));
    return true;
  }

  /** A Xen PV guest sends no flush IPIs: flushTlbMulti() asks Xen instead. */
  sendFlushIpis(targets: number): void {
    throw new Error(`xen-pv: ${targets} flush IPIs asked for, but Xen PV flushes other vCPUs by hypercall`);
  }

  /** xen_write_cr3: MMUEXT_NEW_BASEPTR (the user base pointer of x86-64 PV is not modelled). */
  writeCr3(root: number, _pcid: number): void {
    this.batch(() => this.queueMmuext(MMUEXT_NEW_BASEPTR, this.mfn(root)));
  }

  // --- lazy mode and the multicall buffer ---------------------------------------------------------

  protected archEnterLazy(): void {}

  protected archLeaveLazy(): void {
    this.flush();
  }

  protected archFlushLazy(): void {
    this.flush();
  }

  /** xen_mc_batch … xen_mc_issue(XEN_LAZY_MMU): issue now unless in lazy MMU mode. */
  private batch(fill: () => void): void {
    fill();
    if (this.lazyDepth === 0) this.flush();
  }

  /** xen_mc_flush: one hypercall for a single entry (xen_single_call), else a multicall. */
  flush(): void {
    const q = this.q;
    if (q.entries === 0) return;
    let failed = 0;
    try {
      if (q.entries === 1) {
        const op = q.op[0]!;
        if (op === HC_MMU_UPDATE) failed = this.xen.mmuUpdate(q, q.first[0]!, q.count[0]!);
        else if (op === HC_UPDATE_VA_MAPPING) {
          failed =
            this.xen.updateVaMapping(q.aTable[0]!, q.aIndex[0]!, q.aLo[0]!, q.aHi[0]!, q.aFlags[0]!, 0, 0) === XEN_OK
              ? 0
              : 1;
        } else failed = this.xen.mmuextOp(q.aFlags[0]!, q.aTable[0]!, q.aHi[0]!, q.aLo[0]!) === XEN_OK ? 0 : 1;
      } else {
        failed = this.xen.multicall(q);
      }
    } finally {
      q.reset(); // issued, even when a strict refusal throws: never re-sent
    }
    this.failures += failed;
  }

  private queueUpdate(t: number, index: number, lo: number, hi: number, cmd: number): void {
    const q = this.q;
    if (!q.canExtend(HC_MMU_UPDATE) && !q.fits(MMU_UPDATE_BYTES)) this.flush();
    q.pushMmuUpdate(HC_MMU_UPDATE, t, index, lo, hi, cmd);
  }

  /** A mmuext_op entry: the command in `flags`, its frame argument in `table`, a linear address in lo/hi. */
  private queueMmuext(cmd: number, arg: number, vaHi = 0, vaLo = 0): void {
    if (!this.q.fits(MMUEXT_OP_BYTES)) this.flush();
    this.q.pushInline(HC_MMUEXT_OP, arg, 0, vaLo, vaHi, cmd, MMUEXT_OP_BYTES);
  }

  /** MULTI_update_va_mapping of the direct-map alias of guest frame `pfn` (__set_pfn_prot). */
  private queueDirectMap(pfn: number, writable: boolean): void {
    if (!this.q.fits(0)) this.flush();
    this.q.pushInline(HC_UPDATE_VA_MAPPING, -1 - pfn, 0, writable ? RW : 0, 0, UVMF_NONE, 0);
  }

  private store(t: number, index: number, lo: number, hi: number): void {
    this.mem.write(t, index, lo, hi);
    this.ledger.charge(this.catWrite, this.cStore);
  }

  private check(rc: number): void {
    if (rc !== XEN_OK) this.failures++;
  }
}
