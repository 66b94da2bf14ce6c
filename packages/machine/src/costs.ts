import {
  configError,
  mergeCostDefaults,
  overrideCosts,
  resolveCosts,
  type CostDefaults,
  type CostTable,
} from '@pte/core';
import { ARCH_COSTS, type ArchCostKey } from '@pte/arch-x86';
import { PVOPS_COSTS, type PvopsCostKey } from '@pte/pvops';
import { VM_COSTS, type VmCostKey } from '@pte/vm';
import { XEN_COSTS, type XenCostKey } from '@pte/xen';
import { KVM_COSTS, type KvmCostKey } from '@pte/kvm-shadow';

/** Every layer's cost key: a table of them narrows to any one layer's CostTable without a cast. */
export type RunCostKey = ArchCostKey | PvopsCostKey | VmCostKey | XenCostKey | KvmCostKey;

// mergeCostDefaults throws if a key is declared twice (a bug); the spread keeps the keys' types.
mergeCostDefaults(ARCH_COSTS, PVOPS_COSTS, VM_COSTS, XEN_COSTS, KVM_COSTS);

/** Each layer's cost defaults, by the package that declares them (docs/cost-model.md has a table per package). */
export const COSTS_BY_LAYER: Readonly<Record<string, CostDefaults>> = {
  '@pte/arch-x86': ARCH_COSTS,
  '@pte/pvops': PVOPS_COSTS,
  '@pte/vm': VM_COSTS,
  '@pte/xen': XEN_COSTS,
  '@pte/kvm-shadow': KVM_COSTS,
};

/** Every layer's cost defaults, merged. */
export const ALL_COSTS: CostDefaults<RunCostKey> = {
  ...ARCH_COSTS,
  ...PVOPS_COSTS,
  ...VM_COSTS,
  ...XEN_COSTS,
  ...KVM_COSTS,
};

/**
 * Costs of a kernel profile's era where hardware of that time is known to differ from today's
 * defaults, each with its source (docs/cost-model.md, "Costs per era"). Only what a reference
 * gives a figure for: the rest of an old profile is priced as today.
 */
export const ERA_COSTS: Readonly<Record<string, Partial<CostDefaults<RunCostKey>>>> = {
  'linux-2.6.27': {
    'kvm.exit': {
      cycles: 1800,
      source:
        "hypervisors.md §6: a VM exit and entry on 2008's Core 2 (Merom/Penryn), hardware round trip 1,000 (Agesen et al., USENIX ATC 2012, Fig. 1: Core 2 ~1,000 → ~500; UNVERIFIED), plus KVM's exit software overhead (800)",
    },
  },
};

/**
 * Resolve the defaults, then the era's costs of `profile` (ERA_COSTS), then apply a cost file's
 * measured costs (`fileCosts`, checked by the caller's reader and named by `fileWhere` in errors),
 * then `cost.<key>=<cycles>` overrides.
 */
export function resolveRunCosts(
  overrides: Readonly<Record<string, string>>,
  fileCosts: Readonly<Record<string, number>> = {},
  fileWhere = '--costs',
  profile?: string,
): CostTable<RunCostKey> {
  const numeric: Record<string, number> = {};
  for (const [key, text] of Object.entries(overrides)) {
    // The key first: a value for a cost that does not exist is an unknown key, whatever the value.
    if (!Object.hasOwn(ALL_COSTS, key)) {
      throw configError(`--set cost.${key}: unknown cost '${key}'`, 'see docs/cost-model.md for the keys');
    }
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v))
      throw configError(`--set cost.${key}: '${text}' is not a number of cycles`);
    numeric[key] = v;
  }
  const era: Record<string, number> = {};
  for (const [key, entry] of Object.entries(ERA_COSTS[profile ?? ''] ?? {})) era[key] = entry!.cycles;
  const base = overrideCosts(resolveCosts(ALL_COSTS), era, `the ${profile} era's costs`);
  const measured = overrideCosts(base, fileCosts, fileWhere);
  return overrideCosts(measured, numeric, '--set cost.<key>');
}
