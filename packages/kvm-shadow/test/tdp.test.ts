/**
 * KVM with TDP (EPT/NPT), hypervisors.md §3.8: the guest's tables are walked by the CPU through
 * the host's (a 2D walk of (n+1)(m+1)−1 references), guest page-table writes and guest #PFs never
 * exit, and the first touch of each guest-physical page is one EPT violation.
 */
import { CycleLedger } from '@pte/core';
import {
  frameLo,
  A,
  ACCESS_USER,
  ACCESS_WRITE,
  D,
  LINUX_PAGE_TABLE,
  Mmu,
  P,
  PageTables,
  PhysMem,
  PS,
  RW,
  SimpleFrameSource,
  TRANSLATE_PF,
  US,
} from '@pte/arch-x86';
import { NativePvMmu } from '@pte/pvops';
import { KvmTdp } from '../src/index.js';

const V = 512 ** 3;
const hiOf = (vpn: number) => Math.floor(vpn / 1048576);
const loOf = (vpn: number) => ((vpn % 1048576) * 4096) >>> 0;
const pte = (pfn: number, flags: number) => (frameLo(pfn) + (P | US | flags)) >>> 0;

function rig(hostLevels = 4, frames = 8192) {
  const ledger = new CycleLedger();
  const gmem = new PhysMem(frames);
  const src = new SimpleFrameSource(frames, 1);
  const pt = new PageTables(gmem, src, 4, LINUX_PAGE_TABLE);
  const tdp = new KvmTdp(frames, ledger, undefined, hostLevels);
  const mmu = new Mmu(gmem, { ledger, nested: tdp });
  const pv = new NativePvMmu(gmem, mmu, ledger, undefined, 'kvm-tdp');
  mmu.writeCr3(pt.root, 0);
  const map = (vpn: number, flags = A | D | RW) => {
    const f = src.allocFrame();
    pt.map(hiOf(vpn), loOf(vpn), f, P | US | flags);
    return f;
  };
  const read = (vpn: number, write = false) =>
    mmu.translate(hiOf(vpn), loOf(vpn), ACCESS_USER | (write ? ACCESS_WRITE : 0));
  return { ledger, gmem, src, pt, tdp, mmu, pv, map, read };
}

describe('the 2D walk (Mmu with NestedPaging) through the paging-structure caches', () => {
  it('a cold TLB miss on a 4 KiB page reads 4 guest entries and translates 5 guest frames through the EPT: the first host walk reads 4 levels, the next ones in the same 2 MiB of guest frames 1 (the EPT PDE cached)', () => {
    const r = rig();
    const f = r.map(V);
    let refs = r.mmu.walkRefs;
    const walk = r.ledger.get('tlb.walk');
    expect(r.read(V)).toBe(f);
    // Guest tables and the page are frames 1..5 of one 2 MiB: 4 + (4 + 1 + 1 + 1 + 1).
    expect(r.mmu.walkRefs - refs).toBe(12);
    expect(r.ledger.get('tlb.walk') - walk).toBeGreaterThanOrEqual(12 * 20);
    // Without any cache it would be (4+1)(4+1)−1 = 24.
    expect(r.mmu.walkRefs - refs).toBeLessThan(24);
    // A TLB hit walks nothing.
    refs = r.mmu.walkRefs;
    expect(r.read(V)).toBe(f);
    expect(r.mmu.walkRefs - refs).toBe(0);
    // After a guest flush (INVPCID all / CR4.PGE): the guest caches are gone, the host's are not
    // (guest flushes do not invalidate EPT mappings): 4 guest reads, 5 host reads.
    r.mmu.flushAll();
    refs = r.mmu.walkRefs;
    expect(r.read(V)).toBe(f);
    expect(r.mmu.walkRefs - refs).toBe(9);
    // The next page of the same guest page table: the guest PDE is cached (1 guest read) and so is
    // the EPT PDE of both guest frames to translate.
    const g = r.map(V + 1);
    refs = r.mmu.walkRefs;
    expect(r.read(V + 1)).toBe(g);
    expect(r.mmu.walkRefs - refs).toBe(3);
  });

  it('a 2 MiB guest page: 3 guest reads and 4 translations; 5-level EPT under a 4-level guest: 4 + 5 + 1·4', () => {
    const r = rig();
    const big = 1024; // 2 MiB-aligned guest frame, another 2 MiB of guest frames than the tables
    r.pt.map(hiOf(V + 512), loOf(V + 512), big, P | US | A | D, 0, 512);
    let refs = r.mmu.walkRefs;
    expect(r.read(V + 512 + 7)).toBe(big + 7);
    // 3 + (4 + 1 + 1) for the tables + 2 for the page (its EPT PDPTE cached, not its PDE).
    expect(r.mmu.walkRefs - refs).toBe(11);
    const r5 = rig(5);
    r5.map(V);
    refs = r5.mmu.walkRefs;
    r5.read(V);
    expect(r5.mmu.walkRefs - refs).toBe(4 + 5 + 4 * 1);
  });

  it('a walk that ends in a guest #PF translates no final guest-physical address', () => {
    const r = rig();
    r.map(V); // the tables exist; V + 1 has no PTE
    let refs = r.mmu.walkRefs;
    expect(r.read(V + 1)).toBe(TRANSLATE_PF);
    expect(r.mmu.walkRefs - refs).toBe(4 + (4 + 1 + 1 + 1));
    // No PUD for this 512 GiB slot: one guest entry read (the PML4E), its table's EPT PDE cached.
    refs = r.mmu.walkRefs;
    expect(r.read(V + 512 ** 3)).toBe(TRANSLATE_PF);
    expect(r.mmu.walkRefs - refs).toBe(1 + 1);
  });
});

describe('EPT violations (KvmTdp)', () => {
  it('the first touch of a page: one violation for each table frame and for the page; none again', () => {
    const r = rig();
    const f = r.map(V);
    const exits = r.ledger.get('kvm.exit');
    expect(r.read(V)).toBe(f);
    expect(r.tdp.violations).toBe(5); // root, PUD, PMD, PTE page, the page
    expect(r.ledger.get('kvm.exit') - exits).toBe(5 * (1100 + 1500));
    r.mmu.flushAll();
    r.read(V);
    expect(r.tdp.violations).toBe(5);
    const g = r.map(V + 1);
    expect(r.read(V + 1)).toBe(g);
    expect(r.tdp.violations).toBe(6);
  });

  it('random touches over 3 PTE pages with aliases: violations = distinct guest frames the walks used, exactly', () => {
    const r = rig();
    const frameOf = new Map<number, number>();
    for (let i = 0; i < 1536; i += 1 + (i % 3)) frameOf.set(i, r.map(V + i));
    // Eight aliases: a second PTE naming a frame already mapped elsewhere.
    const keys = [...frameOf.keys()];
    for (let j = 0; j < 8; j++) {
      const src = frameOf.get(keys[j * 50]!)!;
      const vpn = V + 1600 + j;
      r.pt.map(hiOf(vpn), loOf(vpn), src, P | US | A | D | RW);
      frameOf.set(1600 + j, src);
    }
    const touched = new Set<number>();
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const all = [...frameOf.keys()];
    for (let n = 0; n < 3000; n++) {
      const i = all[Math.floor(rnd() * all.length)]!;
      expect(r.read(V + i, rnd() < 0.5)).toBe(frameOf.get(i));
      touched.add(frameOf.get(i)!);
      for (const l of [1, 2, 3]) touched.add(r.pt.tableFor(hiOf(V + i), loOf(V + i), l, false));
      touched.add(r.pt.root);
    }
    expect(r.tdp.violations).toBe(touched.size);
    let mapped = 0;
    for (const m of r.tdp.mapped) mapped += m;
    expect(mapped).toBe(touched.size);
  });

  it('guest page-table writes, #PFs, INVLPG and CR3 writes cause no exit', () => {
    const r = rig();
    const f = r.map(V);
    r.read(V);
    const leaf = r.pt.tableFor(hiOf(V), loOf(V), 1, false);
    const exits = r.ledger.get('kvm.exit');
    const v0 = r.tdp.violations;
    for (let i = 1; i < 64; i++) r.pv.setPte(leaf, i, pte(f, A), 0);
    r.pv.setPtes(leaf, 64, 16, pte(f, A), 0);
    r.pv.ptepSetWrprotect(leaf, 0);
    r.pv.ptepGetAndClear(leaf, 1);
    r.pv.ptepTestAndClearYoung(leaf, 2);
    r.pv.lazyEnter();
    r.pv.ptepModifyProtStart(leaf, 3);
    r.pv.ptepModifyProtCommit(leaf, 3, pte(f, A | RW | D), 0);
    r.pv.lazyLeave();
    r.pv.flushTlbOne(hiOf(V), loOf(V));
    r.pv.flushTlbAll();
    r.pv.writeCr3(r.pt.root, 0);
    expect(r.read(V + 1)).toBe(TRANSLATE_PF); // cleared above: the guest's #PF, no exit
    expect(r.read(V, true)).toBe(TRANSLATE_PF); // write-protected: the guest's COW fault
    expect(r.tdp.violations).toBe(v0);
    expect(r.ledger.get('kvm.exit')).toBe(exits);
    expect(r.pv.pteWrites).toBeGreaterThan(80);
  });

  it('a PS bit is not a table: a 2 MiB leaf counts its page, not a PTE page', () => {
    const r = rig();
    r.pt.map(hiOf(V), loOf(V), 2048, P | US | A, 0, 512);
    r.read(V + 3);
    expect(r.tdp.violations).toBe(4); // root, PUD, PMD, frame 2048 + 3
    expect(r.tdp.mapped[2048 + 3]).toBe(1);
    expect(PS).toBe(128);
  });
});
