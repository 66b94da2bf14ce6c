import { Counters, CycleLedger, type CostTable } from '@pte/core';
import {
  A,
  D,
  Mmu,
  P,
  PageTables,
  PhysMem,
  RW,
  SimpleFrameSource,
  US,
  splitAddress,
  tableIndex,
  TRANSLATE_PF,
} from '@pte/arch-x86';
import { NativePvMmu, type PvopsCostKey } from '../src/index.js';

const COSTS: CostTable<PvopsCostKey> = { 'native.pte_store': 7, 'native.pte_rmw': 30, 'native.ipi_send': 200 };
const DATA = 0x100;
const TABLE = 0x80;

function setup(): { mem: PhysMem; ledger: CycleLedger; b: NativePvMmu } {
  const mem = new PhysMem(1024);
  mem.makeTable(TABLE);
  const ledger = new CycleLedger();
  const cpu = { root: -1, pcid: 0, invlpg(): void {}, writeCr3(): void {} };
  return { mem, ledger, b: new NativePvMmu(mem, cpu, ledger, COSTS) };
}

const entry = (mem: PhysMem, i: number): [number, number] => [mem.readLo(TABLE, i), mem.readHi(TABLE, i)];

describe('NativePvMmu: entry updates', () => {
  it('setPte stores the entry and charges one store', () => {
    const { mem, ledger, b } = setup();
    b.setPte(TABLE, 5, (DATA << 12) | P | RW, 0x80000000);
    expect(entry(mem, 5)).toEqual([((DATA << 12) | P | RW) >>> 0, 0x80000000]);
    expect(b.pteWrites).toBe(1);
    expect(ledger.get('guest.pte_write')).toBe(7);
  });

  it('setPtes writes nr entries, the frame advancing by one per entry', () => {
    const { mem, ledger, b } = setup();
    const flags = P | RW | US;
    b.setPtes(TABLE, 10, 4, ((DATA << 12) | flags) >>> 0, 0);
    for (let i = 0; i < 4; i++) expect(entry(mem, 10 + i)).toEqual([(((DATA + i) << 12) | flags) >>> 0, 0]);
    expect(entry(mem, 9)).toEqual([0, 0]);
    expect(entry(mem, 14)).toEqual([0, 0]);
    expect(b.pteWrites).toBe(4);
    expect(ledger.get('guest.pte_write')).toBe(4 * 7);
  });

  it('setPtes carries the frame into the high half at the 4 GiB boundary', () => {
    const { mem, b } = setup();
    // frame 0xfffff (the last below 4 GiB) then 0x100000 (bit 32 of the address: hi bit 0)
    b.setPtes(TABLE, 0, 2, (0xfffff000 | P) >>> 0, 0x80000000);
    expect(entry(mem, 0)).toEqual([(0xfffff000 | P) >>> 0, 0x80000000]);
    expect(entry(mem, 1)).toEqual([P, 0x80000001]);
  });

  it('ptepGetAndClear clears the entry and leaves the old value in oldLo/oldHi', () => {
    const { mem, ledger, b } = setup();
    mem.write(TABLE, 3, ((DATA << 12) | P | RW | A | D) >>> 0, 0x12);
    b.ptepGetAndClear(TABLE, 3);
    expect([b.oldLo, b.oldHi]).toEqual([((DATA << 12) | P | RW | A | D) >>> 0, 0x12]);
    expect(entry(mem, 3)).toEqual([0, 0]);
    expect(b.pteWrites).toBe(1);
    expect(ledger.get('guest.pte_write')).toBe(30);
  });

  it('ptepModifyProtStart/Commit: old value out, new value in, rmw + store charged', () => {
    const { mem, ledger, b } = setup();
    mem.write(TABLE, 7, ((DATA << 12) | P | RW) >>> 0, 0);
    b.ptepModifyProtStart(TABLE, 7);
    expect([b.oldLo, b.oldHi]).toEqual([((DATA << 12) | P | RW) >>> 0, 0]);
    expect(entry(mem, 7)).toEqual([0, 0]);
    b.ptepModifyProtCommit(TABLE, 7, ((DATA << 12) | P) >>> 0, 0);
    expect(entry(mem, 7)).toEqual([((DATA << 12) | P) >>> 0, 0]);
    expect(b.pteWrites).toBe(2);
    expect(ledger.get('guest.pte_write')).toBe(30 + 7);
  });

  it('ptepSetWrprotect clears RW only', () => {
    const { mem, ledger, b } = setup();
    mem.write(TABLE, 2, ((DATA << 12) | P | RW | US | A | D) >>> 0, 0x80000000);
    b.ptepSetWrprotect(TABLE, 2);
    expect(entry(mem, 2)).toEqual([((DATA << 12) | P | US | A | D) >>> 0, 0x80000000]);
    expect(ledger.get('guest.pte_write')).toBe(30);
  });

  it('ptepTestAndClearYoung clears A and reports it; a clear A writes nothing but still costs the rmw', () => {
    const { mem, ledger, b } = setup();
    mem.write(TABLE, 1, ((DATA << 12) | P | A | D) >>> 0, 0x5);
    expect(b.ptepTestAndClearYoung(TABLE, 1)).toBe(true);
    expect(entry(mem, 1)).toEqual([((DATA << 12) | P | D) >>> 0, 0x5]);
    expect(b.pteWrites).toBe(1);
    expect(b.ptepTestAndClearYoung(TABLE, 1)).toBe(false);
    expect(entry(mem, 1)).toEqual([((DATA << 12) | P | D) >>> 0, 0x5]);
    expect(b.pteWrites).toBe(1);
    expect(ledger.get('guest.pte_write')).toBe(2 * 30);
  });

  it('publishes pte.writes', () => {
    const { b } = setup();
    b.setPte(TABLE, 0, P, 0);
    b.setPtes(TABLE, 1, 3, P, 0);
    b.setUpper(2, TABLE, 8, P, 0);
    const c = new Counters();
    b.addCountersTo(c);
    expect(c.get('pte.writes')).toBe(5);
  });

  it('allocPt makes a zeroed table, releasePt returns the frame', () => {
    const { mem, b } = setup();
    b.allocPt(1, 0x90, 0x90);
    expect(mem.isTable(0x90)).toBe(true);
    expect(mem.readLo(0x90, 511)).toBe(0);
    b.releasePt(1, 0x90, 0x90);
    expect(mem.isTable(0x90)).toBe(false);
  });
});

describe('NativePvMmu: TLB flushes reach the arch Mmu', () => {
  const VA = 0x7f1234567000n;
  const a = splitAddress(VA);
  const b2 = splitAddress(VA + 0x1000n);

  function withMmu(): { mem: PhysMem; pt: PageTables; mmu: Mmu; b: NativePvMmu } {
    const mem = new PhysMem(1 << 16);
    const pt = new PageTables(mem, new SimpleFrameSource(0x8000, 1), 4);
    pt.map(a.hi, a.lo, DATA, P | RW | US);
    pt.map(b2.hi, b2.lo, DATA + 1, P | RW | US);
    const mmu = new Mmu(mem);
    const b = new NativePvMmu(mem, mmu, new CycleLedger(), COSTS);
    b.writeCr3(pt.root, 0);
    return { mem, pt, mmu, b };
  }

  it('flushTlbOne drops the page: a changed entry is seen, the other page still hits', () => {
    const { pt, mmu, b } = withMmu();
    expect(mmu.translate(a.hi, a.lo, 0)).toBe(DATA);
    expect(mmu.translate(b2.hi, b2.lo, 0)).toBe(DATA + 1);
    expect(mmu.walks).toBe(2);
    const table = pt.tableFor(a.hi, a.lo, 1, false);
    b.setPte(table, tableIndex(1, a.hi, a.lo), (((DATA + 7) << 12) | P | RW | US) >>> 0, 0);
    // Stale until flushed.
    expect(mmu.translate(a.hi, a.lo, 0)).toBe(DATA);
    b.flushTlbOne(a.hi, a.lo);
    expect(mmu.invlpgs).toBe(1);
    expect(mmu.translate(a.hi, a.lo, 0)).toBe(DATA + 7);
    expect(mmu.translate(b2.hi, b2.lo, 0)).toBe(DATA + 1);
    expect(mmu.walks).toBe(3);
  });

  it('flushTlbAll reloads CR3 and drops every page', () => {
    const { pt, mmu, b } = withMmu();
    mmu.translate(a.hi, a.lo, 0);
    mmu.translate(b2.hi, b2.lo, 0);
    const cr3Before = mmu.cr3Writes;
    b.ptepGetAndClear(pt.tableFor(a.hi, a.lo, 1, false), tableIndex(1, a.hi, a.lo));
    expect(mmu.translate(a.hi, a.lo, 0)).toBe(DATA);
    b.flushTlbAll();
    expect(mmu.cr3Writes).toBe(cr3Before + 1);
    expect(mmu.root).toBe(pt.root);
    expect(mmu.translate(a.hi, a.lo, 0)).toBe(TRANSLATE_PF);
    expect(mmu.translate(b2.hi, b2.lo, 0)).toBe(DATA + 1);
    expect(mmu.walks).toBe(4);
  });

  it('flushTlbAll before any CR3 load does nothing', () => {
    const mem = new PhysMem(64);
    const mmu = new Mmu(mem);
    const b = new NativePvMmu(mem, mmu, new CycleLedger(), COSTS);
    b.flushTlbAll();
    expect(mmu.cr3Writes).toBe(0);
  });
});
