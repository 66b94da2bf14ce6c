import { configError, isPteError, parseCount, PteError, usageError } from '@pte/core';
import { COMMON_KEYS, parseSetPairs, resolveRun, type RunOptions } from '../run-scenario.js';
import { getScenario } from '../scenarios/catalogue.js';

/** One `--vary key=v1,v2,...`: the key and its values in the order given. */
export interface VaryAxis {
  readonly key: string;
  readonly values: readonly string[];
}

/** One point of a sweep: its index in product order, the varied values, and the run it makes. */
export interface SweepPoint {
  readonly index: number;
  /** The varied keys' values, in --vary order. */
  readonly vary: ReadonlyArray<readonly [string, string]>;
  readonly options: RunOptions;
  /** The point's full parameter set, canonical (the journal matches points by it). */
  readonly key: string;
}

/** The options every point shares (the sweep's own --platform, --profile, --set, --seed, --check). */
export type SweepBase = RunOptions;

const RUN_KEYS = ['platform', 'profile', 'seed'] as const;

/** Parse the `--vary` flags: key=v1,v2,... with a known key, no empty or repeated value, no key twice. */
export function parseVary(specs: readonly string[], scenarioName: string, base: SweepBase): VaryAxis[] {
  if (specs.length === 0) throw usageError('sweep needs at least one --vary key=v1,v2,...');
  const scenario = getScenario(scenarioName);
  const baseSet = parseSetPairs(base.set);
  const axes: VaryAxis[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw usageError(`--vary '${spec}' is not key=v1,v2,...`);
    const key = spec.slice(0, eq).trim();
    const values = spec
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim());
    const known =
      (RUN_KEYS as readonly string[]).includes(key) ||
      key in scenario.keys ||
      (key in COMMON_KEYS && key !== 'cost.<key>') ||
      (key.startsWith('cost.') && key.length > 5);
    if (!known) {
      throw configError(
        `unknown --vary key '${key}' for ${scenario.name}`,
        `keys: ${[...RUN_KEYS, ...Object.keys(scenario.keys), ...Object.keys(COMMON_KEYS)].join(', ')}`,
      );
    }
    if (axes.some((a) => a.key === key))
      throw usageError(`--vary ${key} is given twice (list all its values in one --vary)`);
    if (key in baseSet || (key === 'platform' && base.platform !== undefined)) {
      throw usageError(
        `--vary ${key} conflicts with --${key in baseSet ? `set ${key}` : key}: a key is either fixed or varied`,
      );
    }
    for (const v of values) if (v === '') throw usageError(`--vary ${key}: empty value in '${spec.slice(eq + 1)}'`);
    const dup = values.find((v, i) => values.indexOf(v) !== i);
    if (dup !== undefined) throw usageError(`--vary ${key}: value '${dup}' is given twice`);
    axes.push({ key, values });
  }
  return axes;
}

/** The run options of one point: the base with the varied values applied (scenario keys as --set). */
function pointOptions(base: SweepBase, vary: ReadonlyArray<readonly [string, string]>): RunOptions {
  let platform = base.platform;
  let profile = base.profile;
  let seed = base.seed;
  const set = [...base.set];
  for (const [k, v] of vary) {
    if (k === 'platform') platform = v;
    else if (k === 'profile') profile = v;
    else if (k === 'seed') seed = parseCount(v, 'seed');
    else set.push(`${k}=${v}`);
  }
  return {
    scenario: base.scenario,
    ...(platform !== undefined ? { platform } : {}),
    profile,
    set,
    seed,
    ...(base.costs !== undefined ? { costs: base.costs } : {}),
    check: base.check,
  };
}

/** The cartesian product of the axes in order (the last axis varies fastest). */
export function product(axes: readonly VaryAxis[]): Array<Array<readonly [string, string]>> {
  let out: Array<Array<readonly [string, string]>> = [[]];
  for (const a of axes) out = out.flatMap((prefix) => a.values.map((v) => [...prefix, [a.key, v] as const]));
  return out;
}

/** Prefix an error from resolving a point with the varied values that produced it. */
function withWhere(e: unknown, where: string): unknown {
  if (!isPteError(e)) return e;
  return new PteError(e.code, `${where}: ${e.message}`, e.hint);
}

/**
 * Every point of the sweep, each checked by resolving its options without running it: first each
 * varied value alone (so an error names one key=value), then every combination.
 */
export function sweepPoints(base: SweepBase, axes: readonly VaryAxis[]): SweepPoint[] {
  for (const a of axes) {
    for (const v of a.values) {
      try {
        resolveRun(pointOptions(base, [[a.key, v]]));
      } catch (e) {
        throw withWhere(e, `--vary ${a.key}=${v}`);
      }
    }
  }
  return product(axes).map((vary, index) => {
    const options = pointOptions(base, vary);
    let key: string;
    try {
      key = pointKey(options);
    } catch (e) {
      throw withWhere(e, `sweep point ${vary.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    return { index, vary, options, key };
  });
}

/** The full, canonical parameter set of a run (resolves it, so it also checks it). */
export function pointKey(o: RunOptions): string {
  const r = resolveRun(o);
  const set = Object.entries(r.set).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({
    scenario: r.scenario.name,
    platform: r.machineOptions.platform,
    profile: r.machineOptions.profile.name,
    seed: o.seed,
    check: o.check,
    costs: r.costFile?.costs ?? null, // what the file said, so --resume notices an edited file
    set,
  });
}
