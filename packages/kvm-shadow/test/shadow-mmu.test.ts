/**
 * KVM's shadow MMU alone (hypervisors.md §3): guest tables built by hand, a real CPU walking the
 * shadow tables, KVM's #PF exit, prefetch, the accessed/dirty rules, guest writes to shadowed
 * tables (unsync leaves, emulation, write flooding), and the sync points (INVLPG, CR3). Every
 * figure is exact.
 */
import { A, D, entryPfn, LINUX_PAGE_TABLE, P, PageTables, PF_P, PF_U, PF_W, RW, TRANSLATE_PF, US } from '@pte/arch-x86';
import { Counters } from '@pte/core';
import { KvmShadowPvMmu, PTE_PREFETCH_NUM, WRITE_FLOOD_LIMIT } from '../src/index.js';
import {
  access,
  BASE_VPN,
  delta,
  GUEST_PF,
  leafOf,
  mapPages,
  pteHi,
  pteLo,
  rig,
  spteOf,
  stats,
  storePte,
  translate,
  vpnHi,
  vpnLo,
  YOUNG_RO,
  YOUNG_RW_DIRTY,
  type Rig,
} from './helpers.js';

const V = BASE_VPN;

/** Load the guest's CR3 (one exit) and return the stats after it. */
function boot(r: Rig): Record<string, number> {
  r.kvm.writeCr3(r.pt.root, 0);
  return stats(r.kvm);
}

/** Guest frames of the path to `vpn`: root, PUD, PMD, PTE page. */
function pathOf(r: Rig, vpn: number): number[] {
  return [r.pt.root, ...[3, 2, 1].map((l) => r.pt.tableFor(vpnHi(vpn), vpnLo(vpn), l, false))];
}

describe('constants', () => {
  it('PTE_PREFETCH_NUM is 8 and write flooding triggers at 3 (mmu.c)', () => {
    expect(PTE_PREFETCH_NUM).toBe(8);
    expect(WRITE_FLOOD_LIMIT).toBe(3);
  });
});

describe('a #PF on the shadow tables (FNAME(page_fault), §3.2)', () => {
  it('loading CR3 exits once and shadows the root, write-protecting it', () => {
    const r = rig();
    const s0 = stats(r.kvm);
    r.kvm.writeCr3(r.pt.root, 0);
    expect(delta(s0, r.kvm)).toEqual({ exits: 1, cr3Exits: 1 });
    expect(r.gmem.isTracked(r.pt.root)).toBe(true);
    expect(r.kvm.smem.isTable(r.cpu.root)).toBe(true);
  });

  it('gpte not present: one exit, the #PF is injected with the guest walk error code', () => {
    const r = rig();
    const s = boot(r);
    expect(access(r, V)).toBe(GUEST_PF);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, injected: 1 });
    expect(r.kvm.injectCode).toBe(PF_U);
    expect(access(r, V + 1, true)).toBe(GUEST_PF);
    expect(r.kvm.injectCode).toBe(PF_U | PF_W);
  });

  it('gpte present but read-only, write access: the protection #PF is injected (P|W|U)', () => {
    const r = rig();
    mapPages(r, V, 1, YOUNG_RO);
    const s = boot(r);
    expect(access(r, V, true)).toBe(GUEST_PF);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, injected: 1 });
    expect(r.kvm.injectCode).toBe(PF_P | PF_W | PF_U);
  });

  it('2008 (bypass_guest_pf): a not-present guest #PF reaches the guest without an exit; a protection #PF still exits', () => {
    const r = rig('2008');
    mapPages(r, V + 1, 1, YOUNG_RO);
    const s = boot(r);
    expect(access(r, V)).toBe(GUEST_PF);
    expect(delta(s, r.kvm)).toEqual({ bypassed: 1 });
    expect(r.kvm.injectCode).toBe(PF_U);
    expect(access(r, V + 1, true)).toBe(GUEST_PF);
    expect(delta(s, r.kvm)).toEqual({ bypassed: 1, exits: 1, injected: 1 });
  });

  it('gpte present and accessed: one exit builds the shadow path (4 shadow pages, each guest table write-protected) and the leaf spte', () => {
    const r = rig();
    const [f] = mapPages(r, V, 1, YOUNG_RO);
    const s = boot(r);
    expect(access(r, V)).toBe(f);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, shadowFaults: 1 });
    for (const gfn of pathOf(r, V)) expect(r.gmem.isTracked(gfn)).toBe(true);
    const c = new Counters();
    r.kvm.addCountersTo(c);
    expect(c.get('kvm.shadow_pages')).toBe(4);
    const [lo, hi] = spteOf(r, V)!;
    expect(entryPfn(1, lo, hi)).toBe(f);
    // A (the access was real), user, read-only (the gpte is), XD carried from the gpte.
    expect(lo & (P | US | RW | A | D)).toBe(P | US | A);
    expect(hi >>> 31).toBe(1);
    // The next access is a TLB hit: no exit.
    expect(access(r, V)).toBe(f);
    expect(r.kvm.exits).toBe(s.exits! + 1);
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it("KVM's software walk sets the guest A bit (FNAME(update_accessed_dirty_bits)); the spte becomes present only then", () => {
    const r = rig();
    const [f] = mapPages(r, V, 1, 0); // present, old
    boot(r);
    const leaf = leafOf(r, V);
    expect(access(r, V)).toBe(f);
    expect(r.gmem.readLo(leaf, 0) & A).toBe(A);
    expect(r.kvm.shadowFaults).toBe(1);
  });

  it('protect_clean_gpte: a read of a writable clean gpte maps the spte read-only; the first write exits, sets D in the gpte and makes the spte writable', () => {
    const r = rig();
    const [f] = mapPages(r, V, 1, A | RW);
    const s = boot(r);
    const leaf = leafOf(r, V);
    expect(access(r, V)).toBe(f);
    expect(spteOf(r, V)![0] & RW).toBe(0);
    expect(r.gmem.readLo(leaf, 0) & D).toBe(0);
    expect(access(r, V, true)).toBe(f);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, shadowFaults: 2 });
    expect(r.gmem.readLo(leaf, 0) & D).toBe(D);
    expect(spteOf(r, V)![0] & (RW | D)).toBe(RW | D);
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it('a first write to a writable clean gpte costs one exit: the walk sets A and D, the spte is writable and dirty', () => {
    const r = rig();
    const [f] = mapPages(r, V, 1, RW);
    const s = boot(r);
    expect(access(r, V, true)).toBe(f);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, shadowFaults: 1 });
    expect(r.gmem.readLo(leafOf(r, V), 0) & (A | D)).toBe(A | D);
    expect(spteOf(r, V)![0] & (RW | D | A)).toBe(RW | D | A);
  });

  it('a guest frame that is itself a shadowed page table is mapped read-only (mmu_need_write_protect)', () => {
    const r = rig();
    boot(r);
    const leaf = leafOf(r, V);
    // The guest maps its own PTE page writable and dirty at V + 1 (no Linux guest does; KVM must still protect it).
    mapPages(r, V, 1, YOUNG_RO);
    storePte(r, V + 1, leaf, YOUNG_RW_DIRTY);
    expect(access(r, V)).toBeGreaterThan(0);
    expect(access(r, V + 1)).toBe(leaf);
    expect(spteOf(r, V + 1)![0] & RW).toBe(0);
  });
});

describe('prefetch (FNAME(pte_prefetch), §3.5)', () => {
  it('sequential reads of 64 young gptes: 8 shadow faults, each prefetching the 7 others of its aligned group', () => {
    const r = rig();
    const frames = mapPages(r, V, 64, YOUNG_RO);
    const s = boot(r);
    for (let i = 0; i < 64; i++) expect(access(r, V + i)).toBe(frames[i]);
    expect(delta(s, r.kvm)).toEqual({ exits: 8, shadowFaults: 8, prefetched: 56 });
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it('the group is the 8-aligned one around the fault, not the 8 after it', () => {
    const r = rig();
    mapPages(r, V, 16, YOUNG_RO);
    boot(r);
    access(r, V + 5);
    for (let i = 0; i < 16; i++) expect([i, spteOf(r, V + i)![0] & P]).toEqual([i, i < 8 ? P : 0]);
    expect(r.kvm.prefetched).toBe(7);
  });

  it('prefetched sptes are old (A clear) and read-only unless the gpte is dirty', () => {
    const r = rig();
    mapPages(r, V, 1, YOUNG_RO);
    mapPages(r, V + 1, 1, YOUNG_RW_DIRTY);
    mapPages(r, V + 2, 1, A | RW);
    boot(r);
    access(r, V);
    expect(spteOf(r, V)![0] & (A | RW)).toBe(A);
    expect(spteOf(r, V + 1)![0] & (A | RW | D)).toBe(RW | D);
    expect(spteOf(r, V + 2)![0] & (A | RW)).toBe(0);
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it('prefetch stops at the first gpte that is not present and accessed (prefetch_invalid_gpte): later ones in the group stay unmapped', () => {
    const r = rig();
    mapPages(r, V, 8, YOUNG_RO);
    storePte(r, V + 5, r.frames.allocFrame(), 0); // present, old
    const s = boot(r);
    access(r, V + 1);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, shadowFaults: 1, prefetched: 4 }); // 0, 2, 3, 4; stop at 5
    expect([5, 6, 7].map((i) => spteOf(r, V + i)![0] & P)).toEqual([0, 0, 0]);
    // 6 faults on its own; its prefetch stops at 5 again (7 stays unmapped).
    access(r, V + 6);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, shadowFaults: 2, prefetched: 4 });
    expect(spteOf(r, V + 7)![0] & P).toBe(0);
  });

  it("Avi's objection: gptes present but old cannot be prefetched, so every page costs an exit", () => {
    const r = rig();
    const young = mapPages(r, V, 1, YOUNG_RO);
    const old = mapPages(r, V + 1, 15, 0);
    const s = boot(r);
    for (let i = 0; i < 16; i++) expect(access(r, V + i)).toBe([...young, ...old][i]);
    expect(delta(s, r.kvm)).toEqual({ exits: 16, shadowFaults: 16 });
    // KVM's walk set every A bit: the guest's A bits are truthful.
    const leaf = leafOf(r, V);
    for (let i = 0; i < 16; i++) expect(r.gmem.readLo(leaf, i) & A).toBe(A);
  });

  it('the 2008 era has no prefetch (it arrived in 2010)', () => {
    const r = rig('2008');
    mapPages(r, V, 16, YOUNG_RO);
    const s = boot(r);
    for (let i = 0; i < 16; i++) access(r, V + i);
    expect(delta(s, r.kvm)).toEqual({ exits: 16, shadowFaults: 16 });
  });
});

describe('guest PTE writes into a shadowed leaf (§3.4, §7.4)', () => {
  /** Page 0 mapped writable and dirty, written once (its spte writable), page 8 mapped, the leaf shadowed. */
  function shadowedLeaf(era: 'modern' | '2008') {
    const r = rig(era);
    const [f0] = mapPages(r, V, 1, YOUNG_RW_DIRTY);
    boot(r);
    expect(access(r, V, true)).toBe(f0);
    const leaf = leafOf(r, V);
    expect(r.gmem.isTracked(leaf)).toBe(true);
    return { r, f0: f0!, leaf };
  }

  it('modern: 16 stores cost one exit (the leaf goes unsync, write protection dropped), then none until INVLPG', () => {
    const { r, f0, leaf } = shadowedLeaf('modern');
    const s = stats(r.kvm);
    // fork-like write-protect of page 0, then 15 new young PTEs.
    r.gmem.write(leaf, 0, pteLo(f0, A | D), pteHi(f0));
    const fresh = mapPages(r, V + 1, 15, YOUNG_RO);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, unsyncs: 1 });
    expect(r.gmem.isTracked(leaf)).toBe(false);
    // The stores landed; KVM did not look at them.
    expect(r.gmem.readLo(leaf, 0) & RW).toBe(0);
    expect(spteOf(r, V)![0] & RW).toBe(RW); // stale until the guest flushes
    // 16 more: no exit.
    mapPages(r, V + 16, 16, YOUNG_RO);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, unsyncs: 1 });
    // An unsync page is out of the checker's reach; nothing else is wrong.
    expect(r.kvm.checkInvariants()).toEqual([]);

    // The guest's INVLPG for page 0: one exit, that spte resynced (read-only now), the page stays unsync.
    r.kvm.invlpg(vpnHi(V), vpnLo(V));
    expect(delta(s, r.kvm)).toEqual({ exits: 2, unsyncs: 1, invlpgExits: 1 });
    const [lo, hi] = spteOf(r, V)!;
    expect(lo & (P | RW)).toBe(P);
    expect(entryPfn(1, lo, hi)).toBe(f0);
    expect(translate(r, V, true)).toBe(TRANSLATE_PF);
    expect(access(r, V, true)).toBe(GUEST_PF); // the guest's COW fault
    expect(r.kvm.injectCode).toBe(PF_P | PF_W | PF_U);
    expect(r.gmem.isTracked(leaf)).toBe(false);
    // A new page of the unsync leaf faults normally and prefetches its group from the current gptes.
    expect(access(r, V + 9)).toBe(fresh[8]);
    expect(r.kvm.prefetched).toBe(7);
  });

  it('modern: INVLPG of a gpte the guest cleared drops the stale spte: the access faults and goes to the guest', () => {
    const { r, leaf } = shadowedLeaf('modern');
    r.gmem.write(leaf, 0, 0, 0);
    expect(translate(r, V)).toBeGreaterThan(0); // stale TLB entry, legal until the flush
    r.kvm.invlpg(vpnHi(V), vpnLo(V));
    expect(spteOf(r, V)![0] & P).toBe(0);
    expect(translate(r, V)).toBe(TRANSLATE_PF);
    expect(access(r, V)).toBe(GUEST_PF);
  });

  it('modern: INVLPG of a gpte remapped to another frame drops the spte (sync_spte: the gfn changed); the access refaults onto the new frame', () => {
    const { r, leaf } = shadowedLeaf('modern');
    const f1 = r.frames.allocFrame();
    r.gmem.write(leaf, 0, pteLo(f1, YOUNG_RO), pteHi(f1));
    const s = stats(r.kvm);
    r.kvm.invlpg(vpnHi(V), vpnLo(V));
    expect(spteOf(r, V)![0] & P).toBe(0);
    expect(access(r, V)).toBe(f1);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, invlpgExits: 1, shadowFaults: 1 });
  });

  it('modern: a CR3 write syncs the unsync leaf (kvm.syncs), write-protects it again, and the next store exits again', () => {
    const { r, leaf } = shadowedLeaf('modern');
    mapPages(r, V + 1, 15, YOUNG_RO);
    const s = stats(r.kvm);
    r.kvm.writeCr3(r.pt.root, 0);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, cr3Exits: 1, syncs: 1 });
    expect(r.gmem.isTracked(leaf)).toBe(true);
    expect(r.kvm.checkInvariants()).toEqual([]);
    mapPages(r, V + 16, 1, YOUNG_RO);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, cr3Exits: 1, syncs: 1, unsyncs: 1 });
  });

  it('2008: every trapped store exits and is emulated; update_pte installs the spte when the new gpte is P and A (16 demand faults: 16 exits, no shadow fault)', () => {
    const { r } = shadowedLeaf('2008');
    const s = stats(r.kvm);
    for (let i = 1; i <= 16; i++) {
      const [f] = mapPages(r, V + i, 1, YOUNG_RO);
      // The guest returns to user mode and touches the page: the spte is already there.
      expect(translate(r, V + i)).toBe(f);
    }
    expect(delta(s, r.kvm)).toEqual({ exits: 16, emulated: 16 });
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it("2008: update_pte creates the spte old; the guest's use sets its A bit (what the fork detector looks at)", () => {
    const { r } = shadowedLeaf('2008');
    const [f] = mapPages(r, V + 1, 1, YOUNG_RO);
    expect(spteOf(r, V + 1)![0] & (P | A)).toBe(P);
    expect(translate(r, V + 1)).toBe(f);
    expect(spteOf(r, V + 1)![0] & (P | A)).toBe(P | A);
  });

  it('2008: 16 stores in a row with no use in between: the third unshadows the page (fork detector), the other 13 are plain stores', () => {
    const { r, leaf } = shadowedLeaf('2008');
    const s = stats(r.kvm);
    const fs = mapPages(r, V + 1, 16, YOUNG_RO);
    expect(delta(s, r.kvm)).toEqual({ exits: 3, emulated: 3, zappedPages: 1 });
    expect(r.gmem.isTracked(leaf)).toBe(false);
    expect(r.kvm.checkInvariants()).toEqual([]);
    // The next access exits once and shadows the page again from the current gptes.
    expect(access(r, V + 9)).toBe(fs[8]);
    expect(delta(s, r.kvm)).toEqual({ exits: 4, emulated: 3, zappedPages: 1, shadowFaults: 1 });
    expect(r.gmem.isTracked(leaf)).toBe(true);
  });

  it('2008: a fault that exits between stores resets the fork detector', () => {
    const { r } = shadowedLeaf('2008');
    mapPages(r, V + 1, 1, 0); // old: update_pte leaves it unmapped
    mapPages(r, V + 2, 1, 0);
    access(r, V + 1); // a shadow fault: resets the count
    mapPages(r, V + 3, 1, 0);
    mapPages(r, V + 4, 1, 0);
    expect(r.kvm.zappedPages).toBe(0);
    mapPages(r, V + 5, 1, 0);
    expect(r.kvm.zappedPages).toBe(1);
  });

  it('2008: stores to two page tables in turn never flood (the detector follows one gfn)', () => {
    const r = rig('2008', 2);
    mapPages(r, V, 1, YOUNG_RO);
    mapPages(r, V + 512, 1, YOUNG_RO);
    boot(r);
    access(r, V);
    access(r, V + 512);
    const s = stats(r.kvm);
    for (let i = 1; i <= 8; i++) {
      mapPages(r, V + i, 1, YOUNG_RO);
      mapPages(r, V + 512 + i, 1, YOUNG_RO);
    }
    expect(delta(s, r.kvm)).toEqual({ exits: 16, emulated: 16 });
  });

  it('2008: a stored gpte with A clear is not shadowed by update_pte; the access then exits once (walk sets A)', () => {
    const { r } = shadowedLeaf('2008');
    const s = stats(r.kvm);
    const [f] = mapPages(r, V + 1, 1, 0);
    expect(spteOf(r, V + 1)![0] & P).toBe(0);
    expect(access(r, V + 1)).toBe(f);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, emulated: 1, shadowFaults: 1 });
  });

  it('2008: a cleared gpte zaps its spte at the store (no stale translation even before the flush)', () => {
    const { r, leaf } = shadowedLeaf('2008');
    r.gmem.write(leaf, 0, 0, 0);
    expect(spteOf(r, V)![0] & P).toBe(0);
    expect(translate(r, V)).toBe(TRANSLATE_PF);
    expect(access(r, V)).toBe(GUEST_PF);
    expect(r.kvm.bypassed).toBe(1);
  });
});

describe('write flooding of non-leaf shadow pages (detect_write_flooding, §3.4)', () => {
  /** Pages 0 and 8 of region 0 mapped, page 0 faulted in (page 8's spte not present). */
  function setup() {
    const r = rig('modern', 1);
    mapPages(r, V, 1, YOUNG_RO);
    mapPages(r, V + 8, 1, YOUNG_RO);
    boot(r);
    access(r, V);
    const pmd = r.pt.tableFor(vpnHi(V), vpnLo(V), 2, false);
    return { r, pmd };
  }

  /** The guest hooks a fresh PTE page into PMD slot `slot` (a store to the shadowed PMD page). */
  function pmdStore(r: Rig, pmd: number, slot: number): void {
    const t = r.frames.allocFrame();
    r.gmem.makeTable(t);
    r.gmem.write(pmd, slot, (t * 4096 + LINUX_PAGE_TABLE) >>> 0, 0);
  }

  it("the third emulated write without a fault in between zaps the PMD's shadow page", () => {
    const { r, pmd } = setup();
    const s = stats(r.kvm);
    pmdStore(r, pmd, 5);
    pmdStore(r, pmd, 6);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, emulated: 2 });
    expect(r.gmem.isTracked(pmd)).toBe(true);
    pmdStore(r, pmd, 7);
    // The PMD's shadow page and, below it, the leaf's.
    expect(delta(s, r.kvm)).toEqual({ exits: 3, emulated: 3, zappedPages: 2 });
    expect(r.gmem.isTracked(pmd)).toBe(false);
    expect(r.gmem.isTracked(leafOf(r, V))).toBe(false);
    // KVM flushed: the CPU cannot use the old translation; the access refaults and rebuilds.
    expect(translate(r, V)).toBe(TRANSLATE_PF);
    expect(access(r, V)).toBeGreaterThan(0);
    expect(r.gmem.isTracked(pmd)).toBe(true);
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it('a fault through the page clears the count (clear_sp_write_flooding_count)', () => {
    const { r, pmd } = setup();
    const s = stats(r.kvm);
    pmdStore(r, pmd, 5);
    pmdStore(r, pmd, 6);
    access(r, V + 8); // a shadow fault whose path crosses the PMD's shadow page
    pmdStore(r, pmd, 7);
    pmdStore(r, pmd, 8);
    expect(delta(s, r.kvm)).toEqual({ exits: 5, emulated: 4, shadowFaults: 1 });
    expect(r.gmem.isTracked(pmd)).toBe(true);
    pmdStore(r, pmd, 9);
    expect(delta(s, r.kvm).zappedPages).toBe(2);
  });

  it('a leaf page never floods in the modern era: it goes unsync instead', () => {
    const { r } = setup();
    const s = stats(r.kvm);
    mapPages(r, V + 100, 50, YOUNG_RO);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, unsyncs: 1 });
  });

  it('flooding the active root: KVM loads a fresh root, the CPU never walks a freed shadow page or a stale TLB entry', () => {
    const r = rig('modern', 1);
    const [f] = mapPages(r, V, 1, YOUNG_RO);
    boot(r);
    expect(access(r, V)).toBe(f);
    const s = stats(r.kvm);
    // Three PML4 stores (the guest hooks PUD pages for three 512 GiB slots) without a fault in between.
    for (const slot of [5, 6, 7]) {
      const t = r.frames.allocFrame();
      r.gmem.makeTable(t);
      r.gmem.write(r.pt.root, slot, (t * 4096 + LINUX_PAGE_TABLE) >>> 0, 0);
    }
    expect(delta(s, r.kvm)).toMatchObject({ exits: 3, emulated: 3, zappedPages: 4 });
    expect(r.kvm.smem.isTable(r.cpu.root)).toBe(true);
    expect(translate(r, V)).toBe(TRANSLATE_PF);
    expect(access(r, V)).toBe(f);
    expect(access(r, V + 1)).toBe(GUEST_PF);
    expect(r.gmem.isTracked(r.pt.root)).toBe(true);
    expect(r.kvm.checkInvariants()).toEqual([]);
  });
});

describe("sync points (§3.4): the guest's TLB flushes through its pvops", () => {
  it('a guest CR3 write syncs every unsync leaf, one sync_page each', () => {
    const r = rig('modern', 3);
    for (let t = 0; t < 3; t++) mapPages(r, V + 512 * t, 1, YOUNG_RO);
    boot(r);
    for (let t = 0; t < 3; t++) access(r, V + 512 * t);
    for (let t = 0; t < 3; t++) mapPages(r, V + 512 * t + 1, 8, YOUNG_RO);
    const s = stats(r.kvm);
    expect(s.unsyncs).toBe(3);
    const pv = new KvmShadowPvMmu(r.gmem, r.kvm, r.ledger);
    pv.flushTlbAll(); // flush_tlb_local(): a CR3 reload, which exits
    expect(delta(s, r.kvm)).toEqual({ exits: 1, cr3Exits: 1, syncs: 3 });
    for (let t = 0; t < 3; t++) expect(r.gmem.isTracked(leafOf(r, V + 512 * t))).toBe(true);
    expect(r.kvm.checkInvariants()).toEqual([]);
    expect(r.ledger.get('kvm.shadow_fault')).toBeGreaterThanOrEqual(3 * 8000);
  });

  it("a CR3 write syncs only the unsync pages under the root it loads; another address space's wait for its own CR3", () => {
    const r = rig();
    mapPages(r, V, 1, YOUNG_RO);
    // A second address space: its own tables in the same guest memory.
    const pt2 = new PageTables(r.gmem, r.frames, 4, LINUX_PAGE_TABLE);
    const f = r.frames.allocFrame();
    pt2.map(vpnHi(V), vpnLo(V), f, pteLo(0, YOUNG_RO) & 0xfff);
    const leaf2 = pt2.tableFor(vpnHi(V), vpnLo(V), 1, false);
    r.kvm.writeCr3(pt2.root, 0);
    expect(access(r, V)).toBe(f);
    r.gmem.write(leaf2, 1, pteLo(f, YOUNG_RO), pteHi(f)); // unsync
    boot(r); // switch to the first address space
    expect(access(r, V)).toBeGreaterThan(0);
    mapPages(r, V + 1, 1, YOUNG_RO); // its leaf goes unsync too
    const s = stats(r.kvm);
    expect(s.unsyncs).toBe(2);
    r.kvm.writeCr3(r.pt.root, 0);
    expect(delta(s, r.kvm)).toEqual({ exits: 1, cr3Exits: 1, syncs: 1 });
    expect(r.gmem.isTracked(leaf2)).toBe(false);
    r.kvm.writeCr3(pt2.root, 0);
    expect(delta(s, r.kvm)).toEqual({ exits: 2, cr3Exits: 2, syncs: 2 });
    expect(r.gmem.isTracked(leaf2)).toBe(true);
    expect(r.kvm.checkInvariants()).toEqual([]);
  });

  it('flush_tlb_one_user is an INVLPG exit (no sync of the whole page)', () => {
    const r = rig();
    mapPages(r, V, 1, YOUNG_RO);
    boot(r);
    access(r, V);
    mapPages(r, V + 1, 1, YOUNG_RO);
    const s = stats(r.kvm);
    new KvmShadowPvMmu(r.gmem, r.kvm, r.ledger).flushTlbOne(vpnHi(V + 1), vpnLo(V + 1));
    expect(delta(s, r.kvm)).toEqual({ exits: 1, invlpgExits: 1 });
  });

  it('sync_page drops sptes whose gpte went away or changed frame and write-protects those the guest made read-only', () => {
    const r = rig();
    const fs = mapPages(r, V, 8, YOUNG_RW_DIRTY);
    boot(r);
    for (let i = 0; i < 8; i++) access(r, V + i, true);
    const leaf = leafOf(r, V);
    r.gmem.write(leaf, 1, 0, 0); // unmapped (this store makes the leaf unsync)
    const g = r.frames.allocFrame();
    r.gmem.write(leaf, 2, pteLo(g, YOUNG_RO), pteHi(g)); // remapped
    r.gmem.write(leaf, 3, pteLo(fs[3]!, A | D), pteHi(fs[3]!)); // write-protected
    r.gmem.write(leaf, 4, pteLo(fs[4]!, RW | D), pteHi(fs[4]!)); // made old
    r.kvm.writeCr3(r.pt.root, 0);
    expect(spteOf(r, V + 1)![0] & P).toBe(0);
    expect(spteOf(r, V + 2)![0] & P).toBe(0);
    expect(spteOf(r, V + 3)![0] & (P | RW)).toBe(P);
    expect(spteOf(r, V + 4)![0] & P).toBe(0);
    expect(spteOf(r, V + 5)![0] & (P | RW)).toBe(P | RW);
    expect(r.kvm.checkInvariants()).toEqual([]);
    expect(access(r, V + 2)).toBe(g);
    expect(access(r, V + 1)).toBe(GUEST_PF);
  });

  it('the guest reusing a shadowed frame as a new page table drops the stale shadow (KvmShadowPvMmu.allocPt)', () => {
    const r = rig('modern', 2);
    mapPages(r, V, 1, YOUNG_RO);
    mapPages(r, V + 512, 1, YOUNG_RO);
    boot(r);
    access(r, V);
    access(r, V + 512);
    const pv = new KvmShadowPvMmu(r.gmem, r.kvm, r.ledger);
    const pmd = r.pt.tableFor(vpnHi(V), vpnLo(V), 2, false);
    const leaf1 = leafOf(r, V + 512);
    // The guest unhooks and frees the second PTE page (free_pgtables), then reuses the frame as a PTE page elsewhere.
    r.gmem.write(pmd, 1, 0, 0);
    pv.releasePt(1, leaf1, r.pt.root);
    expect(r.gmem.isTracked(leaf1)).toBe(false);
    pv.allocPt(1, leaf1, r.pt.root);
    expect(r.gmem.isTable(leaf1)).toBe(true);
    // Stores into it are plain: it is not shadowed any more.
    const s = stats(r.kvm);
    r.gmem.write(leaf1, 3, pteLo(5, YOUNG_RO), pteHi(5));
    expect(delta(s, r.kvm)).toEqual({});
    expect(r.kvm.checkInvariants()).toEqual([]);
  });
});

describe('a frame KVM still shadows, reused by the guest as data (mmu_unshadow / kvm_mmu_unprotect_page)', () => {
  /** Frame `x` was the root of an address space the vCPU ran (its shadow outlives it), now mapped as data at V. */
  function staleRoot(era: 'modern' | '2008') {
    const r = rig(era);
    const x = r.frames.allocFrame();
    r.gmem.makeTable(x);
    r.kvm.writeCr3(x, 0); // that address space runs, then goes away
    r.gmem.releaseTable(x);
    boot(r);
    expect(r.gmem.isTracked(x)).toBe(true);
    storePte(r, V, x, YOUNG_RW_DIRTY);
    return { r, x };
  }

  it.each(['modern', '2008'] as const)(
    '%s: a user write unshadows it and proceeds (no endless write-protection fault)',
    (era) => {
      const { r, x } = staleRoot(era);
      const s = stats(r.kvm);
      expect(access(r, V, true)).toBe(x);
      expect(delta(s, r.kvm)).toEqual({ exits: 1, shadowFaults: 1, zappedPages: 1 });
      expect(r.gmem.isTracked(x)).toBe(false);
      expect(spteOf(r, V)![0] & RW).toBe(RW);
    },
  );

  it('modern: a read keeps the shadow (read-only spte); the first write then unshadows', () => {
    const { r, x } = staleRoot('modern');
    expect(access(r, V)).toBe(x);
    expect(spteOf(r, V)![0] & RW).toBe(0);
    expect(r.gmem.isTracked(x)).toBe(true);
    expect(access(r, V, true)).toBe(x);
    expect(r.gmem.isTracked(x)).toBe(false);
    expect(r.kvm.shadowFaults).toBe(2);
  });

  it('2008: a user fault that maps it writable (gpte dirty) unshadows it even on a read', () => {
    const { r, x } = staleRoot('2008');
    expect(access(r, V)).toBe(x);
    expect(r.gmem.isTracked(x)).toBe(false);
    expect(spteOf(r, V)![0] & RW).toBe(RW);
  });
});

describe('checkInvariants can fail', () => {
  it('reports a present spte over a cleared gpte, a writable spte over a read-only gpte and a wrong frame', () => {
    const r = rig();
    mapPages(r, V, 3, YOUNG_RW_DIRTY);
    boot(r);
    access(r, V, true);
    const leaf = leafOf(r, V);
    const sp = r.cpu.root;
    expect(sp).toBeGreaterThan(0);
    // Corrupt the guest side behind KVM's back (PhysMem.ent, no page-track).
    const e = (i: number) => 2 * r.gmem.entryIndex(leaf, i);
    r.gmem.ent[e(0)] = 0;
    r.gmem.ent[e(1)] = (r.gmem.ent[e(1)]! & ~RW) >>> 0;
    r.gmem.ent[e(2)] = (r.gmem.ent[e(2)]! + 4096) >>> 0;
    const bad = r.kvm.checkInvariants();
    expect(bad.some((m) => m.includes('is present but its gpte is not'))).toBe(true);
    expect(bad.some((m) => m.includes('is writable but its gpte is not writable and dirty'))).toBe(true);
    expect(bad.some((m) => m.includes('maps another frame than its gpte'))).toBe(true);
  });
});

describe('cost accounting', () => {
  it('every exit is charged kvm.exit; a shadow fault charges its guest walk refs and kvm.shadow_fault, prefetch kvm.prefetch', () => {
    const r = rig();
    mapPages(r, V, 8, YOUNG_RO);
    boot(r);
    const before = r.ledger.snapshot();
    access(r, V);
    const d = (k: string) => r.ledger.get(k) - (before[k] ?? 0);
    expect(d('kvm.exit')).toBe(1100);
    expect(d('kvm.shadow_fault')).toBe(4 * 60 + 2500);
    expect(d('kvm.prefetch')).toBe(7 * 200);
  });
});

describe('the shadow walk matches the guest walk for every mapped page', () => {
  it('random gptes over 4 PTE pages: every access reaches the frame (or the fault) the guest tables say', () => {
    const r = rig('modern', 4);
    const want = new Map<number, { pfn: number; rw: boolean }>();
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2048; i++) {
      const x = rnd();
      if (x < 0.4) continue;
      const flags = (rnd() < 0.7 ? A : 0) | (rnd() < 0.5 ? RW | (rnd() < 0.5 ? D : 0) : 0);
      const [f] = mapPages(r, V + i, 1, flags);
      want.set(i, { pfn: f!, rw: (flags & RW) !== 0 });
    }
    boot(r);
    for (let n = 0; n < 6000; n++) {
      const i = Math.floor(rnd() * 2048);
      const write = rnd() < 0.3;
      const got = access(r, V + i, write);
      const w = want.get(i);
      const expected = w === undefined || (write && !w.rw) ? GUEST_PF : w.pfn;
      if (got !== expected) throw new Error(`page ${i} write=${write}: reached ${got}, guest tables say ${expected}`);
    }
    expect(r.kvm.checkInvariants()).toEqual([]);
    // Every present leaf spte is backed: no spte where the guest has none (shadow ⊆ guest).
    for (let i = 0; i < 2048; i++) {
      const e = spteOf(r, V + i);
      if (e !== null && (e[0] & P) !== 0) expect(want.has(i)).toBe(true);
    }
  });
});
