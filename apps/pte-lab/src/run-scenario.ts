import { configError, parseCount, parseSize, PteError, usageError } from '@pte/core';
import { Machine, parsePlatform, resolveRunCosts, sortedRecord, type RunResult } from '@pte/machine';
import { DEFAULT_PROFILE, getProfile, type VmPolicy } from '@pte/vm';
import { formatAnonPrefault, parseAnonPrefault, parseFaultAround, parsePrefaultPte } from '@pte/workloads';
import { getScenario } from './scenarios/catalogue.js';

/** Keys every scenario takes besides its own (SCENARIOS.md "the policy keys every scenario takes"). */
export const COMMON_KEYS: Readonly<Record<string, string>> = {
  fault_around: 'fault-around window in pages, a power of two from 1 to 512 (default: the profile\'s)',
  prefault_pte: 'young | old: Accessed bit of prefaulted PTEs (default: the profile\'s)',
  anon_prefault: 'off | fixed:<pages> | adaptive | mthp:<sizes joined by +> (default: the profile\'s)',
  mem: 'guest memory with unit (default: what the scenario needs)',
  'cost.<key>': 'override one cost-table entry in cycles (docs/cost-model.md)',
};

export interface RunOptions {
  readonly scenario: string;
  readonly platform: string;
  readonly profile: string;
  readonly set: readonly string[];
  readonly seed: number;
  readonly check: boolean;
}

export const DEFAULT_SEED = 1;

/** Parse `--set key=value` pairs; a later pair overrides an earlier one. */
export function parseSetPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--set '${pair}' is not key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** The profile's policy with the run's policy keys applied. */
export function applyPolicy(base: VmPolicy, set: Readonly<Record<string, string>>): VmPolicy {
  return {
    ...base,
    ...(set.fault_around !== undefined ? { faultAround: parseFaultAround(set.fault_around) } : {}),
    ...(set.prefault_pte !== undefined ? { prefaultOld: parsePrefaultPte(set.prefault_pte) === 'old' } : {}),
    ...(set.anon_prefault !== undefined ? { anonPrefault: parseAnonPrefault(set.anon_prefault) } : {}),
  };
}

/** Run one scenario on one platform and profile: the `pte-lab run` command without the output. */
export function runScenario(o: RunOptions): RunResult {
  const scenario = getScenario(o.scenario);
  const platform = parsePlatform(o.platform);
  if (!scenario.platforms.includes(platform)) {
    throw configError(`${scenario.name} does not run on ${platform}`, `its platforms are ${scenario.platforms.join(', ')}`);
  }
  const profile = getProfile(o.profile);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw usageError(`--seed ${o.seed} is not a non-negative integer`);
  const set = parseSetPairs(o.set);
  const scenarioSet: Record<string, string> = {};
  const costSet: Record<string, string> = {};
  for (const [key, value] of Object.entries(set)) {
    if (key.startsWith('cost.')) costSet[key.slice(5)] = value;
    else if (key in scenario.keys) scenarioSet[key] = value;
    else if (!(key in COMMON_KEYS)) {
      throw configError(
        `unknown --set key '${key}' for ${scenario.name}`,
        `keys: ${[...Object.keys(scenario.keys), ...Object.keys(COMMON_KEYS)].join(', ')}`,
      );
    }
  }
  const policy = applyPolicy(profile.policy, set);
  const params = scenario.resolve(scenarioSet);
  const memBytes = set.mem !== undefined ? parseSize(set.mem, '--set mem') : scenario.defaultMemBytes(params.parsed);
  if (memBytes < 16 * 2 ** 20 || memBytes % 4096 !== 0) throw configError(`--set mem: ${memBytes} bytes is not a multiple of 4KiB of at least 16MiB`);
  const costs = resolveRunCosts(costSet);
  const machine = new Machine({ platform, profile, policy, memBytes, seed: o.seed, costs, check: o.check });
  let outcome;
  try {
    outcome = scenario.run(machine, params.parsed);
  } catch (e) {
    if (e instanceof PteError) throw e;
    throw e;
  }
  const cycles = sortedRecord(machine.measuredCycles());
  let total = 0;
  for (const v of Object.values(cycles) as number[]) total += v;
  const counters = sortedRecord(machine.measuredCounters());
  const touches = counters['workload.touches'] ?? 0;
  const allParams: Record<string, string> = {
    ...params.text,
    fault_around: String(policy.faultAround),
    prefault_pte: policy.prefaultOld ? 'old' : 'young',
    anon_prefault: formatAnonPrefault(policy.anonPrefault),
    mem: String(memBytes),
  };
  for (const [k, v] of Object.entries(costSet)) allParams[`cost.${k}`] = v;
  return {
    scenario: scenario.name,
    platform,
    profile: profile.name,
    seed: o.seed,
    params: sortedRecord(allParams),
    counters,
    cycles: { total, by_category: cycles },
    memory: { rss_pages: machine.rssPages, peak_rss_pages: machine.peakRssPages },
    derived: sortedRecord({ cycles_per_touch: touches > 0 ? total / touches : 0, ...outcome.derived }),
    command: commandLine(o),
  };
}

/** The command that regenerates a run. */
export function commandLine(o: RunOptions): string {
  const sets = o.set.map((s) => ` --set ${s}`).join('');
  return `pte-lab run ${o.scenario} --platform ${o.platform} --profile ${o.profile} --seed ${o.seed}${sets}${o.check ? ' --check' : ''}`;
}

export { DEFAULT_PROFILE, parseCount };
