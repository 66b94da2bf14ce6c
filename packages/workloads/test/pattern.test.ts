import fc from 'fast-check';
import { parsePattern, formatPattern, type PatternSpec } from '../src/index.js';
import { thrownBy } from './helpers.js';

const GRAMMAR = 'one of seq, reverse, stride:N, random:FRACTION, sparse:FRACTION, hotset:FRACTION:REPEATS, per2m';

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
