import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Prng } from '@pte/core';
import { AccessStream, parsePattern, formatPattern, type PatternSpec } from '../src/index.js';
import { thrownBy } from './helpers.js';

const GRAMMAR =
  'one of seq, reverse, stride:N, random:FRACTION, sparse:FRACTION, hotset:FRACTION:REPEATS, per2m, order:FILE';

describe('parsePattern', () => {
  it.each<[string, PatternSpec]>([
    ['seq', { kind: 'seq' }],
    [' seq\n', { kind: 'seq' }],
    ['reverse', { kind: 'reverse' }],
    ['per2m', { kind: 'per2m' }],
    ['stride:1', { kind: 'stride', stride: 1 }],
    ['stride:64', { kind: 'stride', stride: 64 }],
    ['stride:007', { kind: 'stride', stride: 7 }],
    ['stride:4294967295', { kind: 'stride', stride: 4294967295 }],
    ['random:0.5', { kind: 'random', fraction: 0.5 }],
    ['random:.25', { kind: 'random', fraction: 0.25 }],
    ['random:1', { kind: 'random', fraction: 1 }],
    ['random:1.0', { kind: 'random', fraction: 1 }],
    ['random:1e-3', { kind: 'random', fraction: 0.001 }],
    ['random:5E-1', { kind: 'random', fraction: 0.5 }],
    ['hotset:0.1:10', { kind: 'hotset', fraction: 0.1, repeats: 10 }],
    ['hotset:1:1', { kind: 'hotset', fraction: 1, repeats: 1 }],
  ])('parsePattern(%j)', (text, spec) => {
    expect(parsePattern(text)).toEqual(spec);
  });

  it.each<[string, string]>([
    ['', `pattern: '' is not a pattern (${GRAMMAR})`],
    ['foo', `pattern: 'foo' is not a pattern (${GRAMMAR})`],
    ['SEQ', `pattern: 'SEQ' is not a pattern (${GRAMMAR})`],
    ['zipf:1.1', `pattern: 'zipf:1.1' is not a pattern (${GRAMMAR})`],
    ['seq:1', "pattern: 'seq:1' takes no argument"],
    ['per2m:', "pattern: 'per2m:' takes no argument"],
    ['reverse:2', "pattern: 'reverse:2' takes no argument"],
    ['stride', "pattern: 'stride' needs one argument: stride:N"],
    ['stride:2:3', "pattern: 'stride:2:3' needs one argument: stride:N"],
    ['stride:0', "pattern: 'stride:0' needs a stride ≥ 1"],
    ['stride:', "pattern: 'stride:' needs a whole-number stride ≥ 1"],
    ['stride:1.5', "pattern: 'stride:1.5' needs a whole-number stride ≥ 1"],
    ['stride:-1', "pattern: 'stride:-1' needs a whole-number stride ≥ 1"],
    ['stride:0x10', "pattern: 'stride:0x10' needs a whole-number stride ≥ 1"],
    ['stride:4294967296', "pattern: 'stride:4294967296' needs a stride below 2^32"],
    ['random', "pattern: 'random' needs one argument: random:FRACTION"],
    ['random:0', "pattern: 'random:0' needs a fraction in (0, 1]"],
    ['random:0.0', "pattern: 'random:0.0' needs a fraction in (0, 1]"],
    ['random:1.5', "pattern: 'random:1.5' needs a fraction in (0, 1]"],
    ['random:-0.5', "pattern: 'random:-0.5' needs a fraction in (0, 1]"],
    ['random:abc', "pattern: 'random:abc' needs a fraction in (0, 1]"],
    ['random:', "pattern: 'random:' needs a fraction in (0, 1]"],
    ['random:50%', "pattern: 'random:50%' needs a fraction in (0, 1]"],
    ['random:Infinity', "pattern: 'random:Infinity' needs a fraction in (0, 1]"],
    ['hotset:0.1', "pattern: 'hotset:0.1' needs two arguments: hotset:FRACTION:REPEATS"],
    ['hotset:0.1:2:3', "pattern: 'hotset:0.1:2:3' needs two arguments: hotset:FRACTION:REPEATS"],
    ['hotset:0:3', "pattern: 'hotset:0:3' needs a fraction in (0, 1]"],
    ['hotset:0.1:0', "pattern: 'hotset:0.1:0' needs repeats ≥ 1"],
    ['hotset:0.1:x', "pattern: 'hotset:0.1:x' needs a whole number of repeats ≥ 1"],
    ['hotset:0.1:4294967296', "pattern: 'hotset:0.1:4294967296' needs repeats below 2^32"],
  ])('rejects %j', (text, line) => {
    const e = thrownBy(() => parsePattern(text));
    expect(e.code).toBe('config');
    expect(e.oneLine()).toBe(line);
  });

  it('names `where` in the error', () => {
    expect(thrownBy(() => parsePattern('stride:0', '--set pattern')).oneLine()).toBe(
      "--set pattern: 'stride:0' needs a stride ≥ 1",
    );
  });
});

describe('formatPattern', () => {
  it.each<[string, string]>([
    ['seq', 'seq'],
    [' reverse ', 'reverse'],
    ['per2m', 'per2m'],
    ['stride:007', 'stride:7'],
    ['random:.50', 'random:0.5'],
    ['random:1.0', 'random:1'],
    ['hotset:0.10:03', 'hotset:0.1:3'],
  ])('canonical text of %j is %j', (text, canonical) => {
    expect(formatPattern(parsePattern(text))).toBe(canonical);
  });

  it('parsePattern(formatPattern(spec)) = spec', () => {
    const fraction = fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true });
    const spec: fc.Arbitrary<PatternSpec> = fc.oneof(
      fc.constantFrom<PatternSpec>({ kind: 'seq' }, { kind: 'reverse' }, { kind: 'per2m' }),
      fc.integer({ min: 1, max: 0xffffffff }).map((stride): PatternSpec => ({ kind: 'stride', stride })),
      fraction.map((f): PatternSpec => ({ kind: 'random', fraction: f })),
      fc
        .tuple(fraction, fc.integer({ min: 1, max: 0xffffffff }))
        .map(([f, repeats]): PatternSpec => ({ kind: 'hotset', fraction: f, repeats })),
    );
    fc.assert(fc.property(spec, (s) => expect(parsePattern(formatPattern(s))).toEqual(s)));
  });
});

describe('order:FILE (a given page order, as apps/pte-lab/native/probe.c writes it)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pte-order-'));
  const write = (name: string, bytes: Buffer) => {
    const f = join(dir, name);
    writeFileSync(f, bytes);
    return f;
  };
  const words = (xs: number[]) => {
    const b = Buffer.alloc(4 * xs.length);
    xs.forEach((x, i) => b.writeUInt32LE(x, 4 * i));
    return b;
  };

  it("replays exactly the file's little-endian indices, repeats and all, and formats back to order:FILE", () => {
    const f = write('a.order', words([7, 3, 3, 0, 9]));
    const spec = parsePattern(`order:${f}`);
    expect(formatPattern(spec)).toBe(`order:${f}`);
    const s = new AccessStream(spec, 10, new Prng(1));
    expect(s.total).toBe(5);
    const out = new Uint32Array(2);
    const got: number[] = [];
    let n: number;
    while ((n = s.fill(out)) > 0) got.push(...out.subarray(0, n));
    expect(got).toEqual([7, 3, 3, 0, 9]);
    s.reset();
    expect(s.fill(new Uint32Array(8))).toBe(5);
  });

  it.each([
    ['order:', /'order:' needs a file of page indices/],
    [`order:${join(tmpdir(), 'pte-no-such-order')}`, /cannot read it: no such file$/],
  ])('%s is refused in one line', (text, message) => {
    expect(() => parsePattern(text)).toThrow(message);
  });

  it('a file that is not whole 32-bit words, or an index outside the region, is refused', () => {
    const odd = write('odd.order', Buffer.from([1, 2, 3]));
    expect(() => parsePattern(`order:${odd}`)).toThrow(/3 bytes is not a whole number of 32-bit page indices/);
    const far = write('far.order', words([1, 10]));
    expect(() => new AccessStream(parsePattern(`order:${far}`), 10, new Prng(1))).toThrow(
      /page 10 \(entry 1\) is outside the region of 10 pages/,
    );
  });
});
