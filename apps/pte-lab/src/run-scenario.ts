import { configError, formatSize, parseCount, parseSize, usageError } from '@pte/core';
import {
  DEFAULT_PROFILE,
  formatAnonPrefault,
  getProfile,
  Machine,
  MAX_CPUS,
  type KernelProfile,
  type MachineOptions,
  parseAnonPrefault,
  parseFaultAround,
  parsePlatform,
  parsePrefaultPte,
  resolveRunCosts,
  type RunResult,
  sortedRecord,
  type VmapPolicy,
  type VmPolicy,
} from '@pte/machine';
import { getScenario } from './scenarios/catalogue.js';
import type { ResolvedParams, Scenario } from './scenarios/scenario.js';
import { readCostFile, type CostFile } from './cost-file.js';

/** Keys every scenario takes besides its own (SCENARIOS.md "the policy keys every scenario takes"). */
export const COMMON_KEYS: Readonly<Record<string, string>> = {
  fault_around: "fault-around window in pages, a power of two from 1 to 512 (default: the profile's)",
  prefault_pte: "young | old: Accessed bit of prefaulted PTEs (default: the profile's)",
  anon_prefault: "off | fixed:<pages> | adaptive | mthp:<sizes joined by +> (default: the profile's)",
  mem: 'guest memory with unit (default: what the scenario needs)',
  xen_pte_write:
    "mmu_update | update_va_mapping | ptwr: how a Xen PV guest writes a PTE outside lazy mode (default: the profile's)",
  xen_alias: 'none | always | check: stale vmap aliases before a Xen pin (default always)',
  batch_fault_around:
    "on | off: run fault-around in lazy MMU mode so paravirt backends batch it (the thread's proposal; default off)",
  fault_around_gate:
    "on | off: fault-around only in mappings given MADV_SEQUENTIAL or MADV_WILLNEED (Snook's proposal; default off)",
  map_on_io:
    "on | off: map the pages of a completed read into the faulting address space (the thread's proposal; default off)",
  thp: 'never | madvise: anonymous THP (one PMD per 2 MiB) for MADV_HUGEPAGE memory on native, kvm-shadow and kvm-tdp (not xen-pv) (default: madvise on linux-6.18, never before)',
  zero_page:
    'on | off: anonymous read faults map the shared zero page (on), or allocate a zeroed page as a write does (off: mm_forbids_zeropage, as a PVM guest booted with pvm_no_zero_page=1; default on)',
  pt_cache: 'pages: page-table pages from an alias-free cache refilled N at a time (default 0: off)',
  vmap: 'eager | lazy | lazy-2008: vunmap flushing; lazy-2008 keeps PTEs until the purge (default: eager on linux-2.6.27, else lazy)',
  nr_cpus: "CPUs a kernel vmap flush interrupts, the vmap model's own count, apart from cpus (default 4)",
  cpus: `CPUs (vCPUs) of the machine, 1 to ${MAX_CPUS} (default 1, or what a several-CPU scenario needs)`,
  vcpu_preempted:
    'the share of flush targets the hypervisor has descheduled, 0 to 1 (vCPU overcommit; xen-pv, kvm-tdp, kvm-shadow; default 0)',
  pv_tlb_flush:
    'on | off: a KVM guest skips the IPI to a preempted vCPU and KVM flushes it at its next entry (kvm_flush_tlb_multi, 4.16+; kvm-tdp and kvm-shadow; default: on where the profile has it, linux-6.18)',
  host_backed:
    'on | off: kvm-tdp: the EPT already maps all of guest memory, as in a guest that has run a while (on), or each guest-physical page is an EPT violation at its first touch, as in a fresh guest (off; default on)',
  host_huge:
    'on | off: kvm-shadow: the host backs guest memory with 2 MiB pages, so a guest 2 MiB mapping gets one 2 MiB spte (kvm_mmu_hugepage_adjust), or 4 KiB pages, so it gets a direct shadow page of 4 KiB sptes filled 8 at a time (off; default off)',
  reclaim: 'on | off: reclaim the page cache under memory pressure (set mem below what the run needs; default off)',
  swap: 'off | <size with unit>: a swap device, so reclaim can evict anonymous memory (needs reclaim=on; default off)',
  reclaim_horizon: 'touches within which a refault counts as a premature eviction (default 4096)',
  'cost.<key>': 'override one cost-table entry in cycles (docs/cost-model.md)',
};

export interface RunOptions {
  readonly scenario: string;
  /** Default: native, or the scenario's first platform when it does not run natively. */
  readonly platform?: string;
  readonly profile: string;
  readonly set: readonly string[];
  readonly seed: number;
  /** A cost file (--costs FILE, cost-file.ts) whose costs replace the defaults; `cost.<key>` keys override it. */
  readonly costs?: string;
  readonly check: boolean;
}

export const DEFAULT_SEED = 1;

/**
 * The most guest memory a run may have: the model keeps a frame table entry per 4 KiB frame and
 * touches every page a scenario asks for, so a larger run would take minutes and tens of GiB of
 * the host before it said anything.
 */
export const MAX_GUEST_MEM = 64 * 2 ** 30;

/** Guest memory: `--set mem`, else `fallback` (what the run needs); a multiple of 4 KiB from 16 MiB to MAX_GUEST_MEM. */
export function guestMemBytes(set: Readonly<Record<string, string>>, fallback: number): number {
  const memBytes = set.mem !== undefined ? parseSize(set.mem, '--set mem') : fallback;
  if (memBytes < 16 * 2 ** 20 || memBytes % 4096 !== 0)
    throw configError(`--set mem: ${memBytes} bytes is not a multiple of 4KiB of at least 16MiB`);
  if (memBytes > MAX_GUEST_MEM) {
    if (set.mem !== undefined)
      throw configError(`--set mem: ${formatSize(memBytes)} is more than the model's ${formatSize(MAX_GUEST_MEM)}`);
    throw configError(
      `the run needs ${formatSize(memBytes)} of guest memory, more than the model's ${formatSize(MAX_GUEST_MEM)}`,
      "lower the scenario's sizes or thread count; pte-lab list --keys shows them",
    );
  }
  return memBytes;
}

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
    ...(set.pt_cache !== undefined ? { ptCache: parseCount(set.pt_cache, '--set pt_cache') } : {}),
    ...(set.map_on_io !== undefined
      ? { mapOnIoComplete: oneOf('map_on_io', set.map_on_io, ['on', 'off'] as const) === 'on' }
      : {}),
    ...(set.fault_around_gate !== undefined
      ? { faultAroundGate: oneOf('fault_around_gate', set.fault_around_gate, ['on', 'off'] as const) === 'on' }
      : {}),
    ...(set.batch_fault_around !== undefined
      ? { faultAroundLazy: oneOf('batch_fault_around', set.batch_fault_around, ['on', 'off'] as const) === 'on' }
      : {}),
    ...(set.zero_page !== undefined
      ? { zeroPage: oneOf('zero_page', set.zero_page, ['on', 'off'] as const) === 'on' }
      : {}),
    ...(set.thp !== undefined ? { anonThp: oneOf('thp', set.thp, ['never', 'madvise'] as const) === 'madvise' } : {}),
  };
}

function oneOf<T extends string>(key: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value))
    throw configError(`--set ${key}: '${value}' is not one of ${choices.join(', ')}`);
  return value as T;
}

/** Machine settings from the common keys (undefined: the machine's default). */
export function machineSettings(set: Readonly<Record<string, string>>): Partial<MachineOptions> {
  const out: { -readonly [K in keyof MachineOptions]?: MachineOptions[K] } = {};
  if (set.xen_pte_write !== undefined)
    out.xenPteWrite = oneOf('xen_pte_write', set.xen_pte_write, ['mmu_update', 'update_va_mapping', 'ptwr'] as const);
  if (set.xen_alias !== undefined)
    out.xenAlias = oneOf('xen_alias', set.xen_alias, ['none', 'always', 'check'] as const);
  if (set.reclaim !== undefined) out.reclaim = oneOf('reclaim', set.reclaim, ['on', 'off'] as const) === 'on';
  if (set.swap !== undefined && set.swap !== 'off') {
    const bytes = parseSize(set.swap, '--set swap');
    if (bytes < 4096 || bytes % 4096 !== 0)
      throw configError(`--set swap: ${bytes} bytes is not a positive multiple of 4KiB`);
    if (bytes / 4096 > 0x7fffffff) throw configError(`--set swap: ${bytes} bytes is more than the model's 2^31 slots`);
    if (out.reclaim !== true) throw configError('--set swap: needs --set reclaim=on (swap is used only by reclaim)');
    out.swapPages = bytes / 4096;
  }
  if (set.cpus !== undefined) {
    const cpus = parseCount(set.cpus, '--set cpus');
    if (cpus < 1 || cpus > MAX_CPUS)
      throw configError(
        `--set cpus: ${cpus} is outside 1..${MAX_CPUS}`,
        'the model keeps mm_cpumask in one 32-bit word',
      );
    out.cpus = cpus;
  }
  if (set.vcpu_preempted !== undefined) {
    const f = Number(set.vcpu_preempted.trim());
    if (!/^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(set.vcpu_preempted.trim()) || !(f >= 0 && f <= 1))
      throw configError(`--set vcpu_preempted: '${set.vcpu_preempted}' is not a fraction from 0 to 1`);
    out.vcpuPreempted = f;
  }
  if (set.pv_tlb_flush !== undefined)
    out.pvTlbFlush = oneOf('pv_tlb_flush', set.pv_tlb_flush, ['on', 'off'] as const) === 'on';
  if (set.host_backed !== undefined)
    out.hostBacked = oneOf('host_backed', set.host_backed, ['on', 'off'] as const) === 'on';
  if (set.host_huge !== undefined) out.hostHuge = oneOf('host_huge', set.host_huge, ['on', 'off'] as const) === 'on';
  if (set.reclaim_horizon !== undefined) out.reclaimHorizon = parseCount(set.reclaim_horizon, '--set reclaim_horizon');
  if (set.vmap !== undefined || set.nr_cpus !== undefined) {
    const nrCpus = set.nr_cpus !== undefined ? parseCount(set.nr_cpus, '--set nr_cpus') : 4;
    if (nrCpus < 1) throw configError('--set nr_cpus: needs at least 1 CPU');
    const mode = oneOf('vmap', set.vmap ?? 'lazy', ['eager', 'lazy', 'lazy-2008'] as const);
    const vmap: VmapPolicy = { mode: mode === 'eager' ? 'eager' : 'lazy', unmapAtPurge: mode === 'lazy-2008', nrCpus };
    out.vmap = vmap;
  }
  return out;
}

/**
 * The machine settings a platform and profile can take: vCPU preemption needs a hypervisor, the PV
 * TLB flush a KVM guest on a kernel that has it, host_backed an EPT. One line naming the key if not.
 */
export function checkSettingsFor(settings: Partial<MachineOptions>, platform: string, profile: KernelProfile): void {
  const kvm = platform === 'kvm-tdp' || platform === 'kvm-shadow';
  if ((settings.vcpuPreempted ?? 0) > 0 && platform === 'native')
    throw configError(
      '--set vcpu_preempted: native has no vCPUs to preempt',
      'it applies to xen-pv, kvm-tdp and kvm-shadow',
    );
  if (settings.pvTlbFlush !== undefined && !kvm)
    throw configError(`--set pv_tlb_flush: ${platform} is not a KVM guest`, 'it applies to kvm-tdp and kvm-shadow');
  if (settings.hostBacked !== undefined && platform !== 'kvm-tdp')
    throw configError(`--set host_backed: ${platform} has no EPT to back`, 'it applies to kvm-tdp');
  if (settings.hostHuge !== undefined && platform !== 'kvm-shadow')
    throw configError(`--set host_huge: ${platform} has no shadow page tables`, 'it applies to kvm-shadow');
  if (settings.pvTlbFlush === true && !profile.hasPvTlbFlush)
    throw configError(`--set pv_tlb_flush: ${profile.name} has no PV TLB flush (kvm_flush_tlb_multi came in 4.16)`);
}

/**
 * A run's cost table: the defaults, then a --costs file's (read and checked), then `--set
 * cost.<key>` overrides; and the file, for the run's params.
 */
export function runCosts(
  path: string | undefined,
  costSet: Readonly<Record<string, string>>,
  profile: string,
): { costs: MachineOptions['costs']; costFile: CostFile | null } {
  const costFile = path !== undefined ? readCostFile(path) : null;
  return { costs: resolveRunCosts(costSet, costFile?.costs ?? {}, `--costs ${path}`, profile), costFile };
}

/** The params that record the costs a run used besides the defaults: the file, and each cost as cost.<key>. */
export function costParams(
  costFile: CostFile | null,
  costSet: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (costFile !== null) {
    out.costs = costFile.path;
    for (const [k, v] of Object.entries(costFile.costs)) out[`cost.${k}`] = String(v);
  }
  for (const [k, v] of Object.entries(costSet)) out[`cost.${k}`] = v; // --set over the file
  return out;
}

/** kvm-tdp's host_backed, recorded whether set or not (its default changed: outputs must say). */
export function hostBackedParam(platform: string, hostBacked: boolean | undefined): Record<string, string> {
  return platform === 'kvm-tdp' ? { host_backed: hostBacked === false ? 'off' : 'on' } : {};
}

/** A run's options checked and resolved, before anything runs (see resolveRun). */
export interface ResolvedRun {
  readonly options: RunOptions;
  readonly scenario: Scenario<any>;
  readonly params: ResolvedParams<any>;
  readonly policy: VmPolicy;
  readonly memBytes: number;
  readonly set: Readonly<Record<string, string>>;
  readonly costSet: Readonly<Record<string, string>>;
  /** The --costs file, read and checked, or null. */
  readonly costFile: CostFile | null;
  readonly machineOptions: MachineOptions;
}

/** Run one scenario on one platform and profile: the `pte-lab run` command without the output. */
export function runScenario(o: RunOptions): RunResult {
  return runResolved(resolveRun(o));
}

/** Check and resolve a run's options (scenario, platform, profile, seed, --set keys) without running it. */
export function resolveRun(o: RunOptions): ResolvedRun {
  const scenario = getScenario(o.scenario);
  const platform = parsePlatform(
    o.platform ?? (scenario.platforms.includes('native') ? 'native' : scenario.platforms[0]!),
  );
  if (!scenario.platforms.includes(platform)) {
    throw configError(
      `${scenario.name} does not run on ${platform}`,
      `its platforms are ${scenario.platforms.join(', ')}`,
    );
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
        `keys: ${[...new Set([...Object.keys(scenario.keys), ...Object.keys(COMMON_KEYS)])].join(', ')}`,
      );
    }
  }
  if (set.thp === 'madvise' && !profile.hasThp)
    throw configError(`--set thp: ${profile.name} has no transparent huge pages (they came in 2.6.38)`);
  // A key the scenario defines is the scenario's, even if a common key has the same name.
  const common = Object.fromEntries(Object.entries(set).filter(([k]) => !(k in scenario.keys)));
  const policy = applyPolicy(profile.policy, common);
  const settings = machineSettings(common);
  checkSettingsFor(settings, platform, profile);
  const params = scenario.resolve(scenarioSet);
  const memBytes = guestMemBytes(set, scenario.defaultMemBytes(params.parsed));
  const { costs, costFile } = runCosts(o.costs, costSet, profile.name);
  const options: MachineOptions = {
    platform,
    profile,
    policy,
    memBytes,
    seed: o.seed,
    costs,
    check: o.check,
    ...settings,
  };
  return { options: o, scenario, params, policy, memBytes, set, costSet, costFile, machineOptions: options };
}

/** Run a resolved run and collect its RunResult. */
export function runResolved(r: ResolvedRun): RunResult {
  const { options: o, scenario, params, policy, memBytes, set, costSet, costFile, machineOptions: options } = r;
  const outcome = scenario.run(
    { options, machine: (overrides = {}) => new Machine({ ...options, ...overrides }) },
    params.parsed,
  );
  const machine = outcome.machine;
  const cycles = sortedRecord(machine.measuredCycles());
  let total = 0;
  for (const v of Object.values(cycles) as number[]) total += v;
  const counters = sortedRecord(machine.measuredCounters());
  const touches = counters['workload.touches'] ?? 0;
  const allParams: Record<string, string> = {
    ...params.text,
    ...outcome.params,
    fault_around: String(policy.faultAround),
    prefault_pte: policy.prefaultOld ? 'old' : 'young',
    anon_prefault: formatAnonPrefault(policy.anonPrefault),
    mem: String(memBytes),
  };
  for (const key of [
    'xen_pte_write',
    'xen_alias',
    'pt_cache',
    'vmap',
    'nr_cpus',
    'cpus',
    'vcpu_preempted',
    'pv_tlb_flush',
    'batch_fault_around',
    'fault_around_gate',
    'reclaim',
    'reclaim_horizon',
    'swap',
    'map_on_io',
    'thp',
    'zero_page',
    'host_backed',
    'host_huge',
  ])
    if (set[key] !== undefined) allParams[key] = set[key]!;
  Object.assign(allParams, costParams(costFile, costSet), hostBackedParam(options.platform, options.hostBacked));
  return {
    scenario: scenario.name,
    platform: options.platform,
    profile: options.profile.name,
    seed: o.seed,
    params: sortedRecord(allParams),
    counters,
    cycles: { total, by_category: cycles },
    memory: { rss_pages: machine.rssPages, peak_rss_pages: machine.peakRssPages },
    derived: sortedRecord({ cycles_per_touch: touches > 0 ? total / touches : 0, ...outcome.derived }),
    command: commandLine(o),
  };
}

/** A path as one shell word: quoted when it holds anything a shell would split or expand. */
export function shellWord(s: string): string {
  return /^[\w./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that regenerates a run. */
export function commandLine(o: RunOptions): string {
  const sets = o.set.map((s) => ` --set ${s}`).join('');
  const platform =
    o.platform ??
    (getScenario(o.scenario).platforms.includes('native') ? 'native' : getScenario(o.scenario).platforms[0]);
  const costs = o.costs !== undefined ? ` --costs ${shellWord(o.costs)}` : '';
  return `pte-lab run ${o.scenario} --platform ${platform} --profile ${o.profile} --seed ${o.seed}${costs}${sets}${o.check ? ' --check' : ''}`;
}

export { DEFAULT_PROFILE, parseCount };
