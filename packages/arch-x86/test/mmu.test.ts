import { Counters, CycleLedger, PteError, resolveCosts, type CostTable } from '@pte/core';
import {
  A,
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_USER,
  ACCESS_WRITE,
  ARCH_COSTS,
  D,
  DEFAULT_MODE,
  DEFAULT_TLB,
  FRAMES_1G,
  FRAMES_2M,
  G,
  Mmu,
  P,
  PF_P,
  PF_PK,
  PF_U,
  PF_W,
  PKEY_SHIFT_HI,
  PhysMem,
  RW,
  TRANSLATE_GP,
  TRANSLATE_PF,
  US,
  type ArchCostKey,
  type MmuOptions,
  type TlbConfig,
} from '../src/index.js';
import { DATA_PFN, MEM_FRAMES, makeSpace, map, patchEntry, readEntry, va, type Space } from './helpers.js';

const VA = 0x7f1234567000n;
const PFN = DATA_PFN + 0x123;
const USER_RW = P | RW | US;
const R = ACCESS_READ;
const W = ACCESS_WRITE;
const U = ACCESS_USER;

function setup(opts: MmuOptions = {}, levels: 4 | 5 = 4): { s: Space; mmu: Mmu } {
  const s = makeSpace(levels);
  const mmu = new Mmu(s.mem, { mode: { ...DEFAULT_MODE, levels }, ...opts });
  mmu.writeCr3(s.pt.root);
  return { s, mmu };
}

function tr(mmu: Mmu, addr: bigint, access: number): number {
  const a = va(addr);
  return mmu.translate(a.hi, a.lo, access);
}
function invlpg(mmu: Mmu, addr: bigint): void {
  const a = va(addr);
  mmu.invlpg(a.hi, a.lo);
}

const COSTS: CostTable<ArchCostKey> = {
  'tlb.stlb_hit': 3,
  'tlb.walk_ref': 7,
  'tlb.ad_write': 100,
  'tlb.invlpg': 1000,
  'tlb.cr3_write': 50,
  'tlb.flush_global': 5000,
};

describe('Mmu.translate and the TLB', () => {
  it('the second access to a page is an L1 hit with no walk', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    expect([mmu.walks, mmu.tlb.misses, mmu.tlb.l1Hits]).toEqual([1, 1, 0]);
    expect(tr(mmu, VA + 0xabcn, U | R)).toBe(PFN);
    expect([mmu.walks, mmu.tlb.misses, mmu.tlb.l1Hits, mmu.accesses]).toEqual([1, 1, 1, 2]);
  });

  it('INVLPG drops the page (next access walks) but not other pages', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    map(s, VA + 0x1000n, PFN + 1, USER_RW);
    tr(mmu, VA, R);
    tr(mmu, VA + 0x1000n, R);
    expect(mmu.walks).toBe(2);
    invlpg(mmu, VA);
    expect(mmu.invlpgs).toBe(1);
    expect(tr(mmu, VA + 0x1000n, R)).toBe(PFN + 1);
    expect(mmu.walks).toBe(2);
    expect(tr(mmu, VA, R)).toBe(PFN);
    expect(mmu.walks).toBe(3);
  });

  it('a CR3 write without PCIDE flushes non-global entries; global ones (G, pge default) survive', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    map(s, 0xffffffff81000000n, 0x1000, P | RW | G);
    tr(mmu, VA, R);
    tr(mmu, 0xffffffff81000000n, R);
    expect(mmu.walks).toBe(2);
    mmu.writeCr3(s.pt.root);
    expect(tr(mmu, 0xffffffff81000000n, R)).toBe(0x1000);
    expect(mmu.walks).toBe(2);
    expect(tr(mmu, VA, R)).toBe(PFN);
    expect(mmu.walks).toBe(3);
    // flushAll drops the global entry too.
    mmu.flushAll();
    expect(mmu.fullFlushes).toBe(1);
    expect(tr(mmu, 0xffffffff81000000n, R)).toBe(0x1000);
    expect(mmu.walks).toBe(4);
  });

  it('with pge: false a G leaf is flushed by a CR3 write like any other', () => {
    const { s, mmu } = setup({ pge: false });
    map(s, 0xffffffff81000000n, 0x1000, P | RW | G);
    tr(mmu, 0xffffffff81000000n, R);
    mmu.writeCr3(s.pt.root);
    tr(mmu, 0xffffffff81000000n, R);
    expect(mmu.walks).toBe(2);
  });

  it('PCIDE: two address spaces with their own PCIDs keep their entries across noFlush CR3 writes', () => {
    const mem = new PhysMem(MEM_FRAMES);
    const a = makeSpace(4, undefined, mem, 1);
    const b = makeSpace(4, undefined, mem, 0x8000);
    map(a, VA, PFN, USER_RW);
    map(b, VA, PFN + 1, USER_RW);
    const mmu = new Mmu(mem, { pcide: true });
    mmu.writeCr3(a.pt.root, 1);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    mmu.writeCr3(b.pt.root, 2, true);
    expect(tr(mmu, VA, U | R)).toBe(PFN + 1);
    expect(mmu.walks).toBe(2);
    mmu.writeCr3(a.pt.root, 1, true);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    mmu.writeCr3(b.pt.root, 2, true);
    expect(tr(mmu, VA, U | R)).toBe(PFN + 1);
    expect(mmu.walks).toBe(2);
    // noFlush = false drops that PCID's entries only.
    mmu.writeCr3(a.pt.root, 1, false);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    expect(mmu.walks).toBe(3);
    mmu.writeCr3(b.pt.root, 2, true);
    expect(tr(mmu, VA, U | R)).toBe(PFN + 1);
    expect(mmu.walks).toBe(3);
    expect(mmu.cr3Writes).toBe(6);
  });

  it('without PCIDE the PCID argument is ignored and every CR3 write flushes', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    tr(mmu, VA, R);
    mmu.writeCr3(s.pt.root, 7, true);
    expect(mmu.tlb.pcid).toBe(0);
    tr(mmu, VA, R);
    expect(mmu.walks).toBe(2);
  });

  it('writeCr3 refuses a frame that is not a page table and a PCID outside 0..4095, changing nothing', () => {
    const ledger = new CycleLedger();
    const { s, mmu } = setup({ pcide: true, ledger });
    const other = makeSpace(4, undefined, s.mem, 0x8000);
    expect(() => mmu.writeCr3(DATA_PFN)).toThrow(/not a page table/);
    expect(() => mmu.writeCr3(other.pt.root, 4096)).toThrow(/PCID 4096/);
    expect(() => mmu.writeCr3(other.pt.root, -1)).toThrow(/PCID -1/);
    expect(() => mmu.writeCr3(other.pt.root, 1.5)).toThrow(/PCID 1.5/);
    expect(mmu.root).toBe(s.pt.root);
    expect(mmu.tlb.pcid).toBe(0);
    expect(mmu.cr3Writes).toBe(1);
    expect(ledger.get('tlb.flush')).toBe(resolveCosts(ARCH_COSTS)['tlb.cr3_write']);
  });

  it('a translation whose walk faulted is never cached: map after the fault, the next access walks and succeeds', () => {
    const { s, mmu } = setup();
    map(s, VA + 0x1000n, PFN + 1, USER_RW);
    tr(mmu, VA + 0x1000n, R);
    const valid = mmu.tlb.countValid();
    expect(tr(mmu, VA, U | W)).toBe(TRANSLATE_PF);
    expect(mmu.faultCode).toBe(PF_W | PF_U);
    expect(mmu.pageFaults).toBe(1);
    expect(mmu.tlb.countValid()).toBe(valid);
    map(s, VA, PFN, USER_RW);
    const walks = mmu.walks;
    expect(tr(mmu, VA, U | W)).toBe(PFN);
    expect(mmu.walks).toBe(walks + 1);
  });

  it('a protection fault drops the cached entry and is not cached either', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, P | US);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    expect(mmu.tlb.countValid()).toBe(2);
    expect(tr(mmu, VA, U | W)).toBe(TRANSLATE_PF);
    expect(mmu.faultCode).toBe(PF_P | PF_W | PF_U);
    expect(mmu.tlb.countValid()).toBe(0);
    // The kernel makes the PTE writable (no INVLPG needed: nothing is cached) and the write retries.
    map(s, VA, PFN, USER_RW);
    expect(tr(mmu, VA, U | W)).toBe(PFN);
  });

  it('a TLB hit whose rights deny the access faults with the walk error code', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, P | RW);
    expect(tr(mmu, VA, R)).toBe(PFN);
    expect(tr(mmu, VA, U | R)).toBe(TRANSLATE_PF);
    expect(mmu.faultCode).toBe(PF_P | PF_U);
  });

  it('PKRU is checked on every access, TLB hits included', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW, 2 << PKEY_SHIFT_HI);
    const mmu = new Mmu(s.mem, { mode: { ...DEFAULT_MODE, pke: true } });
    mmu.writeCr3(s.pt.root);
    expect(tr(mmu, VA, U | W)).toBe(PFN);
    mmu.walker.pkru = 1 << (2 * 2 + 1); // WD for key 2
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    expect(tr(mmu, VA, U | W)).toBe(TRANSLATE_PF);
    expect(mmu.faultCode).toBe(PF_P | PF_W | PF_U | PF_PK);
    mmu.walker.pkru = 0;
    expect(tr(mmu, VA, U | W)).toBe(PFN);
  });

  it('stale TLB: a PTE changed in memory without INVLPG still translates the old way (as hardware does)', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    map(s, VA, PFN + 99, USER_RW);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    const a = va(VA);
    s.pt.unmap(a.hi, a.lo);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    expect(mmu.walks).toBe(1);
    invlpg(mmu, VA);
    expect(tr(mmu, VA, U | R)).toBe(TRANSLATE_PF);
    expect(mmu.faultCode).toBe(PF_U);
  });

  it('a write through an entry cached by a read (D clear) re-walks and sets D; the next write hits', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    tr(mmu, VA, U | R);
    expect(readEntry(s, VA, 1).lo & D).toBe(0);
    expect(tr(mmu, VA, U | W)).toBe(PFN);
    expect(mmu.walks).toBe(2);
    expect(mmu.adWrites).toBe(5);
    expect(readEntry(s, VA, 1).lo & (A | D)).toBe(A | D);
    expect(tr(mmu, VA, U | W)).toBe(PFN);
    expect(mmu.walks).toBe(2);
    expect(mmu.tlb.countValid()).toBe(2);
  });

  it('a read-cached entry whose PTE is already dirty in memory needs no re-walk for a write', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW | A | D);
    tr(mmu, VA, U | R);
    tr(mmu, VA, U | W);
    expect(mmu.walks).toBe(1);
  });

  it('STLB: with a 4-entry L1, a fifth page pushes one out of L1 and it then hits the STLB without a walk', () => {
    const tlb: TlbConfig = { ...DEFAULT_TLB, l1_4k: { entries: 4, ways: 4 } };
    const ledger = new CycleLedger();
    const { s, mmu } = setup({ tlb, costs: COSTS, ledger });
    for (let p = 0n; p < 6n; p++) map(s, VA + p * 0x1000n, PFN + Number(p), USER_RW);
    for (let p = 0n; p < 5n; p++) expect(tr(mmu, VA + p * 0x1000n, R)).toBe(PFN + Number(p));
    expect(mmu.walks).toBe(5);
    expect(mmu.tlb.stlbHits).toBe(0);
    expect(tr(mmu, VA, R)).toBe(PFN);
    expect(mmu.tlb.stlbHits).toBe(1);
    expect(mmu.walks).toBe(5);
    expect(ledger.get('tlb.stlb')).toBe(COSTS['tlb.stlb_hit']);
    // Refilled into L1: the next access is an L1 hit.
    const l1 = mmu.tlb.l1Hits;
    expect(tr(mmu, VA, R)).toBe(PFN);
    expect(mmu.tlb.l1Hits).toBe(l1 + 1);
    expect(mmu.tlb.stlbHits).toBe(1);
  });

  it('a non-canonical address is #GP (TRANSLATE_GP) with 4 levels and translates with 5', () => {
    const { mmu } = setup();
    expect(tr(mmu, 0x0000800000000000n, R)).toBe(TRANSLATE_GP);
    expect(tr(mmu, 0xfeff800000000000n, R)).toBe(TRANSLATE_GP);
    expect([mmu.gpFaults, mmu.walks, mmu.pageFaults]).toEqual([2, 0, 0]);
    const five = setup({}, 5);
    map(five.s, 0x0000800000000000n, PFN, USER_RW);
    expect(tr(five.mmu, 0x0000800000000000n, U | R)).toBe(PFN);
    expect(five.mmu.walker.refs).toBe(5);
    expect(tr(five.mmu, 0x0100000000000000n, R)).toBe(TRANSLATE_GP);
    expect(five.mmu.gpFaults).toBe(1);
    expect(TRANSLATE_GP).toBe(-2);
    expect(TRANSLATE_PF).toBe(-1);
  });

  it('2M and 1G pages: one TLB entry covers the page; the walker reads 3 and 2 entries', () => {
    const { s, mmu } = setup();
    map(s, 0x40000000n, 0x80000, USER_RW, 0, FRAMES_1G);
    map(s, 0x80200000n, DATA_PFN, USER_RW, 0, FRAMES_2M);
    expect(tr(mmu, 0x40000000n + 0x3456789n, R)).toBe(0x80000 + 0x3456);
    expect(mmu.walker.refs).toBe(2);
    expect(tr(mmu, 0x80200000n + 0x1ff000n, R)).toBe(DATA_PFN + 0x1ff);
    expect(mmu.walker.refs).toBe(3);
    expect(tr(mmu, 0x40000000n + 0x3fff0000n, R)).toBe(0x80000 + 0x3fff0);
    expect(tr(mmu, 0x80200000n, R)).toBe(DATA_PFN);
    expect(mmu.walks).toBe(2);
    // Charged: 2, then 3 less the PML4E the first walk left in the paging-structure caches.
    expect(mmu.walkRefs).toBe(4);
  });

  it('instruction fetches go through the same checks (XD page)', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW, 0x80000000);
    expect(tr(mmu, VA, U | R)).toBe(PFN);
    expect(tr(mmu, VA, U | ACCESS_FETCH)).toBe(TRANSLATE_PF);
    expect(mmu.faultCode).toBe(PF_P | PF_U | (1 << 4));
  });

  it('translateRun counts the whole run: one walk, count - 1 L1 hits', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    expect(mmu.translateRun(va(VA).hi, va(VA).lo, R, 64)).toBe(PFN);
    expect([mmu.accesses, mmu.walks, mmu.tlb.l1Hits]).toEqual([64, 1, 63]);
    expect(mmu.translateRun(va(VA + 0x1000n).hi, va(VA + 0x1000n).lo, R, 64)).toBe(TRANSLATE_PF);
    expect(mmu.accesses).toBe(65);
  });
});

describe('paging-structure caches (SDM §4.10.3)', () => {
  it('a walk under a cached PDE reads only the PTE; INVLPG and CR3 writes drop the cached entries of the PCID, a no-flush CR3 write keeps them', () => {
    const { s, mmu } = setup({ pcide: true });
    for (let p = 0n; p < 3n; p++) map(s, VA + p * 0x1000n, PFN + Number(p), USER_RW);
    const refs = () => mmu.walkRefs;
    let r0 = refs();
    tr(mmu, VA, U | R);
    expect(refs() - r0).toBe(4);
    r0 = refs();
    tr(mmu, VA + 0x1000n, U | R);
    expect(refs() - r0).toBe(1);
    invlpg(mmu, VA + 0x2000n); // drops every cached entry of the current PCID, whatever the address
    r0 = refs();
    tr(mmu, VA + 0x2000n, U | R);
    expect(refs() - r0).toBe(4);
    mmu.writeCr3(s.pt.root, 1); // another PCID: its own (empty) caches
    r0 = refs();
    tr(mmu, VA, U | R);
    expect(refs() - r0).toBe(4);
    mmu.writeCr3(s.pt.root, 0, true); // back to PCID 0 without a flush: its caches are still there
    mmu.tlb.flush(-1, true); // (the TLB alone, to force a walk)
    r0 = refs();
    tr(mmu, VA + 0x1000n, U | R);
    expect(refs() - r0).toBe(1);
    mmu.writeCr3(s.pt.root, 0); // a flushing CR3 write
    mmu.tlb.flush(-1, true);
    r0 = refs();
    tr(mmu, VA + 0x1000n, U | R);
    expect(refs() - r0).toBe(4);
  });
});

describe('Mmu costs and counters', () => {
  it("'tlb.walk' is refs × walk_ref + adWrites × ad_write from the cost table", () => {
    const ledger = new CycleLedger();
    const { s, mmu } = setup({ costs: COSTS, ledger });
    map(s, VA, PFN, USER_RW);
    tr(mmu, VA, U | R); // 4 refs, 4 A writes
    expect(ledger.get('tlb.walk')).toBe(4 * 7 + 4 * 100);
    tr(mmu, VA, U | R); // hit: nothing
    expect(ledger.get('tlb.walk')).toBe(428);
    tr(mmu, VA, U | W); // re-walk: the PDE is cached, 1 ref; 1 D write
    expect(ledger.get('tlb.walk')).toBe(428 + 1 * 7 + 100);
    tr(mmu, VA + 0x1000n, U | R); // fault at the PTE: 1 ref, no A/D
    expect(ledger.get('tlb.walk')).toBe(535 + 7);
    expect(mmu.walkRefs).toBe(6);
    expect(mmu.adWrites).toBe(5);
  });

  it("'tlb.flush' charges cr3_write per CR3 write, invlpg per INVLPG and flush_global per full flush", () => {
    const ledger = new CycleLedger();
    const { s, mmu } = setup({ costs: COSTS, ledger });
    expect(ledger.get('tlb.flush')).toBe(50);
    mmu.writeCr3(s.pt.root);
    invlpg(mmu, VA);
    invlpg(mmu, VA);
    mmu.flushAll();
    expect(ledger.get('tlb.flush')).toBe(2 * 50 + 2 * 1000 + 5000);
    expect(ledger.total()).toBe(7100);
  });

  it('default costs come from ARCH_COSTS', () => {
    const ledger = new CycleLedger();
    const { s, mmu } = setup({ ledger });
    map(s, VA, PFN, USER_RW);
    tr(mmu, VA, R);
    const c = resolveCosts(ARCH_COSTS);
    expect(ledger.get('tlb.walk')).toBe(4 * c['tlb.walk_ref'] + 4 * c['tlb.ad_write']);
    expect(ledger.get('tlb.flush')).toBe(c['tlb.cr3_write']);
  });

  it('addCountersTo reports every statistic under its dotted name', () => {
    const tlb: TlbConfig = { ...DEFAULT_TLB, l1_4k: { entries: 4, ways: 4 } };
    const { s, mmu } = setup({ tlb });
    for (let p = 0n; p < 5n; p++) map(s, VA + p * 0x1000n, PFN + Number(p), USER_RW);
    for (let p = 0n; p < 5n; p++) tr(mmu, VA + p * 0x1000n, U | W);
    tr(mmu, VA, R); // STLB hit
    tr(mmu, VA, R); // L1 hit
    tr(mmu, VA + 0x10000n, R); // #PF
    tr(mmu, 0x0000800000000000n, R); // #GP
    invlpg(mmu, VA);
    mmu.flushAll();
    const c = new Counters();
    mmu.addCountersTo(c);
    expect(c.snapshot()).toEqual({
      'faults.hw_gp': 1,
      'faults.hw_pf': 1,
      'mmu.accesses': 9,
      'tlb.ad_writes': 5 + 4 * 2, // first write: 4 A + D; the next four: A and D of their PTE
      'tlb.cr3_writes': 1,
      'tlb.full_flushes': 1,
      'tlb.invlpg': 1,
      'tlb.l1_hits': 1,
      'tlb.misses': 6,
      'tlb.stlb_hits': 1,
      'tlb.psc_hits': 5, // every walk after the first starts from the cached PDE
      'tlb.walk_refs': 4 + 5 * 1,
      'tlb.walks': 6,
    });
  });

  it('a config error in the TLB geometry reaches the Mmu caller as a PteError', () => {
    const s = makeSpace();
    expect(() => new Mmu(s.mem, { tlb: { ...DEFAULT_TLB, l1_4k: { entries: 48, ways: 4 } } })).toThrow(PteError);
  });
});

describe('A/D through the Mmu', () => {
  it('the first read on fresh tables writes 4 A bits, a second read none, a later write 1 D bit', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, USER_RW);
    tr(mmu, VA, U | R);
    expect(mmu.adWrites).toBe(4);
    invlpg(mmu, VA);
    tr(mmu, VA, U | R);
    expect(mmu.walks).toBe(2);
    expect(mmu.adWrites).toBe(4);
    tr(mmu, VA, U | W);
    expect(mmu.adWrites).toBe(5);
  });

  it('a faulting access leaves A clear in every entry it read', () => {
    const { s, mmu } = setup();
    map(s, VA, PFN, P | RW);
    patchEntry(s, VA, 1, 0, 0);
    expect(tr(mmu, VA, U | R)).toBe(TRANSLATE_PF);
    for (let l = 4; l >= 1; l--) expect(readEntry(s, VA, l).lo & A).toBe(0);
  });
});
