import {
  parseFaultAround,
  parsePrefaultPte,
  parseAnonPrefault,
  formatAnonPrefault,
  type AnonPrefaultSpec,
} from '../src/index.js';
import { thrownBy } from './helpers.js';

const MTHP_HINT = 'sizes: 8K, 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M';

describe('parseFaultAround', () => {
  it.each<[string, number]>([
    ['1', 1],
    ['2', 2],
    ['16', 16],
    [' 64 ', 64],
    ['512', 512],
    ['016', 16],
  ])('%j → %d pages', (text, pages) => {
    expect(parseFaultAround(text)).toBe(pages);
  });

  it.each(['0', '3', '24', '1024', '-16', '16.0', '64KiB', '0x10', ''])('rejects %j', (text) => {
    const e = thrownBy(() => parseFaultAround(text));
    expect(e.code).toBe('config');
    expect(e.oneLine()).toBe(
      `--set fault_around: '${text}' is not a power of two from 1 to 512 (pages, e.g. 16 for 64KiB; 1 turns fault-around off)`,
    );
  });

  it('names `where`', () => {
    expect(thrownBy(() => parseFaultAround('3', 'profile fault_around')).message).toBe(
      "profile fault_around: '3' is not a power of two from 1 to 512",
    );
  });
});

describe('parsePrefaultPte', () => {
  it.each(['young', 'old'])('%s', (text) => expect(parsePrefaultPte(text)).toBe(text));
  it('ignores surrounding whitespace', () => expect(parsePrefaultPte(' old ')).toBe('old'));
  it.each(['Young', 'dirty', ''])('rejects %j', (text) => {
    const e = thrownBy(() => parsePrefaultPte(text));
    expect(e.code).toBe('config');
    expect(e.oneLine()).toBe(`--set prefault_pte: '${text}' is not one of young, old`);
  });
});

describe('parseAnonPrefault', () => {
  it.each<[string, AnonPrefaultSpec]>([
    ['off', { kind: 'off' }],
    [' off ', { kind: 'off' }],
    ['adaptive', { kind: 'adaptive', maxOrder: 3 }],
    ['fixed:1', { kind: 'fixed', pages: 1 }],
    ['fixed:8', { kind: 'fixed', pages: 8 }],
    ['fixed:512', { kind: 'fixed', pages: 512 }],
    ['mthp:64K', { kind: 'mthp', orders: [4] }],
    ['mthp:16K+64K', { kind: 'mthp', orders: [4, 2] }],
    ['mthp:16K,32K,64K', { kind: 'mthp', orders: [4, 3, 2] }],
    ['mthp:8K+16K+32K+64K+128K+256K+512K+1M+2M', { kind: 'mthp', orders: [9, 8, 7, 6, 5, 4, 3, 2, 1] }],
    ['mthp:2M+8K', { kind: 'mthp', orders: [9, 1] }],
    ['mthp:64KiB+2MiB', { kind: 'mthp', orders: [9, 4] }],
    ['mthp:64k', { kind: 'mthp', orders: [4] }],
    ['mthp:64K+64K', { kind: 'mthp', orders: [4] }],
    ['mthp: 64K + 16K ', { kind: 'mthp', orders: [4, 2] }],
  ])('%j', (text, spec) => {
    expect(parseAnonPrefault(text)).toEqual(spec);
  });

  it.each<[string, string]>([
    ['', "--set anon_prefault: '' is not off, fixed:<pages>, adaptive or mthp:<sizes>"],
    ['on', "--set anon_prefault: 'on' is not off, fixed:<pages>, adaptive or mthp:<sizes>"],
    ['fixed', "--set anon_prefault: 'fixed' is not off, fixed:<pages>, adaptive or mthp:<sizes>"],
    ['mthp', "--set anon_prefault: 'mthp' is not off, fixed:<pages>, adaptive or mthp:<sizes>"],
    ['fixed:0', "--set anon_prefault: 'fixed:0' needs a whole number of pages ≥ 1: fixed:<pages>"],
    ['fixed:', "--set anon_prefault: 'fixed:' needs a whole number of pages ≥ 1: fixed:<pages>"],
    ['fixed:2.5', "--set anon_prefault: 'fixed:2.5' needs a whole number of pages ≥ 1: fixed:<pages>"],
    ['fixed:-4', "--set anon_prefault: 'fixed:-4' needs a whole number of pages ≥ 1: fixed:<pages>"],
    ['mthp:', `--set anon_prefault: 'mthp:' needs sizes separated by + or , (e.g. mthp:2M+64K; ${MTHP_HINT})`],
    [
      'mthp:64K++2M',
      `--set anon_prefault: 'mthp:64K++2M' needs sizes separated by + or , (e.g. mthp:2M+64K; ${MTHP_HINT})`,
    ],
    ['mthp:4K', `--set anon_prefault: 'mthp:4K' lists '4K', which is not an mTHP size (${MTHP_HINT})`],
    ['mthp:64K+3K', `--set anon_prefault: 'mthp:64K+3K' lists '3K', which is not an mTHP size (${MTHP_HINT})`],
    ['mthp:4M', `--set anon_prefault: 'mthp:4M' lists '4M', which is not an mTHP size (${MTHP_HINT})`],
    ['mthp:big', `--set anon_prefault: 'mthp:big' lists 'big', which is not an mTHP size (${MTHP_HINT})`],
    ['mthp:64K;2M', `--set anon_prefault: 'mthp:64K;2M' lists '64K;2M', which is not an mTHP size (${MTHP_HINT})`],
  ])('rejects %j', (text, line) => {
    const e = thrownBy(() => parseAnonPrefault(text));
    expect(e.code).toBe('config');
    expect(e.oneLine()).toBe(line);
  });

  it.each<[string, string]>([
    ['off', 'off'],
    ['adaptive', 'adaptive'],
    ['fixed:08', 'fixed:8'],
    ['mthp:16K,64KiB,2M', 'mthp:2M+64K+16K'],
    ['mthp:8K+1M', 'mthp:1M+8K'],
  ])('formatAnonPrefault(parseAnonPrefault(%j)) = %j, which parses back to the same spec', (text, canonical) => {
    const spec = parseAnonPrefault(text);
    expect(formatAnonPrefault(spec)).toBe(canonical);
    expect(parseAnonPrefault(canonical)).toEqual(spec);
  });
});
