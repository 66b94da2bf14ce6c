import fc from 'fast-check';
import { PteError } from '@pte/core';
import {
  A,
  D,
  DEFAULT_FEATURES,
  FLAG_NAMES,
  G,
  LINUX_PAGE_TABLE,
  P,
  PAT_4K,
  PAT_LARGE,
  PCD,
  PKEY_MASK_HI,
  PKEY_SHIFT_HI,
  PS,
  PWT,
  ReservedMasks,
  RW,
  SW1,
  SW2,
  SW3,
  SW_HIGH_MASK_HI,
  SW_HIGH_SHIFT_HI,
  SW_LOW_MASK,
  SW_LOW_SHIFT,
  US,
  XD_HI,
  decodeEntry,
  encodeEntry,
  entryPfn,
  formatEntryHex,
  isLeaf,
  joinEntry,
  parseEntryHex,
  splitEntry,
  type FlagName,
  type PagingFeatures,
} from '../src/index.js';
import { thrown } from './helpers.js';

/** Linux arch/x86/include/asm/pgtable_types.h bit numbers. */
const LINUX = {
  _PAGE_BIT_PRESENT: 0,
  _PAGE_BIT_RW: 1,
  _PAGE_BIT_USER: 2,
  _PAGE_BIT_PWT: 3,
  _PAGE_BIT_PCD: 4,
  _PAGE_BIT_ACCESSED: 5,
  _PAGE_BIT_DIRTY: 6,
  _PAGE_BIT_PSE: 7,
  _PAGE_BIT_PAT: 7,
  _PAGE_BIT_GLOBAL: 8,
  _PAGE_BIT_SOFTW1: 9,
  _PAGE_BIT_SOFTW2: 10,
  _PAGE_BIT_SOFTW3: 11,
  _PAGE_BIT_PAT_LARGE: 12,
  _PAGE_BIT_SOFTW4: 57,
  _PAGE_BIT_SOFTW5: 58,
  _PAGE_BIT_PKEY_BIT0: 59,
  _PAGE_BIT_PKEY_BIT1: 60,
  _PAGE_BIT_PKEY_BIT2: 61,
  _PAGE_BIT_PKEY_BIT3: 62,
  _PAGE_BIT_NX: 63,
} as const;

const bit = (n: number): bigint => 1n << BigInt(n);
const enc = (f: Parameters<typeof encodeEntry>[0]): bigint => {
  const { lo, hi } = encodeEntry(f);
  return joinEntry(lo, hi);
};
const FEAT = (o: Partial<PagingFeatures> = {}): PagingFeatures => ({ ...DEFAULT_FEATURES, ...o });
const dec = (v: bigint, level = 1, features: PagingFeatures = DEFAULT_FEATURES) => {
  const { lo, hi } = splitEntry(v);
  return decodeEntry(lo, hi, level, features);
};

describe('bit constants agree with Linux pgtable_types.h', () => {
  it.each([
    ['P', P, LINUX._PAGE_BIT_PRESENT],
    ['RW', RW, LINUX._PAGE_BIT_RW],
    ['US', US, LINUX._PAGE_BIT_USER],
    ['PWT', PWT, LINUX._PAGE_BIT_PWT],
    ['PCD', PCD, LINUX._PAGE_BIT_PCD],
    ['A', A, LINUX._PAGE_BIT_ACCESSED],
    ['D', D, LINUX._PAGE_BIT_DIRTY],
    ['PS', PS, LINUX._PAGE_BIT_PSE],
    ['PAT_4K', PAT_4K, LINUX._PAGE_BIT_PAT],
    ['G', G, LINUX._PAGE_BIT_GLOBAL],
    ['SW1', SW1, LINUX._PAGE_BIT_SOFTW1],
    ['SW2', SW2, LINUX._PAGE_BIT_SOFTW2],
    ['SW3', SW3, LINUX._PAGE_BIT_SOFTW3],
    ['PAT_LARGE', PAT_LARGE, LINUX._PAGE_BIT_PAT_LARGE],
  ])('%s is bit %i of lo', (_name, value, n) => {
    expect(value).toBe(2 ** (n as number));
  });

  it('high-half fields sit at bits 52..58 (SOFTW4 57, SOFTW5 58), 59..62 (PKEY) and 63 (NX)', () => {
    expect(XD_HI >>> 0).toBe(2 ** (LINUX._PAGE_BIT_NX - 32));
    expect(PKEY_MASK_HI >>> 0).toBe(
      [LINUX._PAGE_BIT_PKEY_BIT0, LINUX._PAGE_BIT_PKEY_BIT1, LINUX._PAGE_BIT_PKEY_BIT2, LINUX._PAGE_BIT_PKEY_BIT3]
        .map((b) => 2 ** (b - 32))
        .reduce((x, y) => x + y),
    );
    expect(PKEY_SHIFT_HI).toBe(LINUX._PAGE_BIT_PKEY_BIT0 - 32);
    expect(SW_HIGH_SHIFT_HI).toBe(52 - 32);
    expect(SW_HIGH_MASK_HI >>> 0).toBe(0x7f * 2 ** 20);
    expect(SW_LOW_SHIFT).toBe(LINUX._PAGE_BIT_SOFTW1);
    expect(SW_LOW_MASK).toBe(SW1 | SW2 | SW3);
    // _PAGE_TABLE = PRESENT|RW|USER|ACCESSED|DIRTY
    expect(LINUX_PAGE_TABLE).toBe(0x67);
  });
});

describe('encodeEntry test vectors (Linux bit numbers)', () => {
  it.each([
    ['P', 1, LINUX._PAGE_BIT_PRESENT],
    ['RW', 1, LINUX._PAGE_BIT_RW],
    ['US', 1, LINUX._PAGE_BIT_USER],
    ['PWT', 1, LINUX._PAGE_BIT_PWT],
    ['PCD', 1, LINUX._PAGE_BIT_PCD],
    ['A', 1, LINUX._PAGE_BIT_ACCESSED],
    ['D', 1, LINUX._PAGE_BIT_DIRTY],
    ['G', 1, LINUX._PAGE_BIT_GLOBAL],
    ['XD', 1, LINUX._PAGE_BIT_NX],
    ['PAT', 1, LINUX._PAGE_BIT_PAT],
    ['PS', 2, LINUX._PAGE_BIT_PSE],
    ['PS', 3, LINUX._PAGE_BIT_PSE],
  ] as Array<[FlagName, number, number]>)('flag %s at level %i is bit %i', (flag, level, n) => {
    expect(enc({ level, pfn: 0, flags: [flag] })).toBe(bit(n));
  });

  it('PAT of a 2M or 1G leaf is bit 12 (_PAGE_BIT_PAT_LARGE), not bit 7', () => {
    expect(enc({ level: 2, pfn: 0, flags: ['PS', 'PAT'] })).toBe(
      bit(LINUX._PAGE_BIT_PSE) | bit(LINUX._PAGE_BIT_PAT_LARGE),
    );
    expect(enc({ level: 3, pfn: 0, flags: ['PS', 'PAT'] })).toBe(
      bit(LINUX._PAGE_BIT_PSE) | bit(LINUX._PAGE_BIT_PAT_LARGE),
    );
  });

  it('software and protection-key fields land on SOFTW1..3, bits 52..58 (SOFTW4/5) and PKEY_BIT0..3', () => {
    expect(enc({ pfn: 0, softwareLow: 1 })).toBe(bit(LINUX._PAGE_BIT_SOFTW1));
    expect(enc({ pfn: 0, softwareLow: 2 })).toBe(bit(LINUX._PAGE_BIT_SOFTW2));
    expect(enc({ pfn: 0, softwareLow: 4 })).toBe(bit(LINUX._PAGE_BIT_SOFTW3));
    expect(enc({ pfn: 0, softwareHigh: 1 })).toBe(bit(52));
    expect(enc({ pfn: 0, softwareHigh: 1 << 5 })).toBe(bit(LINUX._PAGE_BIT_SOFTW4));
    expect(enc({ pfn: 0, softwareHigh: 1 << 6 })).toBe(bit(LINUX._PAGE_BIT_SOFTW5));
    expect(enc({ pfn: 0, pkey: 1 })).toBe(bit(LINUX._PAGE_BIT_PKEY_BIT0));
    expect(enc({ pfn: 0, pkey: 2 })).toBe(bit(LINUX._PAGE_BIT_PKEY_BIT1));
    expect(enc({ pfn: 0, pkey: 4 })).toBe(bit(LINUX._PAGE_BIT_PKEY_BIT2));
    expect(enc({ pfn: 0, pkey: 8 })).toBe(bit(LINUX._PAGE_BIT_PKEY_BIT3));
  });

  it('pfn occupies bits 12..51', () => {
    expect(enc({ pfn: 1 })).toBe(0x1000n);
    expect(enc({ pfn: 0x12345 })).toBe(0x12345000n);
    expect(enc({ pfn: 2 ** 40 - 1 })).toBe(0x000ffffffffff000n);
    expect(enc({ pfn: 0x100000 })).toBe(bit(32));
  });

  it('the issue example: P,RW,US,A,D,XD with pfn 0x12345 is 0x8000000012345067', () => {
    const { lo, hi } = encodeEntry({ pfn: 0x12345, flags: ['P', 'RW', 'US', 'A', 'D', 'XD'] });
    expect(formatEntryHex(lo, hi)).toBe('0x8000000012345067');
  });

  it('Linux PAGE_KERNEL-like P|RW|A|D|G|NX is 0x8000000000000163', () => {
    expect(enc({ pfn: 0, flags: ['P', 'RW', 'A', 'D', 'G', 'XD'] })).toBe(0x8000000000000163n);
  });
});

describe('decodeEntry test vectors (SDM Vol. 3A tables 4-15..4-20)', () => {
  it('0x8000000012345067: present, RW, US, A, D, XD, pfn 0x12345', () => {
    const d = dec(0x8000000012345067n);
    expect(d).toEqual({
      level: 1,
      levelName: 'PTE',
      present: true,
      leaf: true,
      pageSize: 4096,
      rw: true,
      us: true,
      pwt: false,
      pcd: false,
      accessed: true,
      dirty: true,
      ps: false,
      pat: false,
      global: false,
      softwareLow: 0,
      softwareHigh: 0,
      pkey: 0,
      xd: true,
      pfn: 0x12345,
      reserved: [],
    });
  });

  it('0x8000000000000163 (PAGE_KERNEL-like) is P|RW|A|D|G|NX, not US', () => {
    const d = dec(0x8000000000000163n);
    expect([d.present, d.rw, d.us, d.accessed, d.dirty, d.global, d.xd]).toEqual([
      true,
      true,
      false,
      true,
      true,
      true,
      true,
    ]);
    expect(d.pfn).toBe(0);
  });

  it('a 2M PDE leaf: PS, PAT at bit 12 is not part of the pfn', () => {
    const d = dec(0x0000000012601083n | bit(12), 2); // pfn 0x12600 (2M aligned), PS, P, RW... 0x83 = P|RW|PS
    expect(d.leaf).toBe(true);
    expect(d.ps).toBe(true);
    expect(d.pat).toBe(true);
    expect(d.pfn).toBe(0x12600);
    expect(d.pageSize).toBe(2 * 1024 * 1024);
    expect(d.reserved).toEqual([]);
  });

  it('a 1G PDPTE leaf has pageSize 1 GiB and a 1G-aligned pfn', () => {
    const d = dec(0x00000000c00000e3n, 3); // P|RW|A|D|PS, address 0xc0000000
    expect(d.leaf).toBe(true);
    expect(d.pfn).toBe(0xc0000);
    expect(d.pageSize).toBe(2 ** 30);
    expect(d.dirty).toBe(true);
  });

  it('bit 7 of a PTE is PAT, of a non-leaf PDE is PS=0 and of a PML4E is reserved', () => {
    expect(dec(0x81n, 1)).toMatchObject({ pat: true, ps: false, leaf: true, reserved: [] });
    expect(dec(0x1n, 2)).toMatchObject({ pat: false, ps: false, leaf: false, pageSize: 2 ** 21 });
    expect(dec(0x81n, 4)).toMatchObject({ pat: false, leaf: false, reserved: ['PS'] });
    expect(dec(0x81n, 5)).toMatchObject({ levelName: 'PML5E', leaf: false, reserved: ['PS'], pageSize: 2 ** 48 });
  });

  it('level names', () => {
    expect([1, 2, 3, 4, 5].map((l) => dec(0n, l).levelName)).toEqual(['PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E']);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests: encode/decode round-trip at every level, against an independent BigInt model.

interface Fields {
  level: number;
  ps: boolean;
  flags: FlagName[];
  softwareLow: number;
  softwareHigh: number;
  pkey: number;
  pfn: number;
}

const PLAIN_FLAGS: FlagName[] = ['P', 'RW', 'US', 'PWT', 'PCD', 'A', 'D', 'G', 'XD'];

const fieldsArb: fc.Arbitrary<Fields> = fc
  .record({
    level: fc.integer({ min: 1, max: 5 }),
    psWanted: fc.boolean(),
    patWanted: fc.boolean(),
    flags: fc.subarray(PLAIN_FLAGS),
    softwareLow: fc.integer({ min: 0, max: 7 }),
    softwareHigh: fc.integer({ min: 0, max: 127 }),
    pkey: fc.integer({ min: 0, max: 15 }),
    pfnRaw: fc.integer({ min: 0, max: 2 ** 40 - 1 }),
  })
  .map((r) => {
    const ps = r.psWanted && (r.level === 2 || r.level === 3);
    const leaf = r.level === 1 || ps;
    const align = ps ? (r.level === 2 ? 512 : 512 * 512) : 1;
    const flags: FlagName[] = [...r.flags];
    if (ps) flags.push('PS');
    if (leaf && r.patWanted) flags.push('PAT');
    return {
      level: r.level,
      ps,
      flags,
      softwareLow: r.softwareLow,
      softwareHigh: r.softwareHigh,
      pkey: r.pkey,
      pfn: r.pfnRaw - (r.pfnRaw % align),
    };
  });

/** Independent encoder: the 64-bit value from Linux bit numbers. */
function referenceEncode(f: Fields): bigint {
  const bitOf: Record<string, number> = { P: 0, RW: 1, US: 2, PWT: 3, PCD: 4, A: 5, D: 6, PS: 7, G: 8, XD: 63 };
  let v = BigInt(f.pfn) << 12n;
  for (const flag of f.flags) {
    if (flag === 'PAT') v |= bit(f.ps ? LINUX._PAGE_BIT_PAT_LARGE : LINUX._PAGE_BIT_PAT);
    else v |= bit(bitOf[flag]!);
  }
  v |= BigInt(f.softwareLow) << 9n;
  v |= BigInt(f.softwareHigh) << 52n;
  v |= BigInt(f.pkey) << 59n;
  return v;
}

describe('codec properties', () => {
  it('encodeEntry equals the reference encoding at every level', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const { lo, hi } = encodeEntry({
          level: f.level,
          pfn: f.pfn,
          flags: f.flags,
          softwareLow: f.softwareLow,
          softwareHigh: f.softwareHigh,
          pkey: f.pkey,
        });
        expect(lo).toBe(lo >>> 0);
        expect(hi).toBe(hi >>> 0);
        expect(joinEntry(lo, hi)).toBe(referenceEncode(f));
      }),
      { numRuns: 2000 },
    );
  });

  it('decodeEntry(encodeEntry(x)) gives back every field at every level', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const { lo, hi } = encodeEntry({
          level: f.level,
          pfn: f.pfn,
          flags: f.flags,
          softwareLow: f.softwareLow,
          softwareHigh: f.softwareHigh,
          pkey: f.pkey,
        });
        const d = decodeEntry(lo, hi, f.level, FEAT({ maxPhyAddr: 52 }));
        const has = (x: FlagName) => f.flags.includes(x);
        expect(d.level).toBe(f.level);
        expect(d.present).toBe(has('P'));
        expect(d.rw).toBe(has('RW'));
        expect(d.us).toBe(has('US'));
        expect(d.pwt).toBe(has('PWT'));
        expect(d.pcd).toBe(has('PCD'));
        expect(d.accessed).toBe(has('A'));
        expect(d.dirty).toBe(has('D'));
        expect(d.ps).toBe(f.ps);
        expect(d.leaf).toBe(f.level === 1 || f.ps);
        expect(d.pat).toBe(has('PAT'));
        expect(d.global).toBe(has('G'));
        expect(d.xd).toBe(has('XD'));
        expect(d.softwareLow).toBe(f.softwareLow);
        expect(d.softwareHigh).toBe(f.softwareHigh);
        expect(d.pkey).toBe(f.pkey);
        expect(d.pfn).toBe(f.pfn);
        expect(d.reserved).toEqual([]);
        expect(entryPfn(f.level, lo, hi)).toBe(f.pfn);
        expect(isLeaf(f.level, lo)).toBe(d.leaf);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodeEntry of any 64-bit value matches a BigInt bit-extraction model, reserved bits included', () => {
    const featuresArb = fc.record({
      maxPhyAddr: fc.constantFrom(36, 39, 46, 48, 52),
      nxe: fc.boolean(),
      page1G: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 1, max: 5 }),
        featuresArb,
        (v, level, feat) => {
          const { lo, hi } = splitEntry(v);
          const d = decodeEntry(lo, hi, level, feat);
          const b = (n: number) => ((v >> BigInt(n)) & 1n) === 1n;
          const psBit = b(7) && level !== 1;
          const leaf = level === 1 || ((level === 2 || level === 3) && psBit);
          expect(d.present).toBe(b(0));
          expect(d.rw).toBe(b(1));
          expect(d.us).toBe(b(2));
          expect(d.pwt).toBe(b(3));
          expect(d.pcd).toBe(b(4));
          expect(d.accessed).toBe(b(5));
          expect(d.dirty).toBe(b(6));
          expect(d.ps).toBe(psBit);
          expect(d.leaf).toBe(leaf);
          expect(d.global).toBe(b(8));
          expect(d.pat).toBe(level === 1 ? b(7) : leaf ? b(12) : false);
          expect(d.softwareLow).toBe(Number((v >> 9n) & 7n));
          expect(d.softwareHigh).toBe(Number((v >> 52n) & 0x7fn));
          expect(d.pkey).toBe(Number((v >> 59n) & 0xfn));
          expect(d.xd).toBe(b(63));
          const addrLow = leaf && level === 2 ? 21 : leaf && level === 3 ? 30 : 12;
          const pfn = ((v >> BigInt(addrLow)) & ((1n << BigInt(52 - addrLow)) - 1n)) << BigInt(addrLow - 12);
          expect(d.pfn).toBe(Number(pfn));
          // Reserved bits (SDM §4.5 tables 4-15..4-20): only in present entries.
          // isReserved() takes a present entry: it ignores P; decodeEntry lists them only when P = 1.
          const want: string[] = [];
          {
            for (let n = 0; n < 64; n++) {
              if (!b(n)) continue;
              let r = false;
              if (n >= feat.maxPhyAddr && n <= 51) r = true;
              if (n === 63 && !feat.nxe) r = true;
              if (n === 7 && level >= 4) r = true;
              if (n === 7 && level === 3 && !feat.page1G) r = true;
              if (level === 2 && psBit && n >= 13 && n <= 20) r = true;
              if (level === 3 && psBit && feat.page1G && n >= 13 && n <= 29) r = true;
              if (r) want.push(n === 7 ? 'PS' : n === 63 ? 'XD (NXE=0)' : `bit ${n}`);
            }
          }
          expect(d.reserved).toEqual(b(0) ? want : []);
          expect(new ReservedMasks(feat).isReserved(level, lo, hi)).toBe(want.length > 0);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('formatEntryHex / parseEntryHex round-trip any 64-bit value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
        const { lo, hi } = splitEntry(v);
        const hex = formatEntryHex(lo, hi);
        expect(hex).toBe(`0x${v.toString(16).padStart(16, '0')}`);
        expect(parseEntryHex(hex)).toEqual({ lo, hi });
        expect(parseEntryHex(v.toString(16))).toEqual({ lo, hi });
        expect(joinEntry(lo, hi)).toBe(v);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Reserved-bit detection, one rule at a time.

describe('reserved bits (SDM Vol. 3A §4.5, §4.7 RSVD)', () => {
  it.each([36, 46, 52])(
    'with MAXPHYADDR %i, bits MAXPHYADDR..51 are reserved at every level, lower ones are not',
    (m) => {
      const f = FEAT({ maxPhyAddr: m });
      for (const level of [1, 2, 3, 4, 5]) {
        for (let n = 12; n <= 62; n++) {
          const d = dec(1n | bit(n), level, f);
          const expected = n >= m && n <= 51 ? [`bit ${n}`] : [];
          if (d.reserved.join() !== expected.join()) {
            throw new Error(
              `level ${level} bit ${n} MAXPHYADDR ${m}: got [${d.reserved.join()}], want [${expected.join()}]`,
            );
          }
        }
      }
      // The masks the walker uses agree.
      const masks = new ReservedMasks(f);
      for (const level of [1, 4]) {
        for (let n = 32; n <= 51; n++) expect(masks.isReserved(level, 1, 2 ** (n - 32))).toBe(n >= m);
      }
    },
  );

  it('MAXPHYADDR 36 reserves bit 36 but not bit 35', () => {
    expect(dec(1n | bit(36), 1, FEAT({ maxPhyAddr: 36 })).reserved).toEqual(['bit 36']);
    expect(dec(1n | bit(35), 1, FEAT({ maxPhyAddr: 36 })).reserved).toEqual([]);
    expect(dec(1n | bit(51) | bit(40), 1, FEAT({ maxPhyAddr: 36 })).reserved).toEqual(['bit 40', 'bit 51']);
  });

  it('MAXPHYADDR outside 36..52 is refused', () => {
    for (const m of [35, 53, 46.5]) {
      const e = thrown(() => new ReservedMasks(FEAT({ maxPhyAddr: m })));
      expect(e).toBeInstanceOf(PteError);
      expect((e as PteError).message).toContain(String(m));
    }
  });

  it('XD (bit 63) is reserved when IA32_EFER.NXE = 0, at every level', () => {
    for (const level of [1, 2, 3, 4, 5]) {
      expect(dec(0x8000000000001001n, level, FEAT({ nxe: false })).reserved).toEqual(['XD (NXE=0)']);
      expect(dec(0x8000000000001001n, level, FEAT({ nxe: true })).reserved).toEqual([]);
    }
  });

  it('PS is reserved in a PML4E and a PML5E', () => {
    expect(dec(0x1083n, 4).reserved).toEqual(['PS']);
    expect(dec(0x1083n, 5).reserved).toEqual(['PS']);
    expect(dec(0x1083n, 3).reserved).toEqual([]);
    expect(dec(0x0000000000200083n, 2).reserved).toEqual([]);
  });

  it('bits 13..20 of a 2M PDE are reserved; bit 12 (PAT) and bit 21 are not; a non-leaf PDE has no such rule', () => {
    for (let n = 12; n <= 21; n++) {
      const want = n >= 13 && n <= 20 ? [`bit ${n}`] : [];
      expect(dec(0x81n | bit(n), 2).reserved).toEqual(want);
      expect(dec(0x1n | bit(n), 2).reserved).toEqual([]);
    }
  });

  it('bits 13..29 of a 1G PDPTE are reserved; bit 12 (PAT) and bit 30 are not', () => {
    for (let n = 12; n <= 30; n++) {
      const want = n >= 13 && n <= 29 ? [`bit ${n}`] : [];
      expect(dec(0x81n | bit(n), 3).reserved).toEqual(want);
      expect(dec(0x1n | bit(n), 3).reserved).toEqual([]);
    }
  });

  it('PS in a PDPTE is reserved without 1 GiB page support', () => {
    expect(dec(0x40000083n, 3, FEAT({ page1G: false })).reserved).toEqual(['PS']);
    expect(dec(0x40000083n, 3, FEAT({ page1G: true })).reserved).toEqual([]);
    // Only PS is flagged: bits 13..29 are not checked separately.
    expect(dec(0x40000083n | bit(13), 3, FEAT({ page1G: false })).reserved).toEqual(['PS']);
    expect(new ReservedMasks(FEAT({ page1G: false })).isReserved(3, 0x40000083, 0)).toBe(true);
  });

  it('a non-present entry reports no reserved bits, whatever else is set', () => {
    const all = 0xfffffffffffffffen; // every bit but P
    for (const level of [1, 2, 3, 4, 5]) {
      for (const f of [FEAT({ maxPhyAddr: 36, nxe: false, page1G: false }), FEAT({ maxPhyAddr: 52 })]) {
        const d = dec(all, level, f);
        expect(d.present).toBe(false);
        expect(d.reserved).toEqual([]);
      }
    }
    // Same entry with P set does report them.
    expect(dec(all | 1n, 1, FEAT({ maxPhyAddr: 36, nxe: false })).reserved.length).toBe(51 - 36 + 1 + 1);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors.

describe('parseEntryHex', () => {
  it('parses with and without 0x, in either case, with surrounding blanks', () => {
    expect(parseEntryHex('0x8000000012345067')).toEqual({ lo: 0x12345067, hi: 0x80000000 });
    expect(parseEntryHex('8000000012345067')).toEqual({ lo: 0x12345067, hi: 0x80000000 });
    expect(parseEntryHex(' 0XFFFFFFFFFFFFFFFF ')).toEqual({ lo: 0xffffffff, hi: 0xffffffff });
    expect(parseEntryHex('1')).toEqual({ lo: 1, hi: 0 });
    expect(parseEntryHex('100')).toEqual({ lo: 0x100, hi: 0 }); // hex even without 0x
  });

  it.each(['zz', '', '0x', '0x12345678123456789', '12345678123456789', '-1', '0x12 34', '1g'])(
    'rejects %j with a parse PteError naming the input',
    (input) => {
      const e = thrown(() => parseEntryHex(input));
      expect(e).toBeInstanceOf(PteError);
      expect((e as PteError).code).toBe('parse');
      expect((e as PteError).message).toBe(`'${input}' is not a 64-bit entry`);
      expect((e as PteError).hint).toMatch(/16 hex digits/);
    },
  );
});

describe('encodeEntry rejects impossible fields with a parse PteError', () => {
  it.each([
    ['PS in a PTE', { level: 1, pfn: 0, flags: ['PS'] }, /PS is only valid/],
    ['PS in a PML4E', { level: 4, pfn: 0, flags: ['PS'] }, /PS is only valid/],
    ['PS in a PML5E', { level: 5, pfn: 0, flags: ['PS'] }, /PS is only valid/],
    ['PAT in a non-leaf PDE', { level: 2, pfn: 0, flags: ['PAT'] }, /PAT is only valid in a leaf/],
    ['PAT in a PML4E', { level: 4, pfn: 0, flags: ['PAT'] }, /PAT is only valid in a leaf/],
    ['a 2M leaf at a pfn not 512-aligned', { level: 2, pfn: 0x201, flags: ['PS'] }, /not aligned to the 2 MiB page/],
    ['a 1G leaf at a pfn not 2^18-aligned', { level: 3, pfn: 0x200, flags: ['PS'] }, /not aligned to the 1 GiB page/],
    ['pfn 2^40', { pfn: 2 ** 40 }, /pfn .* is not in 0..2\^40-1/],
    ['pfn -1', { pfn: -1 }, /pfn -1/],
    ['pfn 1.5', { pfn: 1.5 }, /pfn 1.5/],
    ['softwareLow 8', { pfn: 0, softwareLow: 8 }, /9..11 value 8/],
    ['softwareHigh 128', { pfn: 0, softwareHigh: 128 }, /52..58 value 128/],
    ['pkey 16', { pfn: 0, pkey: 16 }, /protection key 16/],
    ['pkey -1', { pfn: 0, pkey: -1 }, /protection key -1/],
    ['an unknown flag', { pfn: 0, flags: ['NX'] }, /unknown flag 'NX'/],
    ['level 0', { level: 0, pfn: 0 }, /level 0 is not 1..5/],
    ['level 6', { level: 6, pfn: 0 }, /level 6 is not 1..5/],
  ] as Array<[string, Parameters<typeof encodeEntry>[0], RegExp]>)('%s', (_what, fields, msg) => {
    const e = thrown(() => encodeEntry(fields));
    expect(e).toBeInstanceOf(PteError);
    expect((e as PteError).code).toBe('parse');
    expect((e as PteError).message).toMatch(msg);
  });

  it('decodeEntry rejects a level outside 1..5', () => {
    const e = thrown(() => decodeEntry(0, 0, 6));
    expect((e as PteError).code).toBe('parse');
  });

  it('FLAG_NAMES lists every flag encodeEntry accepts, in entry order', () => {
    expect([...FLAG_NAMES]).toEqual(['P', 'RW', 'US', 'PWT', 'PCD', 'A', 'D', 'PS', 'PAT', 'G', 'XD']);
  });
});
