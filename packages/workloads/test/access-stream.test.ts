import fc from 'fast-check';
import { Prng } from '@pte/core';
import { AccessStream, formatPattern, parsePattern, type PatternSpec } from '../src/index.js';
import { thrownBy } from './helpers.js';

/** Every touch of a stream, read in chunks of `chunk`. */
function drain(stream: AccessStream, chunk = 4096): number[] {
  const out = new Uint32Array(chunk);
  const all: number[] = [];
  for (let n = stream.fill(out); n > 0; n = stream.fill(out)) all.push(...out.subarray(0, n));
  return all;
}

function touches(pattern: string, pages: number, seed = 1, chunk = 4096): number[] {
  return drain(new AccessStream(parsePattern(pattern), pages, new Prng(seed)), chunk);
}

const range = (from: number, to: number, step = 1) => {
  const r: number[] = [];
  for (let i = from; step > 0 ? i < to : i > to; i += step) r.push(i);
  return r;
};

describe('AccessStream: exact sequences', () => {
  it.each<[string, number, number[]]>([
    ['seq', 5, [0, 1, 2, 3, 4]],
    ['seq', 1, [0]],
    ['reverse', 5, [4, 3, 2, 1, 0]],
    ['reverse', 1, [0]],
    ['stride:1', 4, [0, 1, 2, 3]],
    ['stride:3', 10, [0, 3, 6, 9]],
    ['stride:5', 10, [0, 5]],
    ['stride:16', 10, [0]],
    ['per2m', 1, [0]],
    ['per2m', 512, [0]],
    ['per2m', 513, [0, 512]],
    ['per2m', 1536, [0, 512, 1024]],
    ['per2m', 1537, [0, 512, 1024, 1536]],
  ])('%s over %d pages', (pattern, pages, expected) => {
    const s = new AccessStream(parsePattern(pattern), pages, new Prng(1));
    expect(s.total).toBe(expected.length);
    expect(drain(s)).toEqual(expected);
  });

  it('seq and reverse over 10000 pages in odd chunks', () => {
    expect(touches('seq', 10000, 1, 7)).toEqual(range(0, 10000));
    expect(touches('reverse', 10000, 1, 7)).toEqual(range(9999, -1, -1));
  });

  // Golden values: the same seed gives the same touches on every machine (DESIGN principle 4).
  it('random:0.5 over 8 pages, seed 42', () => {
    expect(touches('random:0.5', 8, 42)).toEqual(GOLDEN_RANDOM);
  });
  it('hotset:0.5:3 over 8 pages, seed 42', () => {
    expect(touches('hotset:0.5:3', 8, 42)).toEqual(GOLDEN_HOTSET);
  });

  it('random:1 is a permutation of the region', () => {
    const t = touches('random:1', 100, 3);
    expect([...t].sort((a, b) => a - b)).toEqual(range(0, 100));
    expect(t).not.toEqual(range(0, 100));
  });

  it.each<[string, number, number]>([
    ['random:0.5', 8, 4],
    ['random:0.5', 7, 4], // round half up: 3.5 → 4
    ['random:0.01', 10, 1], // at least one page
    ['random:1', 10, 10],
    ['random:0.001', 1 << 20, 1049],
    ['hotset:0.25:4', 8, 8],
    ['hotset:0.01:5', 10, 5],
    ['hotset:1:2', 3, 6],
  ])('%s over %d pages: %d touches', (pattern, pages, total) => {
    const s = new AccessStream(parsePattern(pattern), pages, new Prng(1));
    expect(s.total).toBe(total);
    expect(drain(s)).toHaveLength(total);
  });

  it.each(['seq', 'reverse', 'stride:3', 'per2m', 'random:0.5', 'hotset:0.5:3'])('%s over 0 pages is empty', (p) => {
    const s = new AccessStream(parsePattern(p), 0, new Prng(1));
    expect(s.total).toBe(0);
    expect(s.fill(new Uint32Array(8))).toBe(0);
  });

  it('fill returns 0 after the end and for an empty buffer', () => {
    const s = new AccessStream({ kind: 'seq' }, 3, new Prng(1));
    expect(s.fill(new Uint32Array(0))).toBe(0);
    const out = new Uint32Array(8);
    expect(s.fill(out)).toBe(3);
    expect(s.produced).toBe(3);
    expect(s.fill(out)).toBe(0);
    expect(s.fill(out)).toBe(0);
  });

  it('rejects a hot set whose passes exceed 2^53 touches', () => {
    const e = thrownBy(() => new AccessStream(parsePattern('hotset:1:4294967295'), 0xffffffff, new Prng(1)));
    expect(e.oneLine()).toBe('access stream: 4294967295 hot pages × 4294967295 repeats is more than 2^53 touches');
  });

  it.each([-1, 1.5, 2 ** 32, NaN])('rejects %p pages', (pages) => {
    const e = thrownBy(() => new AccessStream({ kind: 'seq' }, pages, new Prng(1)));
    expect(e.code).toBe('config');
    expect(e.oneLine()).toBe(`access stream: ${pages} is not a page count from 0 to 2^32 − 1`);
  });
});

const fraction = fc.double({ min: 1e-4, max: 1, noNaN: true });
const anySpec: fc.Arbitrary<PatternSpec> = fc.oneof(
  fc.constantFrom<PatternSpec>({ kind: 'seq' }, { kind: 'reverse' }, { kind: 'per2m' }),
  fc.integer({ min: 1, max: 5000 }).map((stride): PatternSpec => ({ kind: 'stride', stride })),
  fraction.map((f): PatternSpec => ({ kind: 'random', fraction: f })),
  fc
    .tuple(fraction, fc.integer({ min: 1, max: 4 }))
    .map(([f, repeats]): PatternSpec => ({ kind: 'hotset', fraction: f, repeats })),
);

describe('AccessStream: properties', () => {
  it('total = touches produced, the same touches for chunk sizes 1, 7 and 4096', () => {
    fc.assert(
      fc.property(anySpec, fc.integer({ min: 0, max: 3000 }), fc.integer(), (spec, pages, seed) => {
        const runs = [1, 7, 4096].map((chunk) => {
          const s = new AccessStream(spec, pages, new Prng(seed));
          const t = drain(s, chunk);
          expect(t).toHaveLength(s.total);
          return t;
        });
        expect(runs[1]).toEqual(runs[0]);
        expect(runs[2]).toEqual(runs[0]);
      }),
      { numRuns: 150 },
    );
  });

  it('totals follow the formulas', () => {
    fc.assert(
      fc.property(anySpec, fc.integer({ min: 1, max: 0xffffffff }), (spec, pages) => {
        const total = new AccessStream(spec, pages, new Prng(1)).total;
        const hot = (f: number) => Math.max(1, Math.round(f * pages));
        switch (spec.kind) {
          case 'seq':
          case 'reverse':
            return total === pages;
          case 'stride':
            return total === Math.ceil(pages / spec.stride);
          case 'per2m':
            return total === Math.ceil(pages / 512);
          case 'random':
            return total === hot(spec.fraction);
          case 'hotset':
            return total === hot(spec.fraction) * spec.repeats;
        }
      }),
    );
  });

  it('random: distinct pages within the region', () => {
    fc.assert(
      fc.property(fraction, fc.integer({ min: 1, max: 3000 }), fc.integer(), (f, pages, seed) => {
        const t = touches(`random:${f}`, pages, seed, 61);
        expect(new Set(t).size).toBe(t.length);
        for (const p of t) expect(p < pages).toBe(true);
      }),
    );
  });

  it('hotset: every pass is the same set of distinct pages within the region', () => {
    fc.assert(
      fc.property(
        fraction,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.integer(),
        (f, r, pages, seed) => {
          const t = touches(`hotset:${f}:${r}`, pages, seed, 13);
          const hot = t.length / r;
          const set = t.slice(0, hot).sort((a, b) => a - b);
          expect(new Set(set).size).toBe(hot);
          for (const p of set) expect(p < pages).toBe(true);
          for (let pass = 1; pass < r; pass++)
            expect(t.slice(pass * hot, (pass + 1) * hot).sort((a, b) => a - b)).toEqual(set);
        },
      ),
    );
  });

  it('hotset: passes come in fresh orders', () => {
    const t = touches('hotset:0.5:3', 1000, 9);
    expect(t.slice(500, 1000)).not.toEqual(t.slice(0, 500));
    expect(t.slice(1000, 1500)).not.toEqual(t.slice(500, 1000));
  });

  it.each(['random:0.3', 'hotset:0.3:2'])('%s is deterministic per seed and differs across seeds', (p) => {
    expect(touches(p, 1000, 5)).toEqual(touches(p, 1000, 5));
    expect(touches(p, 1000, 5)).not.toEqual(touches(p, 1000, 6));
    expect(new Set(touches(p, 1000, 5))).not.toEqual(new Set(touches(p, 1000, 6)));
  });

  it('random picks pages uniformly (each page about half the time for random:0.5)', () => {
    const pages = 16;
    const hits = new Array<number>(pages).fill(0);
    const trials = 4000;
    const prng = new Prng(11);
    for (let i = 0; i < trials; i++)
      for (const p of drain(new AccessStream({ kind: 'random', fraction: 0.5 }, pages, prng))) hits[p]!++;
    for (const h of hits) expect(Math.abs(h / trials - 0.5)).toBeLessThan(0.05);
  });

  it.each(['seq', 'stride:3', 'random:0.4', 'hotset:0.2:3'])('%s: reset() replays the same touches', (p) => {
    const s = new AccessStream(parsePattern(p), 500, new Prng(8));
    const first = drain(s, 33);
    s.reset();
    expect(s.produced).toBe(0);
    expect(drain(s, 100)).toEqual(first);
    // reset in the middle of the stream, too
    s.reset();
    s.fill(new Uint32Array(17));
    s.reset();
    expect(drain(s, 7)).toEqual(first);
  });

  it.each(['seq', 'per2m', 'random:0.4', 'hotset:0.2:3'])('%s draws exactly two numbers from the given prng', (p) => {
    const a = new Prng(21);
    const b = new Prng(21);
    new AccessStream(parsePattern(p), 100, a);
    b.nextU32();
    b.nextU32();
    expect(a.nextU32()).toBe(b.nextU32());
  });
});

describe('AccessStream: large regions stream', () => {
  const PAGES_64G = 16 * 1024 * 1024;

  /** Growth of ArrayBuffer memory while `fn` runs. */
  function arrayBufferGrowth(fn: () => void): number {
    const before = process.memoryUsage().arrayBuffers;
    fn();
    return process.memoryUsage().arrayBuffers - before;
  }

  it.each<[string, number, number[]]>([
    ['seq', PAGES_64G, [8192, 8193, 8194]],
    ['reverse', PAGES_64G, [PAGES_64G - 1 - 8192, PAGES_64G - 2 - 8192, PAGES_64G - 3 - 8192]],
    ['stride:16', PAGES_64G / 16, [8192 * 16, 8193 * 16, 8194 * 16]],
    ['per2m', 32768, [8192 * 512, 8193 * 512, 8194 * 512]],
  ])('%s over 64 GiB: total %d, three chunks, no per-page arrays', (pattern, total, thirdChunkHead) => {
    const out = new Uint32Array(4096);
    let s!: AccessStream;
    const grown = arrayBufferGrowth(() => {
      s = new AccessStream(parsePattern(pattern), PAGES_64G, new Prng(1));
      for (let i = 0; i < 3; i++) expect(s.fill(out)).toBe(4096);
    });
    expect(grown).toBeLessThan(1024 * 1024);
    expect(s.total).toBe(total);
    expect(s.produced).toBe(3 * 4096);
    expect([...out.subarray(0, 3)]).toEqual(thirdChunkHead);
  });

  it('reverse at the Uint32 limit: 2^32 − 1 pages', () => {
    const s = new AccessStream({ kind: 'reverse' }, 0xffffffff, new Prng(1));
    const out = new Uint32Array(2);
    expect(s.total).toBe(0xffffffff);
    s.fill(out);
    expect([...out]).toEqual([0xfffffffe, 0xfffffffd]);
  });

  it('random over 64 GiB allocates one Uint32Array of the region, lazily, on first fill', () => {
    let s!: AccessStream;
    expect(
      arrayBufferGrowth(() => (s = new AccessStream({ kind: 'random', fraction: 0.001 }, PAGES_64G, new Prng(1)))),
    ).toBeLessThan(1024 * 1024);
    expect(s.total).toBe(16777);
    // The one lazily made array, read off the stream itself: the process-wide arrayBuffers figure
    // can also shrink under a collection of unrelated buffers, so it only bounds growth from above.
    const perm = () => (s as unknown as { perm: Uint32Array | null | undefined }).perm;
    expect(perm() ?? null).toBeNull();
    const out = new Uint32Array(4096);
    const grown = arrayBufferGrowth(() => s.fill(out));
    expect(perm()!.length).toBe(PAGES_64G);
    expect(grown).toBeLessThan(PAGES_64G * 4 + 1024 * 1024);
    expect(new Set(out).size).toBe(4096);
  });
});

const GOLDEN_RANDOM = [2, 6, 4, 5];
const GOLDEN_HOTSET = [2, 6, 4, 5, 2, 4, 5, 6, 6, 4, 5, 2];

describe('AccessStream sparse:F', () => {
  const touches = (pages: number, f: number, seed: number, chunk = 4096) => {
    const s = new AccessStream({ kind: 'sparse', fraction: f }, pages, new Prng(seed));
    const out: number[] = [];
    const buf = new Uint32Array(chunk);
    let n: number;
    while ((n = s.fill(buf)) > 0) out.push(...buf.subarray(0, n));
    return { s, out };
  };

  it('touches exactly round(F·pages) distinct pages in ascending order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 1, max: 64 }),
        (pages, f, seed, chunk) => {
          const { s, out } = touches(pages, f, seed, chunk);
          const k = Math.max(1, Math.min(pages, Math.round(f * pages)));
          expect(s.total).toBe(k);
          expect(out).toHaveLength(k);
          for (let i = 1; i < out.length; i++) expect(out[i]!).toBeGreaterThan(out[i - 1]!);
          expect(out[out.length - 1]!).toBeLessThan(pages);
        },
      ),
    );
  });

  it('is deterministic per seed, differs across seeds, and replays after reset', () => {
    const a = touches(1000, 0.25, 1).out;
    expect(touches(1000, 0.25, 1).out).toEqual(a);
    expect(touches(1000, 0.25, 2).out).not.toEqual(a);
    const { s, out } = touches(1000, 0.25, 3);
    s.reset();
    const again: number[] = [];
    const buf = new Uint32Array(7);
    let n: number;
    while ((n = s.fill(buf)) > 0) again.push(...buf.subarray(0, n));
    expect(again).toEqual(out);
  });

  it('streams a 16M-page region without a per-page array', () => {
    const s = new AccessStream({ kind: 'sparse', fraction: 0.001 }, 16 * 1024 * 1024, new Prng(1));
    expect(s.total).toBe(16777);
    const buf = new Uint32Array(16);
    expect(s.fill(buf)).toBe(16);
    expect((s as unknown as { perm: unknown }).perm).toBeNull();
  });

  it('parses and formats', () => {
    expect(parsePattern('sparse:0.25')).toEqual({ kind: 'sparse', fraction: 0.25 });
    expect(formatPattern({ kind: 'sparse', fraction: 0.25 })).toBe('sparse:0.25');
    expect(() => parsePattern('sparse:0')).toThrow("pattern: 'sparse:0' needs a fraction in (0, 1]");
  });
});
