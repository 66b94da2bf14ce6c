import fc from 'fast-check';
import { PteError } from '@pte/core';
import {
  DEFAULT_TLB,
  TLB_DIRTY,
  TLB_GLOBAL,
  TLB_RW,
  TLB_US,
  TLB_XD,
  Tlb,
  TlbArray,
  tlbEntryLevel,
  type TlbConfig,
} from '../src/index.js';
import { thrown } from './helpers.js';

const VALID = 1;
const PCID_SHIFT = 12;

/** Tags held by each way of a set, '-' for an invalid way (reads the arrays, so LRU state is untouched). */
function ways(arr: TlbArray, set = 0): Array<number | '-'> {
  const out: Array<number | '-'> = [];
  for (let w = 0; w < arr.ways; w++) {
    const i = set * arr.ways + w;
    out.push((arr.meta[i]! & VALID) !== 0 ? arr.tagLo[i]! : '-');
  }
  return out;
}

describe('TlbArray geometry', () => {
  it.each([
    [12, 4],
    [6, 4],
    [0, 1],
    [4, 0],
    [-4, -1],
    [4.5, 1],
    [15, 5],
    [34, 17],
  ])('%i entries / %i ways is a config PteError naming the array', (entries, ways) => {
    const e = thrown(() => new TlbArray('l1_4k', { entries, ways }));
    expect(e).toBeInstanceOf(PteError);
    expect((e as PteError).code).toBe('config');
    expect((e as PteError).message).toContain('TLB l1_4k');
  });

  it.each([
    [64, 4, 16],
    [1536, 12, 128],
    [4, 4, 1],
    [16, 16, 1],
    [8, 1, 8],
  ])('%i entries / %i ways gives %i sets', (entries, ways, sets) => {
    const a = new TlbArray('t', { entries, ways });
    expect([a.sets, a.ways, a.countValid()]).toEqual([sets, ways, 0]);
  });

  it('a bad geometry in a Tlb config is reported for that array', () => {
    const cfg: TlbConfig = { ...DEFAULT_TLB, stlb: { entries: 1000, ways: 8 } };
    const e = thrown(() => new Tlb(cfg));
    expect((e as PteError).code).toBe('config');
    expect((e as PteError).message).toContain('TLB stlb');
  });
});

describe('TlbArray replacement (bit-PLRU, exact order)', () => {
  const ins = (a: TlbArray, tag: number, pcid = 0, flags = 0, level = 1) =>
    a.insert(tag, level << 28, pcid, level, 0x1000 + tag, flags, 0);
  const find = (a: TlbArray, tag: number, pcid = 0, level = 1) => a.find(tag, level << 28, pcid);

  it('fills invalid ways lowest first, then evicts the lowest way not recently used', () => {
    const a = new TlbArray('t', { entries: 4, ways: 4 });
    ins(a, 10);
    ins(a, 11);
    ins(a, 12);
    expect(ways(a)).toEqual([10, 11, 12, '-']);
    ins(a, 13); // every MRU bit set: reset to way 3 only
    expect(ways(a)).toEqual([10, 11, 12, 13]);
    expect(find(a, 10)).toBe(0); // MRU = ways 0, 3
    ins(a, 14); // lowest clear: way 1
    expect(ways(a)).toEqual([10, 14, 12, 13]);
    ins(a, 15); // way 2; MRU full again -> only way 2
    expect(ways(a)).toEqual([10, 14, 15, 13]);
    ins(a, 16); // lowest clear: way 0
    expect(ways(a)).toEqual([16, 14, 15, 13]);
    ins(a, 17); // MRU = 0, 2 -> way 1
    expect(ways(a)).toEqual([16, 17, 15, 13]);
    expect(find(a, 13)).toBe(3); // MRU full -> only way 3
    ins(a, 18);
    expect(ways(a)).toEqual([18, 17, 15, 13]);
    expect(a.countValid()).toBe(4);
  });

  it('an invalidated way is refilled before any valid one', () => {
    const a = new TlbArray('t', { entries: 4, ways: 4 });
    for (const t of [1, 2, 3, 4]) ins(a, t);
    a.invalidateSlot(2);
    expect(a.countValid()).toBe(3);
    ins(a, 5);
    expect(ways(a)).toEqual([1, 2, 5, 4]);
    a.invalidateSlot(2);
    a.invalidateSlot(2); // twice is harmless
    expect(a.countValid()).toBe(3);
  });

  it('the set is chosen by the low tag bits; other sets are untouched', () => {
    const a = new TlbArray('t', { entries: 4, ways: 2 });
    for (const t of [0, 2, 1, 4]) ins(a, t);
    expect(ways(a, 0)).toEqual([4, 2]);
    expect(ways(a, 1)).toEqual([1, '-']);
  });

  it('direct-mapped (1 way): a new tag replaces the old one in its own set', () => {
    const a = new TlbArray('t', { entries: 4, ways: 1 });
    ins(a, 0);
    ins(a, 1);
    ins(a, 4);
    expect([ways(a, 0), ways(a, 1)]).toEqual([[4], [1]]);
    ins(a, 5);
    expect([ways(a, 0), ways(a, 1)]).toEqual([[4], [5]]);
    expect(find(a, 0)).toBe(-1);
    expect(find(a, 4)).toBe(0);
    expect(find(a, 5)).toBe(1);
    expect(a.countValid()).toBe(2);
  });

  it('find matches tag, tagHi (the level) and PCID, or a global entry from any PCID', () => {
    const a = new TlbArray('t', { entries: 8, ways: 8 });
    ins(a, 7, 1);
    ins(a, 7, 2);
    ins(a, 9, 1, TLB_GLOBAL);
    expect(a.pfn[find(a, 7, 1)]).toBe(0x1007);
    expect(find(a, 7, 2)).toBe(1);
    expect(find(a, 7, 3)).toBe(-1);
    expect(find(a, 7, 1, 2)).toBe(-1);
    expect(find(a, 9, 5)).toBe(2);
  });

  it('invalidateTag drops the PCID (or every PCID) and globals only when asked; flush likewise', () => {
    const a = new TlbArray('t', { entries: 8, ways: 8 });
    ins(a, 7, 1);
    ins(a, 7, 2);
    ins(a, 7, 3, TLB_GLOBAL);
    a.invalidateTag(7, 1 << 28, 1, false);
    expect(ways(a)).toEqual(['-', 7, 7, '-', '-', '-', '-', '-']);
    a.invalidateTag(7, 1 << 28, -1, false);
    expect(ways(a)).toEqual(['-', '-', 7, '-', '-', '-', '-', '-']);
    a.invalidateTag(7, 1 << 28, 1, true);
    expect(a.countValid()).toBe(0);
    ins(a, 1, 1);
    ins(a, 2, 2);
    ins(a, 3, 2, TLB_GLOBAL);
    a.flush(2, false);
    expect(ways(a)).toEqual([1, '-', 3, '-', '-', '-', '-', '-']);
    a.flush(-1, false);
    expect(ways(a)).toEqual(['-', '-', 3, '-', '-', '-', '-', '-']);
    a.flush(-1, true);
    expect(a.countValid()).toBe(0);
  });

  it('stores the flags, level, pkey and PCID in the metadata', () => {
    const a = new TlbArray('t', { entries: 4, ways: 4 });
    a.insert(3, 2 << 28, 0xabc, 2, 0x200, TLB_RW | TLB_US | TLB_XD | TLB_DIRTY | TLB_GLOBAL | 0x10000, 9);
    const m = a.meta[0]!;
    expect(m & (TLB_RW | TLB_US | TLB_XD | TLB_DIRTY | TLB_GLOBAL)).toBe(
      TLB_RW | TLB_US | TLB_XD | TLB_DIRTY | TLB_GLOBAL,
    );
    expect(tlbEntryLevel(m)).toBe(2);
    expect((m >>> 8) & 0xf).toBe(9);
    expect(m >>> PCID_SHIFT).toBe(0xabc);
    expect(a.pfn[0]).toBe(0x200);
  });

  it('property: matches a reference model of the documented bit-PLRU policy', () => {
    type Ref = { tag: number; level: number; pcid: number; global: boolean } | null;
    const op = fc.oneof(
      fc.record({
        k: fc.constant('access' as const),
        tag: fc.integer({ min: 0, max: 11 }),
        level: fc.integer({ min: 1, max: 3 }),
        pcid: fc.integer({ min: 0, max: 2 }),
        global: fc.boolean(),
      }),
      fc.record({
        k: fc.constant('invtag' as const),
        tag: fc.integer({ min: 0, max: 11 }),
        level: fc.integer({ min: 1, max: 3 }),
        pcid: fc.integer({ min: -1, max: 2 }),
        global: fc.boolean(),
      }),
      fc.record({ k: fc.constant('flush' as const), pcid: fc.integer({ min: -1, max: 2 }), global: fc.boolean() }),
    );
    const geo = fc.constantFrom(
      { entries: 4, ways: 4 },
      { entries: 8, ways: 2 },
      { entries: 4, ways: 1 },
      { entries: 12, ways: 3 },
      { entries: 6, ways: 3 },
    );
    fc.assert(
      fc.property(geo, fc.array(op, { maxLength: 80 }), (g, ops) => {
        const a = new TlbArray('t', g);
        const sets = g.entries / g.ways;
        const full = (1 << g.ways) - 1;
        const ref: Ref[] = new Array(g.entries).fill(null);
        const mru = new Array(sets).fill(0);
        const touch = (s: number, w: number) => {
          let m = mru[s] | (1 << w);
          if (m === full) m = 1 << w;
          mru[s] = m;
        };
        const drop = (i: number) => {
          ref[i] = null;
          const s = Math.floor(i / g.ways);
          mru[s] &= ~(1 << (i % g.ways));
        };
        for (const o of ops) {
          if (o.k === 'access') {
            const s = o.tag % sets;
            let hit = -1;
            for (let w = 0; w < g.ways; w++) {
              const e = ref[s * g.ways + w];
              if (e && e.tag === o.tag && e.level === o.level && (e.pcid === o.pcid || e.global)) {
                hit = w;
                break;
              }
            }
            const got = a.find(o.tag, o.level << 28, o.pcid);
            if (hit >= 0) {
              expect(got).toBe(s * g.ways + hit);
              touch(s, hit);
              continue;
            }
            expect(got).toBe(-1);
            let w = -1;
            for (let x = 0; x < g.ways && w < 0; x++) if (ref[s * g.ways + x] === null) w = x;
            for (let x = 0; x < g.ways && w < 0; x++) if ((mru[s] & (1 << x)) === 0) w = x;
            if (w < 0) w = 0; // one way: its MRU bit is always set, it is the only victim
            ref[s * g.ways + w] = { tag: o.tag, level: o.level, pcid: o.pcid, global: o.global };
            touch(s, w);
            a.insert(o.tag, o.level << 28, o.pcid, o.level, o.tag, o.global ? TLB_GLOBAL : 0, 0);
          } else if (o.k === 'invtag') {
            const s = o.tag % sets;
            for (let w = 0; w < g.ways; w++) {
              const e = ref[s * g.ways + w];
              if (!e || e.tag !== o.tag || e.level !== o.level) continue;
              if (e.global ? o.global : o.pcid < 0 || e.pcid === o.pcid) drop(s * g.ways + w);
            }
            a.invalidateTag(o.tag, o.level << 28, o.pcid, o.global);
          } else {
            for (let i = 0; i < g.entries; i++) {
              const e = ref[i];
              if (e && (e.global ? o.global : o.pcid < 0 || e.pcid === o.pcid)) drop(i);
            }
            a.flush(o.pcid, o.global);
          }
          for (let i = 0; i < g.entries; i++) {
            const e = ref[i];
            const m = a.meta[i]!;
            if (e === null) {
              expect(m & VALID).toBe(0);
            } else {
              expect(m & VALID).toBe(VALID);
              expect([a.tagLo[i], a.tagHi[i], m >>> PCID_SHIFT, (m & TLB_GLOBAL) !== 0]).toEqual([
                e.tag,
                e.level << 28,
                e.pcid,
                e.global,
              ]);
            }
          }
          const n = ref.filter((e) => e !== null).length;
          expect(a.countValid()).toBe(n);
          for (let l = 1; l <= 3; l++) expect(a.validByLevel[l]).toBe(ref.filter((e) => e?.level === l).length);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('Tlb hierarchy', () => {
  const TINY: TlbConfig = {
    l1_4k: { entries: 4, ways: 4 },
    l1_2m: { entries: 2, ways: 2 },
    l1_1g: { entries: 1, ways: 1 },
    stlb: { entries: 16, ways: 4 },
    stlbHolds1G: false,
  };

  it('a 4K fill hits in L1 with the cached flags, level and frame', () => {
    const t = new Tlb();
    t.fill(0x7f12, 0x34567000, 1, 0x555, TLB_RW | TLB_US | TLB_DIRTY, 4);
    expect(t.lookup(0x7f12, 0x34567abc)).toBe(true);
    expect([t.hitPfn, t.hitLevel, tlbEntryLevel(t.hitMeta), t.l1Hits, t.stlbHits, t.misses]).toEqual([
      0x555, 1, 1, 1, 0, 0,
    ]);
    expect(t.hitMeta & (TLB_RW | TLB_US | TLB_DIRTY | TLB_XD)).toBe(TLB_RW | TLB_US | TLB_DIRTY);
    expect((t.hitMeta >>> 8) & 0xf).toBe(4);
    expect(t.lookup(0x7f12, 0x34568000)).toBe(false);
    expect(t.lookup(0x7f13, 0x34567000)).toBe(false);
    expect(t.misses).toBe(2);
    expect(t.countValid()).toBe(2); // L1 4K + STLB
  });

  it('a 2M fill covers its 512 frames; hitPfn adds the offset', () => {
    const t = new Tlb();
    t.fill(0, 0x40200000, 2, 0x10000, TLB_RW, 0);
    expect(t.lookup(0, 0x40200000)).toBe(true);
    expect(t.hitPfn).toBe(0x10000);
    expect(t.lookup(0, 0x403ff000)).toBe(true);
    expect([t.hitPfn, t.hitLevel]).toEqual([0x101ff, 2]);
    expect(t.lookup(0, 0x40400000)).toBe(false);
    expect(t.lookup(0, 0x401ff000)).toBe(false);
  });

  it('a 1G fill lives only in the 1G L1 unless stlbHolds1G', () => {
    const t = new Tlb();
    t.fill(0x7f, 0x40000000, 3, 0x40000, TLB_RW, 0);
    expect(t.stlb.countValid()).toBe(0);
    expect(t.lookup(0x7f, 0x7ffff000)).toBe(true);
    expect([t.hitPfn, t.hitLevel]).toEqual([0x40000 + 0x3ffff, 3]);
    const t2 = new Tlb({ ...DEFAULT_TLB, stlbHolds1G: true });
    t2.fill(0x7f, 0x40000000, 3, 0x40000, TLB_RW, 0);
    expect(t2.stlb.countValid()).toBe(1);
  });

  it('beyond L1 capacity the STLB hits and refills L1; then L1 hits again', () => {
    const t = new Tlb(TINY);
    for (let p = 0; p < 5; p++) t.fill(0, p << 12, 1, 100 + p, TLB_RW, 0);
    expect(t.l1[0].countValid()).toBe(4);
    expect(t.stlb.countValid()).toBe(5);
    // PLRU: after 4 fills only way 3 is MRU; the fifth went to way 0 (page 0's): page 0 is out of L1.
    expect(t.lookup(0, 0)).toBe(true);
    expect([t.stlbHits, t.l1Hits, t.hitPfn]).toEqual([1, 0, 100]);
    expect(t.lookup(0, 0)).toBe(true);
    expect([t.stlbHits, t.l1Hits]).toEqual([1, 1]);
  });

  it('a 1G entry with stlbHolds1G refills the 1G L1 from the STLB', () => {
    const t = new Tlb({ ...TINY, stlbHolds1G: true });
    t.fill(0, 0x40000000, 3, 0x40000, 0, 0);
    t.fill(0, 0x80000000, 3, 0x80000, 0, 0); // evicts the first from the 1-entry L1
    expect(t.lookup(0, 0x40001000)).toBe(true);
    expect([t.stlbHits, t.hitPfn]).toEqual([1, 0x40001]);
  });

  it('INVLPG drops the page for the current PCID and global entries for it, not other pages or PCIDs', () => {
    const t = new Tlb();
    t.pcid = 1;
    t.fill(0, 0x1000, 1, 1, 0, 0);
    t.fill(0, 0x2000, 1, 2, 0, 0);
    t.pcid = 2;
    t.fill(0, 0x1000, 1, 3, 0, 0);
    t.fill(0, 0x3000, 1, 4, TLB_GLOBAL, 0);
    t.invlpg(0, 0x1000);
    t.invlpg(0, 0x3000);
    expect(t.lookup(0, 0x1000)).toBe(false);
    expect(t.lookup(0, 0x3000)).toBe(false);
    t.pcid = 1;
    expect(t.lookup(0, 0x1000)).toBe(true);
    expect(t.hitPfn).toBe(1);
    expect(t.lookup(0, 0x2000)).toBe(true);
  });

  it('INVLPG of an address inside a 2M page drops the 2M entry', () => {
    const t = new Tlb();
    t.fill(0, 0x40200000, 2, 0x10000, 0, 0);
    t.invlpg(0, 0x40345000);
    expect(t.lookup(0, 0x40200000)).toBe(false);
    expect(t.countValid()).toBe(0);
  });

  it('global entries are found from any PCID and survive a non-global flush', () => {
    const t = new Tlb();
    t.pcid = 5;
    t.fill(0xffff, 0x80001000, 1, 9, TLB_GLOBAL, 0);
    t.fill(0xffff, 0x80002000, 1, 10, 0, 0);
    t.pcid = 6;
    expect(t.lookup(0xffff, 0x80001000)).toBe(true);
    expect(t.lookup(0xffff, 0x80002000)).toBe(false);
    t.flush(-1, false);
    expect(t.lookup(0xffff, 0x80001000)).toBe(true);
    t.flush(-1, true);
    expect(t.lookup(0xffff, 0x80001000)).toBe(false);
    expect(t.countValid()).toBe(0);
  });

  it('dropLastHit removes the hit entry from L1 and STLB', () => {
    const t = new Tlb();
    t.fill(0, 0x5000, 1, 5, 0, 0);
    t.fill(0, 0x6000, 1, 6, 0, 0);
    expect(t.lookup(0, 0x5000)).toBe(true);
    t.dropLastHit(0, 0x5000);
    expect(t.lookup(0, 0x5000)).toBe(false);
    expect(t.lookup(0, 0x6000)).toBe(true);
    expect(t.countValid()).toBe(2);
  });

  it('tags use the whole virtual page number: addresses 2^44 apart do not alias', () => {
    const t = new Tlb();
    t.fill(0x0000, 0x1000, 1, 1, 0, 0);
    expect(t.lookup(0x1000, 0x1000)).toBe(false); // bit 44 differs
    expect(t.lookup(0xffff1000 >>> 0, 0x1000)).toBe(false);
    t.fill(0x0000, 0x40000000, 3, 0x40000, 0, 0);
    expect(t.lookup(0x40000000, 0x40000000)).toBe(false); // bit 62 differs, same 1G index otherwise
  });
});
