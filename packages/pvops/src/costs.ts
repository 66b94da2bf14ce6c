import type { CostDefaults } from '@pte/core';

export type PvopsCostKey = 'native.pte_store' | 'native.pte_rmw';

/** Native backend costs; sources in docs/cost-model.md. */
export const PVOPS_COSTS: CostDefaults<PvopsCostKey> = {
  'native.pte_store': {
    cycles: 5,
    source: 'estimate: a WRITE_ONCE store of an 8-byte entry to a cached page-table line',
  },
  'native.pte_rmw': {
    cycles: 20,
    source: 'estimate: a locked read-modify-write of an entry (xchg/lock btr), same figure as tlb.ad_write',
  },
};
