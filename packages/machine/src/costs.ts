import { configError, mergeCostDefaults, overrideCosts, resolveCosts, type CostDefaults, type CostTable } from '@pte/core';
import { ARCH_COSTS } from '@pte/arch-x86';
import { PVOPS_COSTS } from '@pte/pvops';
import { VM_COSTS } from '@pte/vm';
import { XEN_COSTS } from '@pte/xen';
import { KVM_COSTS } from '@pte/kvm-shadow';

/** Every layer's cost defaults, merged (a key declared twice is a bug). */
export const ALL_COSTS: CostDefaults = mergeCostDefaults(ARCH_COSTS, PVOPS_COSTS, VM_COSTS, XEN_COSTS, KVM_COSTS);

/** Resolve the defaults and apply `cost.<key>=<cycles>` overrides. */
export function resolveRunCosts(overrides: Readonly<Record<string, string>>): CostTable {
  const numeric: Record<string, number> = {};
  for (const [key, text] of Object.entries(overrides)) {
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v)) throw configError(`--set cost.${key}: '${text}' is not a number of cycles`);
    numeric[key] = v;
  }
  return overrideCosts(resolveCosts(ALL_COSTS), numeric, '--set cost.<key>');
}
