import fc from 'fast-check';
import { PteError } from '@pte/core';
import {
  formatAddress,
  isCanonical,
  joinAddress,
  parseAddress,
  splitAddress,
  tableIndex,
  vpnOf,
} from '../src/index.js';
import { thrown } from './helpers.js';

const U64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const halves = (v: bigint) => ({ hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) });

/** Addresses that are interesting for canonicality: near the 2^47 and 2^56 boundaries, plus random ones. */
const edgeAddr = fc.oneof(
  U64,
  fc
    .tuple(fc.integer({ min: 40, max: 63 }), fc.bigInt({ min: -4096n, max: 4096n }))
    .map(([b, d]) => BigInt.asUintN(64, (1n << BigInt(b)) + d)),
  fc
    .tuple(fc.integer({ min: 40, max: 63 }), fc.bigInt({ min: 0n, max: 4096n }))
    .map(([b, d]) => BigInt.asUintN(64, -(1n << BigInt(b)) - d)),
);

describe('tableIndex (SDM §4.5: PML5 56:48, PML4 47:39, PDPT 38:30, PD 29:21, PT 20:12)', () => {
  it('matches BigInt shifts for every level on random 64-bit addresses', () => {
    fc.assert(
      fc.property(U64, (v) => {
        const { hi, lo } = halves(v);
        for (let level = 1; level <= 5; level++) {
          const want = Number((v >> BigInt(12 + 9 * (level - 1))) & 511n);
          expect(tableIndex(level, hi, lo)).toBe(want);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('vectors', () => {
    // 0x7f12_3456_7000: PML4 0xfe, PDPT 0x48, PD 0x1a2, PT 0x167
    const { hi, lo } = halves(0x7f1234567000n);
    expect([5, 4, 3, 2, 1].map((l) => tableIndex(l, hi, lo))).toEqual([0, 0xfe, 0x48, 0x1a2, 0x167]);
    const top = halves(0xffffffffffffffffn);
    expect([5, 4, 3, 2, 1].map((l) => tableIndex(l, top.hi, top.lo))).toEqual([511, 511, 511, 511, 511]);
    const la57 = halves(0x01ff000000000000n);
    expect(tableIndex(5, la57.hi, la57.lo)).toBe(0x1ff);
    expect(tableIndex(4, la57.hi, la57.lo)).toBe(0);
  });
});

describe('isCanonical (SDM §3.3.7.1)', () => {
  it.each([
    [0x00007fffffffffffn, true, true],
    [0x0000800000000000n, false, true],
    [0xffff800000000000n, true, true],
    [0xffff7fffffffffffn, false, true],
    [0xfffffffffffff000n, true, true],
    [0x0000000000000000n, true, true],
    [0x00ffffffffffffffn, false, true],
    [0x0100000000000000n, false, false],
    [0xff00000000000000n, false, true],
    [0xfeffffffffffffffn, false, false],
    [0x8000000000000000n, false, false],
  ])('0x%s: 4-level %s, 5-level %s', (v, four, five) => {
    const { hi } = halves(v);
    expect(isCanonical(hi, 4)).toBe(four);
    expect(isCanonical(hi, 5)).toBe(five);
  });

  it('agrees with sign extension of bit 47 (4-level) and bit 56 (5-level) on random addresses', () => {
    fc.assert(
      fc.property(edgeAddr, (v) => {
        const { hi } = halves(v);
        expect(isCanonical(hi, 4)).toBe(BigInt.asUintN(64, BigInt.asIntN(48, v)) === v);
        expect(isCanonical(hi, 5)).toBe(BigInt.asUintN(64, BigInt.asIntN(57, v)) === v);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('address halves', () => {
  it('splitAddress / joinAddress / vpnOf / formatAddress / parseAddress agree with BigInt', () => {
    fc.assert(
      fc.property(U64, (v) => {
        const s = splitAddress(v);
        expect(s).toEqual(halves(v));
        expect(vpnOf(s.hi, s.lo)).toBe(Number(v >> 12n));
        expect(formatAddress(s.hi, s.lo)).toBe(`0x${v.toString(16)}`);
        expect(parseAddress(`0x${v.toString(16)}`)).toEqual(s);
        expect(parseAddress(v.toString(10))).toEqual(s);
        if (v < 1n << 53n) {
          expect(joinAddress(s.hi, s.lo)).toBe(Number(v));
          expect(splitAddress(Number(v))).toEqual(s);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('splitAddress wraps negative bigints to 64 bits', () => {
    expect(splitAddress(-4096n)).toEqual({ hi: 0xffffffff, lo: 0xfffff000 });
  });

  it('formatAddress(0, 0) is 0x0', () => {
    expect(formatAddress(0, 0)).toBe('0x0');
    expect(formatAddress(1, 0)).toBe('0x100000000');
  });

  it.each([-1, 1.5, 2 ** 53, NaN])('splitAddress(%p) is a parse error', (v) => {
    const e = thrown(() => splitAddress(v));
    expect(e).toBeInstanceOf(PteError);
    expect((e as PteError).code).toBe('parse');
  });

  it.each(['zz', '', '0x', '0x10000000000000000', '18446744073709551616', '-5', '0x1_000'])(
    'parseAddress(%j) is a parse error naming the input',
    (s) => {
      const e = thrown(() => parseAddress(s));
      expect(e).toBeInstanceOf(PteError);
      expect((e as PteError).code).toBe('parse');
      expect((e as PteError).message).toContain(`'${s}'`);
    },
  );

  it('parseAddress accepts the largest 64-bit value in hex and decimal', () => {
    expect(parseAddress('0xffffffffffffffff')).toEqual({ hi: 0xffffffff, lo: 0xffffffff });
    expect(parseAddress('18446744073709551615')).toEqual({ hi: 0xffffffff, lo: 0xffffffff });
  });
});
