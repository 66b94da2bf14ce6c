import { configError } from './errors.js';

/**
 * Costs are data (DESIGN principle 2). Each layer declares the entries it charges, each with a
 * default in cycles and the source of that default; `docs/cost-model.md` carries one line per
 * key. A run resolves the defaults into a flat table and applies the user's overrides.
 */
export interface CostEntry {
  /** Default cost in CPU cycles. */
  readonly cycles: number;
  /** Where the default comes from (a reference section, a measurement, or "estimate: why"). */
  readonly source: string;
}

export type CostDefaults<K extends string = string> = { readonly [P in K]: CostEntry };

/** Resolved costs in cycles, by key. */
export type CostTable<K extends string = string> = { readonly [P in K]: number };

/** The cycles of every entry, without the sources. */
export function resolveCosts<K extends string>(defaults: CostDefaults<K>): CostTable<K> {
  const out = {} as Record<K, number>;
  for (const key of Object.keys(defaults) as K[]) out[key] = defaults[key].cycles;
  return out;
}

/**
 * Apply overrides such as `{ "tlb.invlpg": 300 }`. An unknown key or a negative or non-finite
 * value is a config error naming the key and `where` it came from.
 */
export function overrideCosts<K extends string>(
  table: CostTable<K>,
  overrides: Readonly<Record<string, number>>,
  where = 'cost override',
): CostTable<K> {
  const out = { ...table } as Record<string, number>;
  for (const [key, value] of Object.entries(overrides)) {
    if (!Object.hasOwn(table, key))
      throw configError(`${where}: unknown cost '${key}'`, 'see docs/cost-model.md for the keys');
    if (!Number.isFinite(value) || value < 0) {
      throw configError(`${where}: cost '${key}' must be a non-negative number of cycles, got ${value}`);
    }
    out[key] = value;
  }
  return out as CostTable<K>;
}

/** Merge several layers' defaults; a key declared twice is a programming error. */
export function mergeCostDefaults(...parts: CostDefaults[]): CostDefaults {
  const out: Record<string, CostEntry> = {};
  for (const part of parts) {
    for (const [key, entry] of Object.entries(part)) {
      if (Object.hasOwn(out, key)) throw new Error(`cost key '${key}' declared twice`);
      out[key] = entry;
    }
  }
  return out;
}
