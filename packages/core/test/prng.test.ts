import fc from 'fast-check';
import { Prng, hashString } from '../src/index.js';

const TWO32 = 4294967296;

function draws(p: Prng, k: number): number[] {
  return Array.from({ length: k }, () => p.nextU32());
}

/** A Prng whose nextU32 replays a fixed script, to drive nextInt/nextFloat through chosen raw values. */
class ScriptedPrng extends Prng {
  private readonly script: readonly number[];
  private pos = 0;
  constructor(script: readonly number[]) {
    super(0);
    this.script = script;
  }
  override nextU32(): number {
    if (this.pos >= this.script.length) throw new Error('script exhausted');
    return this.script[this.pos++]!;
  }
}

/** Lemire's nearly-divisionless method in exact BigInt arithmetic: the value nextInt must return. */
function lemireRef(script: readonly number[], n: number): number | undefined {
  const N = BigInt(n);
  const threshold = (2n ** 32n - N) % N;
  for (const r of script) {
    const m = BigInt(r) * N;
    if ((m & 0xffffffffn) >= threshold) return Number(m >> 32n);
  }
  return undefined;
}

/** xoshiro128** as published (Blackman & Vigna), in BigInt arithmetic mod 2^32. */
function xoshiroRef(state: readonly bigint[], k: number): number[] {
  const M = 0xffffffffn;
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (32n - r))) & M;
  const s = [...state] as [bigint, bigint, bigint, bigint];
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    out.push(Number((rotl((s[1] * 5n) & M, 7n) * 9n) & M));
    const t = (s[1] << 9n) & M;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
  }
  return out;
}

const seedArb = fc.maxSafeNat();
const u32Arb = fc.bigInt({ min: 0n, max: 0xffffffffn }).map(Number);

describe('hashString', () => {
  it('is 32-bit FNV-1a (published vectors)', () => {
    expect(hashString('')).toBe(0x811c9dc5);
    expect(hashString('a')).toBe(0xe40c292c);
    expect(hashString('foobar')).toBe(0xbf9cf968);
  });
});

describe('Prng: generator core', () => {
  it('nextU32 is xoshiro128** on the internal state', () => {
    const p = new Prng(0);
    (p as unknown as { s: Uint32Array }).s.set([1, 2, 3, 4]);
    expect(draws(p, 1000)).toEqual(xoshiroRef([1n, 2n, 3n, 4n], 1000));

    const q = new Prng(0);
    const state = [0xdeadbeefn, 0x01234567n, 0xffffffffn, 0x80000000n];
    (q as unknown as { s: Uint32Array }).s.set(state.map(Number));
    expect(draws(q, 1000)).toEqual(xoshiroRef(state, 1000));
  });

  it('pins the first values for seed 1, stream "" (regression vector)', () => {
    expect(draws(new Prng(1, ''), 8)).toEqual([
      4053944711, 2024790394, 930221650, 141877502, 2601939813, 860499175, 975083879, 2119839892,
    ]);
    expect(draws(new Prng(1), 3)).toEqual([4053944711, 2024790394, 930221650]);
  });

  it('pins the first values for a named stream and for a seed above 2^32 (regression vectors)', () => {
    expect(draws(new Prng(42, 'tlb'), 4)).toEqual([1156412112, 3197937739, 218356458, 1511501045]);
    expect(draws(new Prng(2 ** 32 + 1), 4)).toEqual([3736296291, 1952699206, 4151846617, 2595107506]);
  });

  it('every nextU32 is a uint32', () => {
    const p = new Prng(99, 'u32');
    for (let i = 0; i < 10000; i++) {
      const v = p.nextU32();
      expect(Number.isInteger(v) && v >= 0 && v < TWO32).toBe(true);
    }
  });

  it('each output bit is set about half the time', () => {
    const p = new Prng(2024, 'bits');
    const ones = new Array<number>(32).fill(0);
    const N = 100000;
    for (let i = 0; i < N; i++) {
      const v = p.nextU32();
      for (let b = 0; b < 32; b++) ones[b]! += (v >>> b) & 1;
    }
    for (let b = 0; b < 32; b++) {
      expect(Math.abs(ones[b]! / N - 0.5)).toBeLessThan(0.01);
    }
  });
});

describe('Prng: determinism and independence', () => {
  it('same seed and stream give the same sequence', () => {
    fc.assert(
      fc.property(seedArb, fc.string(), (seed, stream) => {
        expect(draws(new Prng(seed, stream), 16)).toEqual(draws(new Prng(seed, stream), 16));
        expect(draws(Prng.stream(seed, stream), 16)).toEqual(draws(new Prng(seed, stream), 16));
      }),
    );
  });

  it('different stream names give different sequences', () => {
    expect(draws(new Prng(1, 'a'), 4)).not.toEqual(draws(new Prng(1, 'b'), 4));
    expect(draws(new Prng(1, ''), 4)).not.toEqual(draws(new Prng(1, 'tlb'), 4));
    fc.assert(
      fc.property(seedArb, fc.string(), fc.string(), (seed, a, b) => {
        fc.pre(a !== b && hashString(a) !== hashString(b));
        expect(draws(new Prng(seed, a), 2)).not.toEqual(draws(new Prng(seed, b), 2));
      }),
    );
  });

  it('different seeds give different sequences', () => {
    expect(draws(new Prng(1), 4)).not.toEqual(draws(new Prng(2), 4));
    expect(draws(new Prng(0), 4)).not.toEqual(draws(new Prng(1), 4));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: TWO32 - 1 }),
        fc.integer({ min: 0, max: TWO32 - 1 }),
        fc.string(),
        (a, b, s) => {
          fc.pre(a !== b);
          expect(draws(new Prng(a, s), 2)).not.toEqual(draws(new Prng(b, s), 2));
        },
      ),
    );
  });

  it('a stream is not disturbed by draws from another stream', () => {
    const a1 = new Prng(7, 'a');
    const a2 = new Prng(7, 'a');
    const b = new Prng(7, 'b');
    const seq1 = draws(a1, 10);
    const seq2: number[] = [];
    for (let i = 0; i < 10; i++) {
      b.nextU32();
      seq2.push(a2.nextU32());
    }
    expect(seq2).toEqual(seq1);
  });

  it('seeds above 2^32 differ from the seed of their low 32 bits', () => {
    expect(draws(new Prng(2 ** 32 + 5), 4)).not.toEqual(draws(new Prng(5), 4));
    expect(draws(new Prng(2 ** 32), 4)).not.toEqual(draws(new Prng(0), 4));
    expect(draws(new Prng(Number.MAX_SAFE_INTEGER), 4)).not.toEqual(draws(new Prng(0xffffffff), 4));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 21 - 1 }), u32Arb, fc.string(), (hi, lo, s) => {
        expect(draws(new Prng(hi * TWO32 + lo, s), 2)).not.toEqual(draws(new Prng(lo, s), 2));
      }),
    );
  });

  it('seeds just above 2^32 do not replay small seeds (e.g. 2^32 is not seed 1)', () => {
    expect(draws(new Prng(2 ** 32), 4)).not.toEqual(draws(new Prng(1), 4));
    expect(draws(new Prng(3 * 2 ** 32 + 1), 4)).not.toEqual(draws(new Prng(2), 4));
    const small = new Set<string>();
    for (let s = 0; s < 65536; s++) small.add(draws(new Prng(s), 2).join(','));
    for (let hi = 1; hi <= 16; hi++) {
      for (let lo = 0; lo < 256; lo++) {
        expect(small.has(draws(new Prng(hi * TWO32 + lo), 2).join(','))).toBe(false);
      }
    }
  });
});

describe('Prng.nextInt', () => {
  const nArb = fc.oneof(
    fc.constantFrom(1, 2, 3, 10, 2 ** 21, 2 ** 21 + 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32),
    fc.integer({ min: 1, max: 1000 }),
    fc.bigInt({ min: 1n, max: 2n ** 32n }).map(Number),
  );

  it('is always an integer in [0, n) (including n = 1 and n = 2^32)', () => {
    fc.assert(
      fc.property(seedArb, nArb, (seed, n) => {
        const p = new Prng(seed, 'int');
        for (let i = 0; i < 50; i++) {
          const v = p.nextInt(n);
          expect(Number.isInteger(v)).toBe(true);
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThan(n);
        }
      }),
    );
    const p = new Prng(3);
    for (let i = 0; i < 100; i++) expect(p.nextInt(1)).toBe(0);
  });

  it('nextInt(2^32) is exactly nextU32', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const a = new Prng(seed);
        const b = new Prng(seed);
        for (let i = 0; i < 20; i++) expect(a.nextInt(2 ** 32)).toBe(b.nextU32());
      }),
    );
  });

  it('matches exact (BigInt) Lemire rejection on random raw values', () => {
    fc.assert(
      fc.property(fc.array(u32Arb, { minLength: 1, maxLength: 6 }), nArb, (script, n) => {
        fc.pre(n >= 2);
        const want = lemireRef(script, n);
        const p = new ScriptedPrng(script);
        if (want === undefined) expect(() => p.nextInt(n)).toThrow('script exhausted');
        else expect(p.nextInt(n)).toBe(want);
      }),
    );
  });

  // For large n the 64-bit product r*n is not exact in a double. Aim r*n mod 2^32 right next to the
  // rejection threshold or right below 2^32, where a rounded product decides or answers wrongly.
  const edgeArb = fc
    .tuple(
      fc.bigInt({ min: 2n ** 21n, max: 2n ** 31n - 1n }).map((h) => h * 2n + 1n), // odd n > 2^21
      fc.integer({ min: -1500, max: 1500 }),
      fc.boolean(),
    )
    .map(([N, delta, nearThreshold]) => {
      const M = 2n ** 32n;
      const threshold = (M - N) % N;
      const target = ((((nearThreshold ? threshold : M) + BigInt(delta)) % M) + M) % M;
      // r = target * N^-1 mod 2^32 (N is odd, so invertible), hence r*N ≡ target (mod 2^32)
      let inv = 1n;
      for (let i = 0; i < 5; i++) inv = (inv * (2n - N * inv)) % M;
      inv = (inv + M) % M;
      const r = Number((target * inv) % M);
      return { n: Number(N), r };
    });

  it('matches exact Lemire rejection where r*n mod 2^32 is at the threshold or just below 2^32', () => {
    fc.assert(
      fc.property(edgeArb, u32Arb, ({ n, r }, fallback) => {
        const script = [r, fallback, 0xffffffff, 0x12345678, 0x9abcdef0];
        const want = lemireRef(script, n);
        fc.pre(want !== undefined);
        expect(new ScriptedPrng(script).nextInt(n)).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts r = 1714168004 for n = 3431679538 (the product, rounded to a double, would be rejected)', () => {
    // r*n = 1369620501 * 2^32 + 4294966856 exactly; threshold = 2^32 mod n = 863287758, so accept.
    // As a double, r*n rounds up to 1369620502 * 2^32, whose low word 0 is below the threshold.
    expect(lemireRef([1714168004], 3431679538)).toBe(1369620501);
    expect(new ScriptedPrng([1714168004]).nextInt(3431679538)).toBe(1369620501);
  });

  it('is roughly uniform: chi-square over 10 buckets, 100k draws', () => {
    const chiSquare = (counts: number[], expected: number) =>
      counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    const N = 100000;
    // 99.9999th percentile of chi-square with 9 degrees of freedom is about 41.
    const bound = 41;

    const p = new Prng(12345, 'chi');
    const small = new Array<number>(10).fill(0);
    for (let i = 0; i < N; i++) small[p.nextInt(10)]!++;
    expect(chiSquare(small, N / 10)).toBeLessThan(bound);

    const n = 3e9;
    const big = new Array<number>(10).fill(0);
    for (let i = 0; i < N; i++) big[Math.floor(p.nextInt(n) / (n / 10))]!++;
    expect(chiSquare(big, N / 10)).toBeLessThan(bound);

    const floats = new Array<number>(10).fill(0);
    for (let i = 0; i < N; i++) floats[Math.floor(p.nextFloat() * 10)]!++;
    expect(chiSquare(floats, N / 10)).toBeLessThan(bound);
  });
});

describe('Prng.nextFloat', () => {
  it('is in [0, 1)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const p = new Prng(seed, 'float');
        for (let i = 0; i < 100; i++) {
          const f = p.nextFloat();
          expect(f).toBeGreaterThanOrEqual(0);
          expect(f).toBeLessThan(1);
        }
      }),
    );
  });

  it('maps the extreme raw values inside [0, 1)', () => {
    expect(new ScriptedPrng([0]).nextFloat()).toBe(0);
    const top = new ScriptedPrng([0xffffffff]).nextFloat();
    expect(top).toBeLessThan(1);
    expect(top).toBe(1 - 2 ** -32);
    expect(new ScriptedPrng([2 ** 31]).nextFloat()).toBe(0.5);
  });
});

describe('Prng.shuffle', () => {
  it('returns the same array holding a permutation of its elements', () => {
    fc.assert(
      fc.property(seedArb, fc.array(fc.integer()), (seed, xs) => {
        const a = [...xs];
        const out = new Prng(seed, 'shuffle').shuffle(a);
        expect(out).toBe(a);
        expect([...a].sort((x, y) => x - y)).toEqual([...xs].sort((x, y) => x - y));
      }),
    );
  });

  it('shuffles typed arrays in place', () => {
    const a = Uint32Array.from({ length: 100 }, (_, i) => i);
    new Prng(5).shuffle(a);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(a)).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('is deterministic per seed and stream, and differs between seeds', () => {
    const base = Array.from({ length: 20 }, (_, i) => i);
    const s1 = new Prng(1, 'sh').shuffle([...base]);
    expect(new Prng(1, 'sh').shuffle([...base])).toEqual(s1);
    expect(new Prng(2, 'sh').shuffle([...base])).not.toEqual(s1);
    expect(s1).not.toEqual(base);
  });

  it('handles empty and one-element arrays', () => {
    expect(new Prng(1).shuffle([])).toEqual([]);
    expect(new Prng(1).shuffle([9])).toEqual([9]);
  });

  it('reaches all 6 orders of 3 elements about equally often', () => {
    const p = new Prng(77, 'perm');
    const counts = new Map<string, number>();
    const N = 60000;
    for (let i = 0; i < N; i++) {
      const key = p.shuffle([0, 1, 2]).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['012', '021', '102', '120', '201', '210']);
    for (const c of counts.values()) expect(Math.abs(c - N / 6)).toBeLessThan(600);
  });
});
