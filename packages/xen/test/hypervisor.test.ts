/**
 * XenHypervisor alone: the P2M, page types and type counts, validation on pin and on first
 * reference, devalidation on the last reference, the refusals of hypervisors.md §1.1 (no writable
 * mapping of a page-table frame, no page table with a writable mapping), MMU_PT_UPDATE_PRESERVE_AD,
 * ptwr emulation, and the invariant checker itself (it must be able to fail).
 */
import { PteError } from '@pte/core';
import { A, ACCESS_USER, ACCESS_WRITE, D, entryPfn, LINUX_PAGE_TABLE, P, PS, RW, US } from '@pte/arch-x86';
import {
  HYPERVISOR,
  McQueue,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_PRESERVE_AD,
  MMUEXT_FLUSH_CACHE,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_UNPIN_TABLE,
  UVMF_INVLPG,
  UVMF_NONE,
  UVMF_TLB_FLUSH,
  XEN_EINVAL,
  XEN_OK,
  XenHypervisor,
} from '../src/index.js';
import {
  buildTree,
  delta,
  entLo,
  only,
  rig,
  snap,
  treeVpn,
  userPte,
  vpnHi,
  vpnLo,
  type Rig,
  type Tree,
} from './helpers.js';

/** A pinned tree with 3 and 5 writable user PTEs in its two PTE pages. */
function pinnedTree(r: Rig = rig()): { r: Rig; t: Tree } {
  const t = buildTree(r, [3, 5]);
  r.pv.pgdPin(t.root);
  return { r, t };
}

/** One mmu_update request straight to the hypervisor (HYPERVISOR_mmu_update with count 1). */
function mmuUpdate(
  r: Rig,
  table: number,
  index: number,
  lo: number,
  hi: number,
  cmd: 0 | 1 | 2 | 3 = MMU_NORMAL_PT_UPDATE,
): number {
  const q = new McQueue();
  q.pushMmuUpdate(HYPERVISOR.mmu_update, r.pv.mfn(table), index, lo, hi, cmd);
  return r.xen.mmuUpdate(q, 0, 1);
}

/** The guest's direct-map alias of `pfn` made writable (true) or read-only (update_va_mapping). */
function directMap(r: Rig, pfn: number, writable: boolean): number {
  return r.xen.updateVaMapping(-1 - pfn, 0, writable ? RW : 0, 0, UVMF_NONE, 0, 0);
}

function readLo(r: Rig, table: number, index: number): number {
  return r.xen.mem.readLo(r.pv.mfn(table), index);
}

describe('P2M', () => {
  it("is a seeded permutation of the frames above Xen's: p2m and m2p are inverse, no guest frame maps a Xen frame", () => {
    const guestFrames = 5000;
    const x = new XenHypervisor({ guestFrames, seed: 7 });
    const xenFrames = Math.max(256, Math.floor(guestFrames / 16));
    expect(x.mem.frames).toBe(guestFrames + xenFrames);
    const hits = new Uint8Array(x.mem.frames);
    const bad: string[] = [];
    let moved = 0;
    for (let pfn = 0; pfn < guestFrames; pfn++) {
      const mfn = x.p2m[pfn]!;
      if (mfn < xenFrames || mfn >= x.mem.frames) bad.push(`pfn ${pfn} → mfn ${mfn} outside the domain`);
      if (hits[mfn]!++ !== 0) bad.push(`mfn ${mfn} backs two guest frames`);
      if (x.m2p[mfn] !== pfn) bad.push(`m2p[${mfn}] = ${x.m2p[mfn]}, not ${pfn}`);
      if (mfn !== pfn + xenFrames) moved++;
    }
    for (let mfn = 0; mfn < xenFrames; mfn++) if (x.m2p[mfn] !== -1) bad.push(`Xen frame ${mfn} has m2p ${x.m2p[mfn]}`);
    expect(bad).toEqual([]);
    // Scattered, not an offset copy: almost every frame moved.
    expect(moved).toBeGreaterThan(guestFrames * 0.99);
    // Seeded: the same seed gives the same map, another seed another one.
    expect(new XenHypervisor({ guestFrames, seed: 7 }).p2m).toEqual(x.p2m);
    expect(new XenHypervisor({ guestFrames, seed: 8 }).p2m).not.toEqual(x.p2m);
  });

  it('starts every guest frame with exactly one writable mapping (its direct-map alias) and no type', () => {
    const x = new XenHypervisor({ guestFrames: 1000, seed: 1 });
    let writable = 0;
    for (let mfn = 0; mfn < x.mem.frames; mfn++) writable += x.writable[mfn]!;
    expect(writable).toBe(1000);
    for (let pfn = 0; pfn < 1000; pfn++) expect(x.writable[x.p2m[pfn]!]).toBe(1);
    expect(x.ptRefs.every((n) => n === 0)).toBe(true);
    expect(x.ptType.every((n) => n === 0)).toBe(true);
    expect(x.checkInvariants()).toEqual([]);
  });
});

describe('page types and validation', () => {
  it('pinning validates every table once and takes one type reference per pin and per upper entry', () => {
    const r = rig();
    const t = buildTree(r, [3, 5]);
    const before = snap(r);
    r.pv.pgdPin(t.root);
    const x = r.xen;
    const m = (pfn: number) => r.pv.mfn(pfn);
    expect([
      x.ptType[m(t.root)],
      x.ptType[m(t.l3)],
      x.ptType[m(t.l2)],
      x.ptType[m(t.l1[0]!)],
      x.ptType[m(t.l1[1]!)],
    ]).toEqual([4, 3, 2, 1, 1]);
    // root: its pin; L3, L2: the entry above; each L1: its own pin + the L2 entry.
    expect([
      x.ptRefs[m(t.root)],
      x.ptRefs[m(t.l3)],
      x.ptRefs[m(t.l2)],
      x.ptRefs[m(t.l1[0]!)],
      x.ptRefs[m(t.l1[1]!)],
    ]).toEqual([1, 1, 1, 2, 2]);
    expect([x.pinned[m(t.root)], x.pinned[m(t.l3)], x.pinned[m(t.l2)], x.pinned[m(t.l1[0]!)]]).toEqual([1, 0, 0, 1]);
    // Table frames lost their writable direct map; each data frame has it plus one user PTE.
    for (const pfn of [t.root, t.l3, t.l2, ...t.l1]) {
      expect([pfn, x.writable[m(pfn)], x.directMapRW[pfn]]).toEqual([pfn, 0, 0]);
    }
    for (let pfn = 1024; pfn < 1024 + 8; pfn++) expect(x.writable[m(pfn)]).toBe(2);
    expect(x.writable[m(1024 + 8)]).toBe(1);
    // Validated entries: the 8 PTEs at PIN_L1, then 2 L2 + 1 L3 + 1 root entries at PIN_L4 (the
    // L1s, already typed, are not validated again).
    const d = delta(before, snap(r));
    expect(d.validatedEntries).toBe(8 + 2 + 1 + 1);
    expect(d.pins).toBe(3);
    expect(d.refused).toBe(0);
    expect(x.checkInvariants()).toEqual([]);
  });

  it('a reference of the wrong type is refused ("Bad type"), memory unchanged', () => {
    const { r, t } = pinnedTree();
    const before = snap(r);
    // An L3 entry naming a frame typed L1 as if it were an L2.
    r.pv.setUpper(3, t.l3, 7, entLo(r.pv.mfn(t.l1[0]!), LINUX_PAGE_TABLE), 0);
    expect(delta(before, snap(r))).toEqual(
      only({ hypercalls: 1, mmu_update: 1, updateEntries: 1, refused: 1, failures: 1, pteWrites: 1 }),
    );
    expect(readLo(r, t.l3, 7)).toBe(0);
    expect(r.xen.ptRefs[r.pv.mfn(t.l1[0]!)]).toBe(2);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('the last type reference devalidates: unpin leaves a referenced L1 typed, clearing the L2 entry frees it', () => {
    const { r, t } = pinnedTree();
    const x = r.xen;
    const l1 = r.pv.mfn(t.l1[0]!);
    expect(r.xen.mmuextOp(MMUEXT_UNPIN_TABLE, l1)).toBe(XEN_OK);
    expect([x.pinned[l1], x.ptType[l1], x.ptRefs[l1]]).toEqual([0, 1, 1]);
    // Still a page table: its direct map cannot become writable yet.
    expect(directMap(r, t.l1[0]!, true)).toBe(XEN_EINVAL);
    expect(x.refused).toBe(1);
    // The L2 entry was the last reference: the table is devalidated and its RW entries' writable
    // references (3 user PTEs) are dropped.
    expect(mmuUpdate(r, t.l2, 0, 0, 0)).toBe(0);
    expect([x.pinned[l1], x.ptType[l1], x.ptRefs[l1]]).toEqual([0, 0, 0]);
    for (let pfn = 1024; pfn < 1027; pfn++) expect(x.writable[r.pv.mfn(pfn)]).toBe(1);
    for (let pfn = 1027; pfn < 1032; pfn++) expect(x.writable[r.pv.mfn(pfn)]).toBe(2);
    // Now ordinary memory: the direct map may be writable again.
    expect(directMap(r, t.l1[0]!, true)).toBe(XEN_OK);
    expect(x.writable[l1]).toBe(1);
    expect(x.checkInvariants()).toEqual([]);
  });

  it('a refusal part-way through promotion gives back every reference already taken', () => {
    const { r, t } = pinnedTree();
    const x = r.xen;
    const pv = r.pv;
    const f = 900; // a fresh PTE page, filled by plain stores before its pin
    x.mem.makeTable(pv.mfn(f));
    x.mem.write(pv.mfn(f), 0, userPte(r, 2000, true), 0);
    x.mem.write(pv.mfn(f), 1, userPte(r, 2001, true), 0);
    x.mem.write(pv.mfn(f), 2, entLo(pv.mfn(t.l1[1]!), P | RW | US), 0); // a writable alias of a page table
    x.mem.write(pv.mfn(f), 3, userPte(r, 2002, true), 0);
    expect(directMap(r, f, false)).toBe(XEN_OK);
    expect(x.mmuextOp(MMUEXT_PIN_L1_TABLE, pv.mfn(f))).toBe(XEN_EINVAL);
    expect([x.ptType[pv.mfn(f)], x.ptRefs[pv.mfn(f)], x.pinned[pv.mfn(f)]]).toEqual([0, 0, 0]);
    expect([2000, 2001, 2002].map((p) => x.writable[pv.mfn(p)])).toEqual([1, 1, 1]);
    expect(x.refused).toBe(1);
    // Without the bad entry the same pin succeeds and takes the references.
    x.mem.write(pv.mfn(f), 2, 0, 0);
    expect(x.mmuextOp(MMUEXT_PIN_L1_TABLE, pv.mfn(f))).toBe(XEN_OK);
    expect([2000, 2001, 2002].map((p) => x.writable[pv.mfn(p)])).toEqual([2, 2, 2]);
    expect(x.mmuextOp(MMUEXT_UNPIN_TABLE, pv.mfn(f))).toBe(XEN_OK);
    expect([2000, 2001, 2002].map((p) => x.writable[pv.mfn(p)])).toEqual([1, 1, 1]);
    expect(x.checkInvariants()).toEqual([]);
  });
});

describe('refusals (hypervisors.md §1.1: no writable mapping of a page-table frame)', () => {
  it('through mmu_update: a writable PTE of a page-table frame is refused and counted; a read-only one is allowed', () => {
    const { r, t } = pinnedTree();
    const target = r.pv.mfn(t.l1[1]!);
    let before = snap(r);
    r.pv.setPte(t.l1[0]!, 10, entLo(target, P | RW | US | A | D), 0);
    expect(delta(before, snap(r))).toEqual(
      only({ hypercalls: 1, mmu_update: 1, updateEntries: 1, refused: 1, failures: 1, pteWrites: 1 }),
    );
    expect(readLo(r, t.l1[0]!, 10)).toBe(0);
    expect(r.xen.writable[target]).toBe(0);
    // The same through the hypervisor directly: one failed request.
    expect(mmuUpdate(r, t.l1[0]!, 10, entLo(target, P | RW | US), 0)).toBe(1);
    // Every other level too: the root and the L2.
    expect(mmuUpdate(r, t.l1[0]!, 10, entLo(r.pv.mfn(t.root), P | RW | US), 0)).toBe(1);
    expect(mmuUpdate(r, t.l1[0]!, 10, entLo(r.pv.mfn(t.l2), P | RW | US), 0)).toBe(1);
    expect(r.xen.refused).toBe(4);
    // Read-only is how Linux maps its page tables: allowed.
    before = snap(r);
    r.pv.setPte(t.l1[0]!, 11, entLo(target, P | US | A), 0);
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, mmu_update: 1, updateEntries: 1, pteWrites: 1 }));
    expect(entryPfn(1, readLo(r, t.l1[0]!, 11), 0)).toBe(target);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('through update_va_mapping of the direct map: a pinned table stays read-only', () => {
    const { r, t } = pinnedTree();
    const before = snap(r);
    for (const pfn of [t.root, t.l3, t.l2, t.l1[0]!]) {
      expect(directMap(r, pfn, true)).toBe(XEN_EINVAL);
      expect(r.xen.directMapRW[pfn]).toBe(0);
    }
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 4, update_va_mapping: 4, updateEntries: 4, refused: 4 }));
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('pinning a frame that still has a writable mapping is refused: its direct map, or a user PTE', () => {
    const { r, t } = pinnedTree();
    const x = r.xen;
    const pv = r.pv;
    // A new PTE page whose direct map the guest forgot to make read-only.
    const f = 900;
    x.mem.makeTable(pv.mfn(f));
    expect(x.mmuextOp(MMUEXT_PIN_L1_TABLE, pv.mfn(f))).toBe(XEN_EINVAL);
    expect(x.refused).toBe(1);
    expect([x.ptType[pv.mfn(f)], x.pinned[pv.mfn(f)]]).toEqual([0, 0]);
    // A frame a user PTE maps writable (data frame 1024 of the tree), made a table with its
    // direct map read-only: the user mapping still counts.
    const g = 1024;
    x.mem.makeTable(pv.mfn(g));
    expect(directMap(r, g, false)).toBe(XEN_OK);
    expect(x.writable[pv.mfn(g)]).toBe(1);
    expect(x.mmuextOp(MMUEXT_PIN_L1_TABLE, pv.mfn(g))).toBe(XEN_EINVAL);
    // Hooking it into a validated L2 is refused for the same reason.
    expect(mmuUpdate(r, t.l2, 9, entLo(pv.mfn(g), LINUX_PAGE_TABLE), 0)).toBe(1);
    expect(x.refused).toBe(3);
    // Drop the user mapping (mod_l1_entry puts its writable reference) and the pin goes through.
    expect(mmuUpdate(r, t.l1[0]!, 0, 0, 0)).toBe(0);
    expect(x.writable[pv.mfn(g)]).toBe(0);
    expect(x.mmuextOp(MMUEXT_PIN_L1_TABLE, pv.mfn(g))).toBe(XEN_OK);
    expect(x.checkInvariants()).toEqual([]);
  });

  it('entries naming frames the domain does not own, and superpages, are refused', () => {
    const { r, t } = pinnedTree();
    const xenFrame = 5; // below the domain's frames: Xen's heap
    expect(r.xen.m2p[xenFrame]).toBe(-1);
    expect(mmuUpdate(r, t.l1[0]!, 20, entLo(xenFrame, P | US), 0)).toBe(1);
    expect(mmuUpdate(r, t.l1[0]!, 20, entLo(r.xen.mem.frames + 3, P | US), 0)).toBe(1);
    // A 2 MiB leaf in the L2 (PV guests get no superpages).
    expect(mmuUpdate(r, t.l2, 5, entLo(r.pv.mfn(1536), P | RW | US | PS), 0)).toBe(1);
    expect(r.xen.refused).toBe(3);
    expect(readLo(r, t.l1[0]!, 20)).toBe(0);
    expect(readLo(r, t.l2, 5)).toBe(0);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('with strict, a refusal is a PteError with code "model" (and still counted, memory unchanged)', () => {
    const { r, t } = pinnedTree();
    r.xen.strict = true;
    const target = r.pv.mfn(t.l1[1]!);
    const errors: unknown[] = [];
    const attempt = (fn: () => unknown) => {
      try {
        fn();
        errors.push(null);
      } catch (e) {
        errors.push(e);
      }
    };
    attempt(() => r.pv.setPte(t.l1[0]!, 10, entLo(target, P | RW | US), 0)); // mmu_update
    attempt(() => directMap(r, t.l1[1]!, true)); // update_va_mapping of the direct map
    attempt(() => r.xen.mmuextOp(MMUEXT_PIN_L1_TABLE, r.pv.mfn(900))); // pin of a frame with a writable mapping
    attempt(() => r.xen.ptwrStore(r.pv.mfn(t.l2), 3, 0, 0)); // store to an L2
    expect(errors).toHaveLength(4);
    for (const e of errors) {
      expect(e).toBeInstanceOf(PteError);
      expect((e as PteError).code).toBe('model');
      expect((e as PteError).message).toMatch(/^Xen refused: /);
    }
    expect((errors[0] as PteError).message).toMatch(/writable mapping of page-table frame/);
    expect((errors[2] as PteError).message).toMatch(/writable mapping/);
    expect(r.xen.refused).toBe(4);
    expect(readLo(r, t.l1[0]!, 10)).toBe(0);
    expect(r.xen.directMapRW[t.l1[1]!]).toBe(0);
    // A legal request under strict goes through.
    r.pv.setPte(t.l1[0]!, 10, userPte(r, 3000, true), 0);
    expect(r.xen.writable[r.pv.mfn(3000)]).toBe(2);
    r.xen.strict = false;
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('pin, unpin and mmuext misuse is refused: double pin, unpin of an unpinned frame, a base pointer that is not an L4, unmodelled commands', () => {
    const { r, t } = pinnedTree();
    const x = r.xen;
    const m = (pfn: number) => r.pv.mfn(pfn);
    expect(x.mmuextOp(MMUEXT_PIN_L1_TABLE, m(t.l1[0]!))).toBe(XEN_EINVAL); // already pinned
    expect(x.mmuextOp(MMUEXT_UNPIN_TABLE, m(t.l2))).toBe(XEN_EINVAL); // typed, but not pinned
    expect(x.mmuextOp(MMUEXT_NEW_BASEPTR, m(t.l3))).toBe(XEN_EINVAL);
    expect(x.mmuextOp(MMUEXT_PIN_L2_TABLE, m(t.l1[0]!))).toBe(XEN_EINVAL); // pinned as L1: "Bad type"
    expect(x.mmuextOp(MMUEXT_FLUSH_CACHE, 0)).toBe(XEN_EINVAL);
    expect(x.refused).toBe(5);
    expect(x.mmuextOp(MMUEXT_NEW_BASEPTR, m(t.root))).toBe(XEN_OK);
    expect(r.mmu.root).toBe(m(t.root));
    expect(x.checkInvariants()).toEqual([]);
  });

  it('an mmu_update command the model does not implement (MMU_MACHPHYS_UPDATE) fails visibly: counted as a refusal, fatal with strict', () => {
    const { r, t } = pinnedTree();
    expect(mmuUpdate(r, t.l1[0]!, 30, userPte(r, 3000, false), 0, MMU_MACHPHYS_UPDATE)).toBe(1);
    expect(readLo(r, t.l1[0]!, 30)).toBe(0);
    expect(r.xen.refused).toBe(1);
    r.xen.strict = true;
    expect(() => mmuUpdate(r, t.l1[0]!, 30, userPte(r, 3000, false), 0, MMU_MACHPHYS_UPDATE)).toThrow(PteError);
  });
});

describe('MMU_PT_UPDATE_PRESERVE_AD and ptwr', () => {
  /** A pinned tree, CR3 loaded, PTE 0 of the first PTE page present, writable, A and D clear. */
  function loaded() {
    const { r, t } = pinnedTree();
    const pte = entLo(r.pv.mfn(2500), P | US | RW);
    r.pv.setPte(t.l1[0]!, 40, pte, 0);
    r.pv.writeCr3(t.root, 0);
    expect(r.mmu.root).toBe(r.pv.mfn(t.root));
    return { r, t, pte, vpn: treeVpn(0, 40) };
  }

  it('PRESERVE_AD keeps the A and D bits the hardware walker set since the guest read the entry; NORMAL loses them', () => {
    const { r, t, pte, vpn } = loaded();
    // The guest reads the entry (ptep_modify_prot_start) ...
    r.pv.ptepModifyProtStart(t.l1[0]!, 40);
    expect(r.pv.oldLo).toBe(pte);
    // ... a write through it sets A and D in memory ...
    expect(r.mmu.translate(vpnHi(vpn), vpnLo(vpn), ACCESS_USER | ACCESS_WRITE)).toBe(r.pv.mfn(2500));
    expect(readLo(r, t.l1[0]!, 40) & (A | D)).toBe(A | D);
    // ... and the commit of the read-only value it computed from the stale copy keeps them.
    const before = snap(r);
    r.pv.ptepModifyProtCommit(t.l1[0]!, 40, (pte & ~RW) >>> 0, 0);
    expect(delta(before, snap(r))).toEqual(only({ hypercalls: 1, mmu_update: 1, updateEntries: 1, pteWrites: 1 }));
    expect(readLo(r, t.l1[0]!, 40)).toBe((pte & ~RW) | A | D);
    expect(r.xen.writable[r.pv.mfn(2500)]).toBe(1); // the RW reference went with RW
    // A plain mmu_update of the same value drops them.
    expect(mmuUpdate(r, t.l1[0]!, 40, (pte & ~RW) >>> 0, 0, MMU_NORMAL_PT_UPDATE)).toBe(0);
    expect(readLo(r, t.l1[0]!, 40) & (A | D)).toBe(0);
    // PRESERVE_AD never invents bits: with A/D clear in memory it stores the value as given.
    expect(mmuUpdate(r, t.l1[0]!, 40, pte, 0, MMU_PT_UPDATE_PRESERVE_AD)).toBe(0);
    expect(readLo(r, t.l1[0]!, 40)).toBe(pte);
    expect(r.xen.checkInvariants()).toEqual([]);
  });

  it('ptwr emulates a store to a pinned L1 (validated like mod_l1_entry) and refuses a store to an L2', () => {
    const { r, t } = loaded();
    const x = r.xen;
    let before = snap(r);
    expect(x.ptwrStore(r.pv.mfn(t.l1[0]!), 41, userPte(r, 2600, true), 0)).toBe(XEN_OK);
    expect(delta(before, snap(r))).toEqual(only({ ptwrEmulations: 1 })); // a trap, not a hypercall
    expect(x.writable[r.pv.mfn(2600)]).toBe(2);
    // The emulated store is validated: a writable alias of a page table is refused.
    expect(x.ptwrStore(r.pv.mfn(t.l1[0]!), 42, entLo(r.pv.mfn(t.l2), P | RW | US), 0)).toBe(XEN_EINVAL);
    expect(readLo(r, t.l1[0]!, 42)).toBe(0);
    // Page directories cannot be written (VMASST writable_pagetables NB1).
    before = snap(r);
    const l2e = readLo(r, t.l2, 0);
    expect(x.ptwrStore(r.pv.mfn(t.l2), 0, 0, 0)).toBe(XEN_EINVAL);
    expect(delta(before, snap(r))).toEqual(only({ ptwrEmulations: 1, refused: 1 }));
    expect(readLo(r, t.l2, 0)).toBe(l2e);
    // The backend's ptwr paths: ptep_set_wrprotect and test_and_clear_young are native bit ops.
    before = snap(r);
    r.pv.ptepSetWrprotect(t.l1[0]!, 41);
    expect(readLo(r, t.l1[0]!, 41) & RW).toBe(0);
    expect(r.pv.ptepTestAndClearYoung(t.l1[0]!, 41)).toBe(true);
    expect(r.pv.ptepTestAndClearYoung(t.l1[0]!, 41)).toBe(false); // A clear: no store at all
    expect(delta(before, snap(r))).toEqual(only({ ptwrEmulations: 2, pteWrites: 2 }));
    expect(x.writable[r.pv.mfn(2600)]).toBe(1);
    expect(x.checkInvariants()).toEqual([]);
  });

  it('update_va_mapping of a user PTE validates it and flushes as its flags say', () => {
    const { r, t, vpn } = loaded();
    const x = r.xen;
    const l1 = r.pv.mfn(t.l1[0]!);
    const invlpgs = r.mmu.invlpgs;
    const cr3 = r.mmu.cr3Writes;
    expect(x.updateVaMapping(l1, 40, userPte(r, 2700, false), 0, UVMF_INVLPG, vpnHi(vpn), vpnLo(vpn))).toBe(XEN_OK);
    expect(r.mmu.invlpgs).toBe(invlpgs + 1);
    expect(x.updateVaMapping(l1, 40, userPte(r, 2701, false), 0, UVMF_TLB_FLUSH, 0, 0)).toBe(XEN_OK);
    expect(r.mmu.cr3Writes).toBe(cr3 + 1);
    expect(
      x.updateVaMapping(l1, 40, entLo(r.pv.mfn(t.l1[1]!), P | RW | US), 0, UVMF_INVLPG, vpnHi(vpn), vpnLo(vpn)),
    ).toBe(XEN_EINVAL);
    expect(r.mmu.invlpgs).toBe(invlpgs + 1); // no flush for a refused update
    expect(entryPfn(1, readLo(r, t.l1[0]!, 40), 0)).toBe(r.pv.mfn(2701));
    expect(x.updateEntries).toBeGreaterThan(0);
    expect(x.checkInvariants()).toEqual([]);
  });
});

describe('checkInvariants', () => {
  it('finds a writable mapping of a page-table frame that bypassed Xen, and a writable count that does not add up', () => {
    const { r, t } = pinnedTree();
    const x = r.xen;
    // A store straight into memory (no hypercall, no trap): what Xen must never let happen.
    x.mem.write(r.pv.mfn(t.l1[0]!), 50, entLo(r.pv.mfn(t.l2), P | RW | US), 0);
    const broken = x.checkInvariants();
    expect(broken).toContain(`page-table frame 0x${r.pv.mfn(t.l2).toString(16)} is mapped writable 1 time(s)`);
    expect(broken).toContain(`frame 0x${r.pv.mfn(t.l2).toString(16)}: 0 writable references counted, 1 found`);
    x.mem.write(r.pv.mfn(t.l1[0]!), 50, 0, 0);
    expect(x.checkInvariants()).toEqual([]);
    // A lost reference: the count says 2, the tables say 1.
    x.writable[r.pv.mfn(3000)]!++;
    expect(x.checkInvariants()).toEqual([
      `frame 0x${r.pv.mfn(3000).toString(16)}: 2 writable references counted, 1 found`,
    ]);
    x.writable[r.pv.mfn(3000)]!--;
    expect(x.checkInvariants()).toEqual([]);
  });

  it('entries of a table Xen has not validated are not its business (an unpinned tree is ordinary memory)', () => {
    const r = rig();
    const t = buildTree(r, [4]);
    // Unpinned: the tables are ordinary memory, so a writable mapping of one is no violation yet ...
    r.xen.mem.write(r.pv.mfn(t.l1[0]!), 60, entLo(r.pv.mfn(t.l2), P | RW | US), 0);
    expect(r.xen.checkInvariants()).toEqual([]);
    // ... but it makes the pin fail.
    r.pv.pgdPin(t.root);
    expect(r.xen.refused).toBeGreaterThan(0);
    expect(r.pv.failures).toBeGreaterThan(0);
    expect(r.xen.checkInvariants()).toEqual([]);
  });
});
