import {
  resolveCosts,
  overrideCosts,
  mergeCostDefaults,
  isPteError,
  PteError,
  type CostDefaults,
} from '../src/index.js';

const DEFAULTS: CostDefaults<'tlb.invlpg' | 'tlb.walk' | 'guest.fault'> = {
  'tlb.invlpg': { cycles: 250, source: 'estimate: one invalidation' },
  'tlb.walk': { cycles: 30, source: 'SDM 4.10' },
  'guest.fault': { cycles: 1200, source: 'measurement' },
};

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, nothing was thrown');
}

describe('resolveCosts', () => {
  it('keeps the cycles and strips the sources', () => {
    expect(resolveCosts(DEFAULTS)).toStrictEqual({ 'tlb.invlpg': 250, 'tlb.walk': 30, 'guest.fault': 1200 });
    expect(resolveCosts({})).toStrictEqual({});
  });
});

describe('overrideCosts', () => {
  const table = resolveCosts(DEFAULTS);

  it('applies known keys and returns a new table, leaving the input alone', () => {
    const out = overrideCosts(table, { 'tlb.invlpg': 300, 'guest.fault': 0 });
    expect(out).toStrictEqual({ 'tlb.invlpg': 300, 'tlb.walk': 30, 'guest.fault': 0 });
    expect(table).toStrictEqual({ 'tlb.invlpg': 250, 'tlb.walk': 30, 'guest.fault': 1200 });
    expect(out).not.toBe(table);
    expect(overrideCosts(table, {})).toStrictEqual(table);
    expect(overrideCosts(table, { 'tlb.walk': 12.5 })['tlb.walk']).toBe(12.5);
  });

  it('rejects an unknown key, naming the key and where it came from', () => {
    const e = thrownBy(() => overrideCosts(table, { 'tlb.flush_all': 10 }, 'pte-lab.json costs'));
    expect(isPteError(e)).toBe(true);
    const pe = e as PteError;
    expect(pe.code).toBe('config');
    expect(pe.message).toBe("pte-lab.json costs: unknown cost 'tlb.flush_all'");
    expect(pe.oneLine()).toBe("pte-lab.json costs: unknown cost 'tlb.flush_all' (see docs/cost-model.md for the keys)");
  });

  it('defaults `where` to "cost override"', () => {
    expect((thrownBy(() => overrideCosts(table, { nope: 1 })) as PteError).message).toBe(
      "cost override: unknown cost 'nope'",
    );
  });

  it('rejects keys that only exist on Object.prototype', () => {
    for (const key of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      const overrides = JSON.parse(`{"${key}": 5}`) as Record<string, number>;
      const e = thrownBy(() => overrideCosts(table, overrides, '--cost'));
      expect(isPteError(e)).toBe(true);
      expect((e as PteError).message).toBe(`--cost: unknown cost '${key}'`);
    }
  });

  it.each<[number, string]>([
    [-1, '-1'],
    [-0.5, '-0.5'],
    [NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ])('rejects the value %p', (value, shown) => {
    const e = thrownBy(() => overrideCosts(table, { 'tlb.walk': value }, 'flag --cost'));
    expect(isPteError(e)).toBe(true);
    expect((e as PteError).code).toBe('config');
    expect((e as PteError).message).toBe(
      `flag --cost: cost 'tlb.walk' must be a non-negative number of cycles, got ${shown}`,
    );
  });

  it('rejects a non-number value from untyped config', () => {
    const e = thrownBy(() => overrideCosts(table, { 'tlb.walk': '300' as unknown as number }));
    expect((e as PteError).message).toBe(
      "cost override: cost 'tlb.walk' must be a non-negative number of cycles, got 300",
    );
  });
});

describe('mergeCostDefaults', () => {
  it('merges the layers', () => {
    const merged = mergeCostDefaults(
      { 'tlb.walk': { cycles: 30, source: 'a' } },
      { 'guest.fault': { cycles: 1200, source: 'b' } },
      {},
    );
    expect(merged).toStrictEqual({
      'tlb.walk': { cycles: 30, source: 'a' },
      'guest.fault': { cycles: 1200, source: 'b' },
    });
    expect(resolveCosts(merged)).toStrictEqual({ 'tlb.walk': 30, 'guest.fault': 1200 });
    expect(mergeCostDefaults()).toStrictEqual({});
  });

  it('rejects a key declared twice, across or within the arguments', () => {
    const e = thrownBy(() =>
      mergeCostDefaults({ 'tlb.walk': { cycles: 30, source: 'a' } }, { 'tlb.walk': { cycles: 31, source: 'b' } }),
    );
    expect(e).toBeInstanceOf(Error);
    expect(isPteError(e)).toBe(false); // a programming error, not a user error
    expect((e as Error).message).toBe("cost key 'tlb.walk' declared twice");
    const part = { 'x.y': { cycles: 1, source: 's' } };
    expect(() => mergeCostDefaults(part, part)).toThrow("cost key 'x.y' declared twice");
  });

  it('does not mistake Object.prototype members for earlier declarations', () => {
    const merged = mergeCostDefaults(
      { constructor: { cycles: 1, source: 's' } },
      { toString: { cycles: 2, source: 't' } },
    );
    expect(Object.keys(merged)).toEqual(['constructor', 'toString']);
    expect(resolveCosts(merged)).toStrictEqual({ constructor: 1, toString: 2 });
  });
});
