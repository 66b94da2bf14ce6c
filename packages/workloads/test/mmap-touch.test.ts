import { parseMmapTouch, MMAP_TOUCH_KEYS, KNOWN_MMAP_TOUCH_KEYS, type MmapTouchParams } from '../src/index.js';
import { thrownBy } from './helpers.js';

const MiB = 1024 * 1024;
const SIZE_HINT = 'use bytes or a unit: 4096, 4KiB, 64MiB, 2G, 0x1000';

const DEFAULTS: MmapTouchParams = {
  backing: 'file',
  share: 'private',
  size: 64 * MiB,
  pages: 16384,
  cache: 'written',
  ioChunk: MiB,
  readAheadKb: 128,
  advice: 'normal',
  pattern: { kind: 'seq' },
  access: 'read',
  runs: 1,
  passes: 1,
  fork: false,
  teardown: 'exit',
  faultAround: undefined,
  prefaultPte: undefined,
  anonPrefault: undefined,
};

describe('parseMmapTouch', () => {
  it('fills every default', () => {
    expect(parseMmapTouch({})).toEqual(DEFAULTS);
  });

  it('reads every key', () => {
    expect(
      parseMmapTouch({
        backing: 'anon',
        share: 'shared',
        size: '1GiB',
        cache: 'readback',
        io_chunk: '256K',
        read_ahead_kb: '512',
        advice: 'hugepage',
        pattern: 'hotset:0.1:4',
        access: 'write',
        runs: '64',
        passes: '3',
        fork: 'on',
        teardown: 'munmap',
        fault_around: '16',
        prefault_pte: 'old',
        anon_prefault: 'mthp:16K+64K',
      }),
    ).toEqual({
      backing: 'anon',
      share: 'shared',
      size: 1024 * MiB,
      pages: 262144,
      cache: 'readback',
      ioChunk: 256 * 1024,
      readAheadKb: 512,
      advice: 'hugepage',
      pattern: { kind: 'hotset', fraction: 0.1, repeats: 4 },
      access: 'write',
      runs: 64,
      passes: 3,
      fork: true,
      teardown: 'munmap',
      faultAround: 16,
      prefaultPte: 'old',
      anonPrefault: { kind: 'mthp', orders: [4, 2] },
    });
  });

  it.each<[Record<string, string>, Partial<MmapTouchParams>]>([
    [{ cache: 'warm' }, { cache: 'written', ioChunk: MiB }],
    [{ cache: 'written' }, { cache: 'written', ioChunk: MiB }],
    [{ cache: 'readback' }, { cache: 'readback', ioChunk: 128 * 1024 }],
    [{ cache: 'cold' }, { cache: 'cold', ioChunk: 0 }],
    [
      { cache: 'cold', io_chunk: '64K' },
      { cache: 'cold', ioChunk: 0 },
    ],
    [
      { cache: 'warm', io_chunk: '4096' },
      { cache: 'written', ioChunk: 4096 },
    ],
    [{ size: '4096' }, { size: 4096, pages: 1 }],
    [{ size: '64G' }, { size: 64 * 1024 * MiB, pages: 16 * MiB }],
    [{ size: ' 2M ' }, { size: 2 * MiB, pages: 512 }],
    [{ read_ahead_kb: '0' }, { readAheadKb: 0 }],
    [{ advice: 'random' }, { advice: 'random' }],
    [{ advice: 'sequential' }, { advice: 'sequential' }],
    [{ advice: 'willneed' }, { advice: 'willneed' }],
    [{ pattern: 'per2m' }, { pattern: { kind: 'per2m' } }],
    [{ pattern: 'stride:16' }, { pattern: { kind: 'stride', stride: 16 } }],
    [{ anon_prefault: 'off' }, { anonPrefault: { kind: 'off' } }],
    [{ anon_prefault: 'fixed:8' }, { anonPrefault: { kind: 'fixed', pages: 8 } }],
    [{ anon_prefault: 'adaptive' }, { anonPrefault: { kind: 'adaptive', maxOrder: 3 } }],
    [{ prefault_pte: 'young' }, { prefaultPte: 'young' }],
    [{ fault_around: '1' }, { faultAround: 1 }],
  ])('%j', (set, expected) => {
    expect(parseMmapTouch(set)).toEqual({ ...DEFAULTS, ...expected });
  });

  it('ignores keys it does not know, and inherited properties', () => {
    const set = Object.create({ size: 'bogus' }) as Record<string, string>;
    set['platform_thing'] = 'x';
    set['seed'] = '7';
    expect(parseMmapTouch(set)).toEqual(DEFAULTS);
  });

  it.each<[string, string, 'config' | 'parse', string]>([
    ['backing', 'disk', 'config', "--set backing: 'disk' is not one of file, anon"],
    ['backing', 'File', 'config', "--set backing: 'File' is not one of file, anon"],
    ['share', 'both', 'config', "--set share: 'both' is not one of shared, private"],
    ['size', '12Q', 'parse', `--set size: '12Q' is not a size (${SIZE_HINT})`],
    ['size', '', 'parse', `--set size: '' is not a size (${SIZE_HINT})`],
    ['size', '0', 'config', "--set size: '0' is not a positive multiple of 4KiB"],
    ['size', '5000', 'config', "--set size: '5000' is not a positive multiple of 4KiB"],
    ['size', '1.5K', 'config', "--set size: '1.5K' is not a positive multiple of 4KiB"],
    ['size', '16T', 'config', "--set size: '16T' is too large: a region holds at most 2^32 − 1 pages"],
    ['cache', 'hot', 'config', "--set cache: 'hot' is not one of cold, written, readback, warm"],
    ['io_chunk', '1000', 'config', "--set io_chunk: '1000' is not a positive multiple of 4KiB"],
    ['io_chunk', '0', 'config', "--set io_chunk: '0' is not a positive multiple of 4KiB"],
    ['io_chunk', 'lots', 'parse', `--set io_chunk: 'lots' is not a size (${SIZE_HINT})`],
    ['read_ahead_kb', '-1', 'parse', "--set read_ahead_kb: '-1' is not a non-negative integer"],
    ['read_ahead_kb', '128K', 'parse', "--set read_ahead_kb: '128K' is not a non-negative integer"],
    [
      'advice',
      'dontneed',
      'config',
      "--set advice: 'dontneed' is not one of normal, random, sequential, willneed, hugepage",
    ],
    ['pattern', 'stride:0', 'config', "--set pattern: 'stride:0' needs a stride ≥ 1"],
    [
      'pattern',
      'zipf',
      'config',
      "--set pattern: 'zipf' is not a pattern (one of seq, reverse, stride:N, random:FRACTION, sparse:FRACTION, hotset:FRACTION:REPEATS, per2m, order:FILE)",
    ],
    ['access', 'exec', 'config', "--set access: 'exec' is not one of read, write"],
    ['runs', '0', 'config', "--set runs: '0' must be at least 1"],
    ['runs', 'two', 'parse', "--set runs: 'two' is not a non-negative integer"],
    ['passes', '0', 'config', "--set passes: '0' must be from 1 to 1000"],
    ['passes', '1001', 'config', "--set passes: '1001' must be from 1 to 1000"],
    ['fork', 'yes', 'config', "--set fork: 'yes' is not one of on, off"],
    [
      'fault_around',
      '3',
      'config',
      "--set fault_around: '3' is not a power of two from 1 to 512 (pages, e.g. 16 for 64KiB; 1 turns fault-around off)",
    ],
    ['prefault_pte', 'warm', 'config', "--set prefault_pte: 'warm' is not one of young, old"],
    [
      'anon_prefault',
      'mthp:4K',
      'config',
      "--set anon_prefault: 'mthp:4K' lists '4K', which is not an mTHP size (sizes: 8K, 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M)",
    ],
  ])('--set %s=%j: %s error', (key, value, code, line) => {
    const e = thrownBy(() => parseMmapTouch({ [key]: value }));
    expect(e.code).toBe(code);
    expect(e.oneLine()).toBe(line);
  });

  it('checks io_chunk even when cache=cold ignores it', () => {
    expect(thrownBy(() => parseMmapTouch({ cache: 'cold', io_chunk: '100' })).oneLine()).toBe(
      "--set io_chunk: '100' is not a positive multiple of 4KiB",
    );
  });
});

describe('MMAP_TOUCH_KEYS', () => {
  it('lists the SCENARIOS keys, each with its default', () => {
    expect([...KNOWN_MMAP_TOUCH_KEYS].sort()).toEqual(
      [
        'backing',
        'share',
        'size',
        'cache',
        'io_chunk',
        'read_ahead_kb',
        'advice',
        'pattern',
        'access',
        'runs',
        'passes',
        'fork',
        'teardown',
        'fault_around',
        'prefault_pte',
        'anon_prefault',
      ].sort(),
    );
    expect(Object.keys(MMAP_TOUCH_KEYS)).toEqual(KNOWN_MMAP_TOUCH_KEYS);
    for (const key of KNOWN_MMAP_TOUCH_KEYS) {
      expect(MMAP_TOUCH_KEYS[key]).toMatch(/\(default [^)]+\)$/);
      expect(MMAP_TOUCH_KEYS[key]).not.toMatch(/\n/);
    }
  });

  it('every key is read by parseMmapTouch', () => {
    const base = parseMmapTouch({});
    const changed: Record<string, string> = {
      backing: 'anon',
      share: 'shared',
      size: '4K',
      cache: 'cold',
      io_chunk: '8K',
      read_ahead_kb: '0',
      advice: 'random',
      pattern: 'reverse',
      access: 'write',
      runs: '2',
      passes: '2',
      fork: 'on',
      teardown: 'munmap',
      fault_around: '4',
      prefault_pte: 'old',
      anon_prefault: 'off',
    };
    for (const key of KNOWN_MMAP_TOUCH_KEYS) {
      const value = key === 'io_chunk' ? { io_chunk: '8K' } : { [key]: changed[key]! };
      expect(parseMmapTouch(value)).not.toEqual(base);
    }
  });
});
