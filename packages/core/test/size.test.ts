import fc from 'fast-check';
import { parseSize, parseCount, formatSize } from '../src/index.js';
import { thrownBy } from '@pte/test-utils';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
const PiB = 1024 ** 5;

describe('parseSize', () => {
  it.each<[string, number]>([
    ['4096', 4096],
    ['0', 0],
    ['4KiB', 4096],
    ['4kib', 4096],
    ['4K', 4096],
    ['4k', 4096],
    ['4kB', 4096],
    ['4KB', 4096],
    ['64MiB', 64 * MiB],
    ['64M', 64 * MiB],
    ['64MB', 64 * MiB],
    ['2G', 2 ** 31],
    ['2GiB', 2 ** 31],
    ['2gb', 2 ** 31],
    ['3T', 3 * TiB],
    ['3TiB', 3 * TiB],
    ['7P', 7 * PiB],
    ['1PiB', PiB],
    ['512B', 512],
    ['512b', 512],
    ['0x1000', 4096],
    ['0X1000', 4096],
    ['0xfF', 255],
    ['0x10K', 16 * KiB],
    ['0x1fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    [' 1 MiB ', MiB],
    ['\t2G\n', 2 * GiB],
    ['1.5K', 1536],
    ['1.5KiB', 1536],
    ['0.5M', 512 * KiB],
    ['2.25G', 2.25 * GiB],
    ['4096.0', 4096],
    ['007', 7],
  ])('parseSize(%j) = %d', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    ['zz'],
    [''],
    ['   '],
    ['-1'],
    ['1X'],
    ['1 X'],
    ['K'],
    ['1e3'],
    ['.5K'],
    ['1.'],
    ['1.5.K'],
    ['0x'],
    ['0x1.8K'],
    ['1KK'],
    ['1 K i B'],
    ['4 096'],
  ])('rejects %j as not a size', (text) => {
    const e = thrownBy(() => parseSize(text, 'guest.mem'));
    expect(e.code).toBe('parse');
    expect(e.message).toBe(`guest.mem: '${text}' is not a size`);
    expect(e.hint).toMatch(/4KiB/);
  });

  it.each([
    ['1.3'], // 1.3 bytes
    ['0.1K'], // 102.4 bytes
    ['1.0000001K'],
    ['16384P'], // 2^64
    ['8P'], // exactly 2^53
    ['9007199254740992'], // 2^53
    ['0x20000000000000'], // 2^53
    ['99999999999999999999999'],
    ['8192T'], // 2^53
  ])('rejects %j as not whole bytes below 2^53', (text) => {
    const e = thrownBy(() => parseSize(text, 'tlb.reach'));
    expect(e.code).toBe('parse');
    expect(e.message).toBe(`tlb.reach: '${text}' is not a whole number of bytes below 2^53`);
  });

  it('does not round a fraction too fine for a double into whole bytes', () => {
    // Each of these is a non-integer number of bytes whose nearest double is an integer.
    for (const text of ['1.00000000000000001', '9007199254740991.4', '4503599627370495.75', '1.0000000000000000001K']) {
      const e = thrownBy(() => parseSize(text));
      expect(e.message).toBe(`size: '${text}' is not a whole number of bytes below 2^53`);
    }
    // ...while long fractions that are exactly whole bytes are fine.
    expect(parseSize('1.0009765625K')).toBe(1025); // 1 + 1/1024 KiB
    expect(parseSize('0.00000095367431640625M')).toBe(1); // 2^-20 MiB
    expect(parseSize('0.50000000000000000000K')).toBe(512);
  });

  it('names the setting and quotes the untrimmed text in errors, defaulting to "size"', () => {
    expect(thrownBy(() => parseSize(' zz ')).message).toBe("size: ' zz ' is not a size");
    expect(thrownBy(() => parseSize('1X', 'mmu.page_size')).oneLine()).toBe(
      "mmu.page_size: '1X' is not a size (use bytes or a unit: 4096, 4KiB, 64MiB, 2G, 0x1000)",
    );
  });
});

describe('parseCount', () => {
  it.each<[string, number]>([
    ['0', 0],
    ['42', 42],
    ['007', 7],
    [' 12 ', 12],
    ['0x1F', 31],
    ['0X10', 16],
    ['0xffffffff', 2 ** 32 - 1],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ['0x1fffffffffffff', Number.MAX_SAFE_INTEGER],
  ])('parseCount(%j) = %d', (text, n) => {
    expect(parseCount(text)).toBe(n);
  });

  it.each([[''], ['-1'], ['1.5'], ['1K'], ['abc'], ['0x'], ['0xg'], ['+3'], ['1e3'], ['1 2']])(
    'rejects %j as not a non-negative integer',
    (text) => {
      const e = thrownBy(() => parseCount(text, '--steps'));
      expect(e.code).toBe('parse');
      expect(e.message).toBe(`--steps: '${text}' is not a non-negative integer`);
    },
  );

  it.each([['9007199254740992'], ['0x20000000000000'], ['123456789012345678901234567890']])(
    'rejects %j as too large',
    (text) => {
      const e = thrownBy(() => parseCount(text, '--seed'));
      expect(e.code).toBe('parse');
      expect(e.message).toBe(`--seed: '${text}' is too large`);
    },
  );

  it('defaults the setting name to "number"', () => {
    expect(thrownBy(() => parseCount('x')).message).toBe("number: 'x' is not a non-negative integer");
  });
});

describe('formatSize', () => {
  it.each<[number, string]>([
    [0, '0'],
    [1, '1'],
    [1023, '1023'],
    [1536, '1536'],
    [1024, '1KiB'],
    [4096, '4KiB'],
    [65536, '64KiB'],
    [1536 * 1024, '1536KiB'],
    [MiB, '1MiB'],
    [2 ** 31, '2GiB'],
    [3 * TiB, '3TiB'],
    [PiB, '1PiB'],
    [2 ** 60, '1024PiB'],
  ])('formatSize(%d) = %j', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  const SUFFIX = ['', 'K', 'M', 'G', 'T', 'P'];
  const IEC = ['', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

  it('round-trips n*1024^k through parseSize: formatSize(parseSize(`${n}${unit}`)) names n and the unit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }).chain((k) =>
          fc.tuple(
            fc.constant(k),
            fc
              .integer({ min: 1, max: Math.min(2 ** 30, Math.floor(Number.MAX_SAFE_INTEGER / 1024 ** k)) })
              .filter((n) => n % 1024 !== 0),
          ),
        ),
        fc.boolean(),
        ([k, n], iec) => {
          const bytes = parseSize(`${n}${iec ? IEC[k] : SUFFIX[k]}`);
          expect(bytes).toBe(n * 1024 ** k);
          expect(formatSize(bytes)).toBe(`${n}${IEC[k]}`);
        },
      ),
    );
  });

  it('parseSize(formatSize(b)) = b, and formatSize picks the largest exact unit', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 6 })
          .chain((k) =>
            fc.tuple(fc.constant(k), fc.integer({ min: 0, max: Math.floor(Number.MAX_SAFE_INTEGER / 1024 ** k) })),
          ),
        ([k, n]) => {
          const bytes = n * 1024 ** k;
          const text = formatSize(bytes);
          expect(parseSize(text)).toBe(bytes);
          const m = /^(\d+)(KiB|MiB|GiB|TiB|PiB)?$/.exec(text);
          expect(m).not.toBeNull();
          const v = Number(m![1]);
          const unit = m![2] ?? '';
          if (v !== 0 && unit !== 'PiB') expect(v % 1024).not.toBe(0);
          if (v === 0) expect(text).toBe('0');
        },
      ),
    );
  });
});
