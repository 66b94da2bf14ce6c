/**
 * XenPvMmu, the guest's pvops backend for Xen PV (arch/x86/xen/mmu_pv.c, multicalls.c), against
 * the hypervisor: how many hypercalls and entries each guest operation costs (hypervisors.md §2,
 * §7.1–7.2), multicall batching at MC_BATCH entries and MC_ARGS bytes, and the pin/unpin batches.
 */
import { A, ACCESS_USER, ACCESS_WRITE, D, entryPfn, LINUX_PAGE_TABLE, P, RW, US } from '@pte/arch-x86';
import { Counters } from '@pte/core';
import { PVOPS_COSTS, PvMmuOps } from '@pte/pvops';
import { MC_BATCH, MMU_UPDATES_PER_MULTICALL, MMUEXT_OPS_PER_MULTICALL, XenPvMmu } from '../src/index.js';
import {
  buildTree,
  delta,
  entHi,
  entLo,
  only,
  rig,
  snap,
  treeVpn,
  userPte,
  vpnHi,
  vpnLo,
  type Rig,
} from './helpers.js';

/** A pinned tree with one empty PTE page (and a second with 2 PTEs), CR3 loaded. */
function pinned(pteWrite: 'mmu_update' | 'update_va_mapping' | 'ptwr' = 'mmu_update') {
  const r = rig(pteWrite);
  const t = buildTree(r, [0, 2]);
  r.pv.pgdPin(t.root);
  r.pv.writeCr3(t.root, 0);
  return { r, t, l1: t.l1[0]! };
}

/** The count argument of every HYPERVISOR_mmu_update issued directly (not inside a multicall). */
function spyMmuUpdateCounts(r: Rig): number[] {
  const counts: number[] = [];
  const orig = r.xen.mmuUpdate.bind(r.xen);
  r.xen.mmuUpdate = (q, first, count) => {
    counts.push(count);
    return orig(q, first, count);
  };
  return counts;
}

/** Entries of each multicall issued. */
function spyMulticallEntries(r: Rig): number[] {
  const sizes: number[] = [];
  const orig = r.xen.multicall.bind(r.xen);
  r.xen.multicall = (q) => {
    sizes.push(q.entries);
    return orig(q);
  };
  return sizes;
}

describe('PTE writes (hypervisors.md §7.1)', () => {
  it('16 set_pte in lazy MMU mode on a pinned table: nothing until leave, then exactly one mmu_update of 16 entries, no multicall', () => {
    const { r, l1 } = pinned();
    const counts = spyMmuUpdateCounts(r);
    const before = snap(r);
    r.pv.lazyEnter();
    for (let j = 0; j < 16; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, true), 0);
    expect(r.xen.hypercalls).toBe(before.hypercalls); // queued, not issued
    expect(r.xen.mem.readLo(r.pv.mfn(l1), 0)).toBe(0); // and not yet in memory
    r.pv.lazyLeave();
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, mmu_update: 1, updateEntries: 16, pteWrites: 16 }));
    expect(counts).toEqual([16]);
    for (let j = 0; j < 16; j++) expect(r.xen.mem.readLo(r.pv.mfn(l1), j)).toBe(userPte(r, 2000 + j, true));
    for (let j = 0; j < 16; j++) expect(r.xen.writable[r.pv.mfn(2000 + j)]).toBe(2);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('40 PTEs in lazy mode: two mmu_update hypercalls of 31 and 9 (MC_ARGS / 16 bytes, strict >=)', () => {
    expect(MMU_UPDATES_PER_MULTICALL).toBe(31);
    const { r, l1 } = pinned();
    const counts = spyMmuUpdateCounts(r);
    const before = snap(r);
    r.pv.lazyEnter();
    for (let j = 0; j < 31; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, false), 0);
    expect(r.xen.hypercalls).toBe(before.hypercalls);
    r.pv.setPte(l1, 31, userPte(r, 2031, false), 0); // the 32nd does not fit: the 31 go first
    expect(counts).toEqual([31]);
    for (let j = 32; j < 40; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, false), 0);
    r.pv.lazyLeave();
    expect(counts).toEqual([31, 9]);
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 2, mmu_update: 2, updateEntries: 40, pteWrites: 40 }));
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('set_ptes in lazy mode: ⌈N/31⌉ hypercalls, each next frame translated through the P2M page by page', () => {
    for (const [n, want] of [
      [1, [1]],
      [16, [16]],
      [31, [31]],
      [32, [31, 1]],
      [64, [31, 31, 2]],
    ] as const) {
      const { r, l1 } = pinned();
      const counts = spyMmuUpdateCounts(r);
      const before = snap(r);
      r.pv.lazyEnter();
      r.pv.setPtes(l1, 100, n, userPte(r, 2048, true), 0);
      r.pv.lazyLeave();
      expect([n, counts]).toEqual([n, want]);
      expect(delta(before, snap(r))).toEqual(
        only({ hypercalls: want.length, mmu_update: want.length, updateEntries: n, pteWrites: n }),
      );
      let contiguous = 0;
      for (let i = 0; i < n; i++) {
        const lo = r.xen.mem.readLo(r.pv.mfn(l1), 100 + i);
        expect(entryPfn(1, lo, 0)).toBe(r.xen.p2m[2048 + i]);
        expect(lo & 0xfff).toBe(P | US | A | RW | D);
        if (i > 0 && r.xen.p2m[2048 + i] === r.xen.p2m[2048 + i - 1]! + 1) contiguous++;
      }
      expect(contiguous).toBeLessThan(Math.max(1, n / 4)); // machine frames are scattered
      expect(r.xen.checkInvariants()).toEqual([]);
    }
  });

  it('outside lazy mode each PTE is its own hypercall: mmu_update (modern), update_va_mapping (2.6.27), or a trapped store (ptwr)', () => {
    const cases = [
      ['mmu_update', only({ hypercalls: 16, mmu_update: 16, updateEntries: 16, pteWrites: 16 })],
      ['update_va_mapping', only({ hypercalls: 16, update_va_mapping: 16, updateEntries: 16, pteWrites: 16 })],
      ['ptwr', only({ ptwrEmulations: 16, pteWrites: 16 })],
    ] as const;
    for (const [mode, want] of cases) {
      const { r, l1 } = pinned(mode);
      const before = snap(r);
      for (let j = 0; j < 16; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, true), 0);
      expect([mode, delta(before, snap(r))]).toEqual([mode, want]);
      for (let j = 0; j < 16; j++) expect(r.xen.mem.readLo(r.pv.mfn(l1), j)).toBe(userPte(r, 2000 + j, true));
      expect(r.xen.checkInvariants()).toEqual([]);
    }
  });

  it('a table of an unpinned address space is ordinary memory: plain stores, no hypercall, a native store charged', () => {
    const r = rig();
    const t = buildTree(r, [0]);
    const before = snap(r);
    const cycles = r.ledger.get('guest.pte_write');
    r.pv.lazyEnter();
    for (let j = 0; j < 40; j++) r.pv.setPte(t.l1[0]!, j, userPte(r, 2000 + j, true), 0);
    r.pv.lazyLeave();
    r.pv.ptepGetAndClear(t.l1[0]!, 0);
    r.pv.ptepSetWrprotect(t.l1[0]!, 1);
    expect(delta(before, snap(r))).toEqual(only({ pteWrites: 42 }));
    expect(r.ledger.get('guest.pte_write') - cycles).toBe(42 * PVOPS_COSTS['native.pte_store'].cycles);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('nested lazy mode: an inner leave flushes (arch_flush_lazy_mmu_mode), the outer one flushes the rest', () => {
    const { r, l1 } = pinned();
    const counts = spyMmuUpdateCounts(r);
    r.pv.lazyEnter();
    r.pv.setPte(l1, 0, userPte(r, 2000, false), 0);
    r.pv.lazyEnter();
    r.pv.setPte(l1, 1, userPte(r, 2001, false), 0);
    r.pv.lazyLeave();
    expect(counts).toEqual([2]);
    r.pv.setPte(l1, 2, userPte(r, 2002, false), 0);
    r.pv.lazyLeave();
    expect(counts).toEqual([2, 1]);
    expect(r.pv.lazyDepth).toBe(0);
  });

  it('zap and mprotect paths: ptep_get_and_clear batches in lazy mode and traps outside it; modify_prot_commit is MMU_PT_UPDATE_PRESERVE_AD', () => {
    const { r, l1 } = pinned();
    r.pv.lazyEnter();
    for (let j = 0; j < 20; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, true), 0);
    r.pv.lazyLeave();
    let before = snap(r);
    r.pv.lazyEnter();
    for (let j = 0; j < 10; j++) {
      r.pv.ptepGetAndClear(l1, j);
      expect(r.pv.oldLo).toBe(userPte(r, 2000 + j, true));
    }
    r.pv.lazyLeave();
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, mmu_update: 1, updateEntries: 10, pteWrites: 10 }));
    before = snap(r);
    r.pv.ptepGetAndClear(l1, 10);
    expect(delta(before, snap(r))).toEqual(only({ ptwrEmulations: 1, pteWrites: 1 }));
    before = snap(r);
    r.pv.lazyEnter();
    for (let j = 11; j < 20; j++) {
      r.pv.ptepModifyProtStart(l1, j);
      r.pv.ptepModifyProtCommit(l1, j, (r.pv.oldLo & ~RW) >>> 0, r.pv.oldHi);
    }
    r.pv.lazyLeave();
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, mmu_update: 1, updateEntries: 9, pteWrites: 9 }));
    for (let j = 0; j < 20; j++) expect(r.xen.writable[r.pv.mfn(2000 + j)]).toBe(1);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('mprotect in lazy mode: a batched commit still preserves the A/D bits the hardware set after ptep_modify_prot_start', () => {
    const { r, l1 } = pinned();
    const pte = entLo(r.pv.mfn(2100), P | US | RW);
    r.pv.setPte(l1, 7, pte, 0);
    r.pv.setPte(l1, 8, entLo(r.pv.mfn(2101), P | US | RW), 0);
    const vpn = treeVpn(0, 7);
    r.pv.lazyEnter();
    r.pv.ptepModifyProtStart(l1, 7);
    expect(r.mmu.translate(vpnHi(vpn), vpnLo(vpn), ACCESS_USER | ACCESS_WRITE)).toBe(r.pv.mfn(2100)); // sets A and D
    r.pv.ptepModifyProtCommit(l1, 7, (r.pv.oldLo & ~RW) >>> 0, r.pv.oldHi);
    r.pv.ptepModifyProtStart(l1, 8);
    r.pv.ptepModifyProtCommit(l1, 8, (r.pv.oldLo & ~RW) >>> 0, r.pv.oldHi);
    r.pv.lazyLeave();
    expect(r.xen.mem.readLo(r.pv.mfn(l1), 7)).toBe((pte & ~RW) | A | D);
    expect(r.xen.mem.readLo(r.pv.mfn(l1), 8) & (A | D | RW)).toBe(0);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('a refused PTE write is reported back to the guest (failures) and leaves memory as it was', () => {
    const { r, t, l1 } = pinned();
    r.pv.lazyEnter();
    r.pv.setPte(l1, 0, userPte(r, 2000, true), 0);
    r.pv.setPte(l1, 1, entLo(r.pv.mfn(t.l2), P | RW | US), 0); // writable alias of the L2
    r.pv.setPte(l1, 2, userPte(r, 2002, true), 0);
    r.pv.lazyLeave();
    expect([r.pv.failures, r.xen.refused]).toEqual([1, 1]);
    expect(r.xen.mem.readLo(r.pv.mfn(l1), 1)).toBe(0);
    expect(r.xen.mem.readLo(r.pv.mfn(l1), 2)).toBe(userPte(r, 2002, true)); // do_mmu_update carries on
    expect(r.xen.checkInvariants()).toEqual([]);
  });
});

describe('the multicall buffer (arch/x86/xen/multicalls.c)', () => {
  it('flushes at MC_BATCH = 32 entries: 33 direct-map updates in lazy mode are one multicall of 32, then one lone call', () => {
    expect(MC_BATCH).toBe(32);
    const { r, t } = pinned();
    const sizes = spyMulticallEntries(r);
    const before = snap(r);
    // New upper-level tables of a pinned mm: each one MULTI_update_va_mapping (0 argument bytes).
    r.pv.lazyEnter();
    for (let i = 0; i < 33; i++) r.pv.allocPt(2, 600 + i, t.root);
    expect(sizes).toEqual([32]);
    r.pv.lazyLeave();
    expect(sizes).toEqual([32]); // the 33rd alone: xen_single_call, not a multicall
    expect(delta(before, snap(r))).toEqual(
      only({ hypercalls: 2, multicall: 1, update_va_mapping: 33, updateEntries: 33, multicallEntries: 32 }),
    );
    for (let i = 0; i < 33; i++) expect(r.xen.directMapRW[600 + i]).toBe(0);
    // Released outside lazy mode: one update_va_mapping each, issued at once.
    const mid = snap(r);
    for (let i = 0; i < 33; i++) r.pv.releasePt(2, 600 + i, t.root);
    expect(delta(mid, snap(r))).toEqual(only({ hypercalls: 33, update_va_mapping: 33, updateEntries: 33 }));
    for (let i = 0; i < 33; i++) expect(r.xen.directMapRW[600 + i]).toBe(1);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('flushes when the argument area would fill: 21 mmuext_op (24 bytes each) per multicall', () => {
    expect(MMUEXT_OPS_PER_MULTICALL).toBe(21);
    const { r } = pinned();
    const sizes = spyMulticallEntries(r);
    const before = snap(r);
    const invlpgs = r.mmu.invlpgs;
    r.pv.lazyEnter();
    for (let i = 0; i < 22; i++) r.pv.flushTlbOne(vpnHi(treeVpn(0, i)), vpnLo(treeVpn(0, i)));
    expect(sizes).toEqual([21]);
    r.pv.lazyLeave();
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 2, multicall: 1, mmuext_op: 22, multicallEntries: 21 }));
    expect(r.mmu.invlpgs - invlpgs).toBe(22);
  });

  it('consecutive mmu_update requests share one entry; another op in between starts a new one', () => {
    const { r, l1 } = pinned();
    const sizes = spyMulticallEntries(r);
    const before = snap(r);
    r.pv.lazyEnter();
    for (let j = 0; j < 3; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, false), 0);
    r.pv.flushTlbOne(vpnHi(treeVpn(0, 0)), vpnLo(treeVpn(0, 0)));
    for (let j = 3; j < 5; j++) r.pv.setPte(l1, j, userPte(r, 2000 + j, false), 0);
    r.pv.lazyLeave();
    expect(sizes).toEqual([3]);
    expect(delta(before, snap(r))).toEqual(
      only({
        hypercalls: 1,
        multicall: 1,
        mmu_update: 2,
        mmuext_op: 1,
        updateEntries: 5,
        multicallEntries: 3,
        pteWrites: 5,
      }),
    );
  });
});

describe('page-table pages: alloc/release, pin/unpin (hypervisors.md §2.1, §2.4)', () => {
  it('a new PTE page of a pinned mm: one batch of [direct map RO, PIN_L1]; hooking it is one mmu_update; release is [UNPIN, direct map RW]', () => {
    const { r, t } = pinned();
    const x = r.xen;
    const f = 700;
    let before = snap(r);
    r.pv.allocPt(1, f, t.root);
    expect(delta(before, snap(r))).toEqual(
      only({
        hypercalls: 1,
        multicall: 1,
        update_va_mapping: 1,
        mmuext_op: 1,
        updateEntries: 1,
        multicallEntries: 2,
        pins: 1,
      }),
    );
    expect([x.ptType[r.pv.mfn(f)], x.ptRefs[r.pv.mfn(f)], x.pinned[r.pv.mfn(f)], x.directMapRW[f]]).toEqual([
      1, 1, 1, 0,
    ]);
    before = snap(r);
    r.pv.setUpper(2, t.l2, 9, entLo(r.pv.mfn(f), LINUX_PAGE_TABLE), entHi(r.pv.mfn(f)));
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, mmu_update: 1, updateEntries: 1, pteWrites: 1 }));
    expect(x.ptRefs[r.pv.mfn(f)]).toBe(2);
    // free_pte_range: pmd_clear first, then the release.
    before = snap(r);
    r.pv.setUpper(2, t.l2, 9, 0, 0);
    r.pv.releasePt(1, f, t.root);
    expect(delta(before, snap(r))).toEqual(
      only({
        hypercalls: 2,
        mmu_update: 1,
        multicall: 1,
        update_va_mapping: 1,
        mmuext_op: 1,
        updateEntries: 2,
        multicallEntries: 2,
        unpins: 1,
        pteWrites: 1,
      }),
    );
    expect([x.ptType[r.pv.mfn(f)], x.ptRefs[r.pv.mfn(f)], x.pinned[r.pv.mfn(f)], x.directMapRW[f]]).toEqual([
      0, 0, 0, 1,
    ]);
    expect(r.xen.mem.isTable(r.pv.mfn(f))).toBe(false);
    // A new upper table: the direct-map update alone (a lone entry: no multicall).
    before = snap(r);
    r.pv.allocPt(2, f, t.root);
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, update_va_mapping: 1, updateEntries: 1 }));
    r.pv.releasePt(2, f, t.root);
    expect(x.checkInvariants()).toEqual([]);
  });

  it('releasing a PTE page still hooked into a validated table is refused (its direct map cannot become writable)', () => {
    // The order free_pte_range keeps (clear the PMD, then release) matters under Xen.
    const { r, t } = pinned();
    const before = snap(r);
    r.pv.releasePt(1, t.l1[1]!, t.root);
    const d = delta(before, snap(r));
    expect([d.unpins, d.refused, d.failures]).toEqual([1, 1, 1]);
    expect(r.xen.ptRefs[r.pv.mfn(t.l1[1]!)]).toBe(1); // the L2 entry still references it
  });

  it.each([1, 4, 20])(
    'pgd pin of a tree with %i PTE pages: one batch of (#tables) direct-map RO + (#PTE pages) PIN_L1 + 1 PIN_L4 entries',
    (k1) => {
      const r = rig();
      const t = buildTree(
        r,
        Array.from({ length: k1 }, (_, i) => 1 + (i % 7)),
      );
      const ptes = Array.from({ length: k1 }, (_, i) => 1 + (i % 7)).reduce((a, b) => a + b, 0);
      const sizes = spyMulticallEntries(r);
      const before = snap(r);
      r.pv.pgdPin(t.root);
      // The model's formula (xen_pgd_pin with split PTE locks, no x86-64 user pgd):
      const entries = t.pages + k1 + 1;
      const chunks: number[] = [];
      for (let left = entries; left > 0; left -= MC_BATCH) chunks.push(Math.min(MC_BATCH, left));
      expect(sizes).toEqual(chunks); // no chunk of 1 for these sizes, so every flush is a multicall
      const d = delta(before, snap(r));
      expect(d).toEqual(
        only({
          pinBatches: 1,
          hypercalls: chunks.length,
          multicall: chunks.length,
          multicallEntries: entries,
          update_va_mapping: t.pages,
          mmuext_op: k1 + 1,
          updateEntries: t.pages,
          pins: k1 + 1,
          // Each present entry validated once: the PTEs at PIN_L1, the upper entries at PIN_L4.
          validatedEntries: ptes + k1 + 1 + 1,
        }),
      );
      // hypervisors.md §2.4/§7.2 say ≈ (#PT pages + 2): PIN_L4 of the kernel and the user pgd. The
      // model pins the PTE pages one by one too (split ptlocks) and has no user pgd:
      expect(entries - (t.pages + 2)).toBe(k1 - 1);
      // Pinned again: nothing to do.
      const again = snap(r);
      r.pv.pgdPin(t.root);
      expect(delta(again, snap(r))).toEqual(only({}));
      expect(r.xen.checkInvariants()).toEqual([]);
    },
  );

  it('pgd unpin: one batch of UNPIN(pgd) + per table a direct-map RW + per PTE page an UNPIN; afterwards every write is a plain store', () => {
    const k1 = 20;
    const r = rig();
    const t = buildTree(
      r,
      Array.from({ length: k1 }, () => 300),
    );
    r.pv.pgdPin(t.root);
    const sizes = spyMulticallEntries(r);
    const before = snap(r);
    r.pv.pgdUnpin(t.root);
    const entries = 1 + t.pages + k1;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(entries);
    expect(sizes).toEqual([32, entries - 32]);
    expect(delta(before, snap(r))).toEqual(
      only({
        hypercalls: 2,
        multicall: 2,
        multicallEntries: entries,
        update_va_mapping: t.pages,
        mmuext_op: k1 + 1,
        updateEntries: t.pages,
        unpins: k1 + 1,
      }),
    );
    const x = r.xen;
    for (let f = 0; f < x.mem.frames; f++) {
      if (x.ptRefs[f] !== 0 || x.ptType[f] !== 0 || x.pinned[f] !== 0)
        throw new Error(`frame ${f} still typed after unpin`);
    }
    for (const pfn of [t.root, t.l3, t.l2, ...t.l1]) expect(x.directMapRW[pfn]).toBe(1);
    // The zap of all 6000 PTEs: plain stores, not one hypercall.
    const zap = snap(r);
    r.pv.lazyEnter();
    for (const l1 of t.l1) for (let j = 0; j < 300; j++) r.pv.ptepGetAndClear(l1, j);
    r.pv.lazyLeave();
    expect(delta(zap, snap(r))).toEqual(only({ pteWrites: k1 * 300 }));
    expect(x.checkInvariants()).toEqual([]);
  });

  it('write_cr3 is MMUEXT_NEW_BASEPTR; TLB flushes are mmuext ops; a #PF is bounced through Xen', () => {
    const { r, t } = pinned();
    const before = snap(r);
    r.pv.writeCr3(t.root, 0);
    r.pv.flushTlbAll();
    r.pv.flushTlbOne(0, 0);
    r.pv.onPageFault();
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 3, mmuext_op: 3, pfBounces: 1 }));
    expect(r.ledger.get('xen.pf_bounce')).toBe(1000);
    // An unpinned pgd cannot be loaded.
    const u = buildTree(r, [1], { tableBase: 800, dataBase: 3000 });
    r.pv.writeCr3(u.root, 0);
    expect(r.pv.failures).toBe(1);
    expect(r.mmu.root).toBe(r.pv.mfn(t.root));
  });

  it('publishes its counters as xen.*', () => {
    const { r, l1 } = pinned();
    r.pv.setPte(l1, 0, userPte(r, 2000, true), 0);
    r.mmu.translate(vpnHi(treeVpn(0, 0)), vpnLo(treeVpn(0, 0)), ACCESS_USER);
    const c = new Counters();
    r.pv.addCountersTo(c);
    const s = c.snapshot();
    expect(s['xen.op.mmu_update']).toBe(r.xen.byOp[1]);
    expect(s['xen.hypercalls']).toBe(r.xen.hypercalls);
    expect(s['xen.pin_batches']).toBe(1);
    expect(s['xen.pins']).toBe(3); // the pgd and both PTE pages
    expect(s['xen.refused']).toBe(0);
    expect(s['pte.writes']).toBe(r.pv.pteWrites);
    expect(r.pv).toBeInstanceOf(PvMmuOps);
    expect(r.pv).toBeInstanceOf(XenPvMmu);
  });
});
