import { PteError } from '@pte/core';
import { P, PhysMem, RW, SimpleFrameSource, US, type PageTrackListener } from '../src/index.js';
import { makeSpace, map, entryAt, thrown, DATA_PFN } from './helpers.js';

interface Seen {
  pfn: number;
  index: number;
  oldLo: number;
  oldHi: number;
  newLo: number;
  newHi: number;
}

function recorder(): PageTrackListener & { seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    onTrackedWrite(pfn, index, oldLo, oldHi, newLo, newHi) {
      seen.push({ pfn, index, oldLo, oldHi, newLo, newHi });
    },
  };
}

describe('PhysMem construction', () => {
  it.each([0, -1, 1.5, 2 ** 32 + 1, NaN])('refuses %p frames with a config PteError', (n) => {
    const e = thrown(() => new PhysMem(n));
    expect(e).toBeInstanceOf(PteError);
    expect((e as PteError).code).toBe('config');
  });

  it('starts with no tables and no tracking', () => {
    const mem = new PhysMem(16);
    expect(mem.frames).toBe(16);
    expect(mem.tableCount).toBe(0);
    expect(mem.trackedWrites).toBe(0);
    for (let f = 0; f < 16; f++) {
      expect(mem.isTable(f)).toBe(false);
      expect(mem.isTracked(f)).toBe(false);
    }
  });
});

describe('PhysMem tables', () => {
  it('makeTable gives a zeroed table; read and write entries as halves', () => {
    const mem = new PhysMem(16);
    mem.makeTable(3);
    expect(mem.isTable(3)).toBe(true);
    expect(mem.tableCount).toBe(1);
    expect(mem.write(3, 511, 0xfffff067, 0x80000001)).toBe(false);
    expect(mem.readLo(3, 511)).toBe(0xfffff067);
    expect(mem.readHi(3, 511)).toBe(0x80000001);
    expect(mem.readLo(3, 510)).toBe(0);
  });

  it('releaseTable then makeTable reuses the slot and zeroes it', () => {
    const mem = new PhysMem(16);
    mem.makeTable(5);
    mem.makeTable(6);
    const slot5 = mem.slotOf[5];
    for (let i = 0; i < 512; i++) mem.write(5, i, i + 1, i + 2);
    mem.releaseTable(5);
    expect(mem.isTable(5)).toBe(false);
    expect(mem.slotOf[5]).toBe(-1);
    expect(mem.tableCount).toBe(1);
    mem.makeTable(7);
    expect(mem.slotOf[7]).toBe(slot5);
    expect(mem.tableCount).toBe(2);
    for (let i = 0; i < 512; i++) {
      if (mem.readLo(7, i) !== 0 || mem.readHi(7, i) !== 0) throw new Error(`entry ${i} of a reused table is not zero`);
    }
    // Table 6 was not disturbed.
    expect(mem.readLo(6, 0)).toBe(0);
    mem.makeTable(5);
    expect(mem.readLo(5, 0)).toBe(0);
    expect(mem.tableCount).toBe(3);
  });

  it('grows its pool past 64 tables without losing entries', () => {
    const mem = new PhysMem(512);
    const perFrame = 512 * 4; // slotOf (Int32); trackCount is allocated only when a frame is tracked
    const pool64 = mem.hostBytes() - perFrame; // the initial pool holds 64 tables
    expect(pool64).toBeGreaterThanOrEqual(64 * 4096);
    for (let f = 0; f < 200; f++) {
      mem.makeTable(f);
      mem.write(f, f % 512, f * 3 + 1, f);
    }
    expect(mem.tableCount).toBe(200);
    for (let f = 0; f < 200; f++) {
      if (mem.readLo(f, f % 512) !== f * 3 + 1 || mem.readHi(f, f % 512) !== f)
        throw new Error(`table ${f} lost its entry`);
    }
    expect(mem.ent.length).toBe(256 * 512 * 2); // grown by max(64, a quarter): 64 -> 128 -> 192 -> 256 tables
    expect(mem.hostBytes() - perFrame).toBe(4 * pool64);
  });

  it('errors for non-table frames and bad frame numbers', () => {
    const mem = new PhysMem(16);
    mem.makeTable(2);
    expect(() => mem.makeTable(2)).toThrow(/already a page table/);
    expect(() => mem.makeTable(16)).toThrow(/outside physical memory/);
    expect(() => mem.makeTable(-1)).toThrow(/outside physical memory/);
    expect(() => mem.makeTable(1.5)).toThrow(/outside physical memory/);
    expect(() => mem.releaseTable(3)).toThrow(/not a page table/);
    expect(() => mem.readLo(3, 0)).toThrow(/not a page table/);
    expect(() => mem.readHi(3, 0)).toThrow(/not a page table/);
    expect(() => mem.write(3, 0, 1, 0)).toThrow(/not a page table/);
    expect(() => mem.entryIndex(99, 0)).toThrow(/not a page table/);
    expect(mem.tableCount).toBe(1);
  });

  it('releaseTable of a frame outside memory throws and leaves the count alone', () => {
    const mem = new PhysMem(16);
    mem.makeTable(2);
    expect(() => mem.releaseTable(16)).toThrow();
    expect(() => mem.releaseTable(-1)).toThrow();
    expect(mem.tableCount).toBe(1);
    // The free list was not polluted: the next table gets a real slot.
    mem.makeTable(3);
    expect(mem.slotOf[3]).toBeGreaterThanOrEqual(0);
  });

  it('an entry index outside 0..511 is refused instead of touching a neighbouring table', () => {
    const mem = new PhysMem(16);
    mem.makeTable(2);
    mem.makeTable(3);
    expect(() => mem.write(2, 512, 0xdead, 0)).toThrow(/entry 512/);
    expect(() => mem.readLo(3, -1)).toThrow(/entry -1/);
    expect(() => mem.readLo(2, 1.5)).toThrow(/entry 1.5/);
    expect(mem.readLo(3, 0)).toBe(0);
  });
});

describe('page-track (write-protected frames)', () => {
  it('the listener sees writes to tracked frames with old and new values; trackedWrites counts them', () => {
    const mem = new PhysMem(16);
    mem.makeTable(4);
    mem.makeTable(5);
    const rec = recorder();
    mem.setTrackListener(rec);
    mem.write(4, 9, 0x1067, 0x80000000);
    mem.trackWrites(4);
    expect(mem.isTracked(4)).toBe(true);
    expect(mem.write(4, 9, 0x2067, 0x1)).toBe(true);
    expect(mem.write(4, 10, 0xffffffff, 0xffffffff)).toBe(true);
    expect(mem.write(5, 9, 0x3067, 0)).toBe(false);
    expect(rec.seen).toEqual([
      { pfn: 4, index: 9, oldLo: 0x1067, oldHi: 0x80000000, newLo: 0x2067, newHi: 1 },
      { pfn: 4, index: 10, oldLo: 0, oldHi: 0, newLo: 0xffffffff, newHi: 0xffffffff },
    ]);
    expect(mem.trackedWrites).toBe(2);
    // The store landed before the listener ran.
    expect(mem.readLo(4, 9)).toBe(0x2067);
  });

  it('the listener runs after the store lands (it can read the new value)', () => {
    const mem = new PhysMem(16);
    mem.makeTable(4);
    mem.trackWrites(4);
    let readInside = -1;
    mem.setTrackListener({ onTrackedWrite: (pfn, index) => (readInside = mem.readLo(pfn, index)) });
    mem.write(4, 0, 0x5003, 0);
    expect(readInside).toBe(0x5003);
  });

  it('track counts nest; untracking below zero throws', () => {
    const mem = new PhysMem(16);
    mem.makeTable(4);
    const rec = recorder();
    mem.setTrackListener(rec);
    mem.trackWrites(4);
    mem.trackWrites(4);
    mem.untrackWrites(4);
    expect(mem.isTracked(4)).toBe(true);
    mem.write(4, 0, 1, 0);
    expect(rec.seen).toHaveLength(1);
    mem.untrackWrites(4);
    expect(mem.isTracked(4)).toBe(false);
    mem.write(4, 0, 2, 0);
    expect(rec.seen).toHaveLength(1);
    expect(mem.trackedWrites).toBe(1);
    expect(() => mem.untrackWrites(4)).toThrow(/not write-tracked/);
    expect(() => mem.trackWrites(16)).toThrow(/outside physical memory/);
    expect(() => mem.untrackWrites(16)).toThrow();
  });

  it('a tracked write is counted and reported as tracked even with no listener; removing the listener stops reports', () => {
    const mem = new PhysMem(16);
    mem.makeTable(4);
    mem.trackWrites(4);
    expect(mem.write(4, 0, 1, 0)).toBe(true);
    expect(mem.trackedWrites).toBe(1);
    const rec = recorder();
    mem.setTrackListener(rec);
    mem.write(4, 1, 1, 0);
    mem.setTrackListener(null);
    mem.write(4, 2, 1, 0);
    expect(rec.seen.map((s) => s.index)).toEqual([1]);
    expect(mem.trackedWrites).toBe(3);
  });

  it('PageTables.map through a tracked page-table frame reports the PTE store', () => {
    const s = makeSpace();
    map(s, 0x400000n, DATA_PFN, P | RW | US);
    const e = entryAt(s, 0x400000n, 1)!;
    const rec = recorder();
    s.mem.setTrackListener(rec);
    s.mem.trackWrites(e.table);
    map(s, 0x401000n, DATA_PFN + 1, P | US);
    expect(rec.seen).toEqual([
      { pfn: e.table, index: 1, oldLo: 0, oldHi: 0, newLo: (DATA_PFN + 1) * 4096 + (P | US), newHi: 0 },
    ]);
    // Mapping elsewhere (another PT) is not reported.
    map(s, 0x600000n, DATA_PFN + 2, P);
    expect(rec.seen).toHaveLength(1);
  });
});

describe('SimpleFrameSource', () => {
  it('hands out frames from `first` up, reuses freed ones last-in first-out, and runs out with a clear error', () => {
    const f = new SimpleFrameSource(4, 1);
    expect([f.allocFrame(), f.allocFrame(), f.allocFrame()]).toEqual([1, 2, 3]);
    expect(() => f.allocFrame()).toThrow(/out of frames \(4\)/);
    f.freeFrame(2);
    f.freeFrame(1);
    expect([f.allocFrame(), f.allocFrame()]).toEqual([1, 2]);
  });
});
