import type { CostDefaults } from '@pte/core';

export type PvopsCostKey = 'native.pte_store' | 'native.pte_rmw' | 'native.ipi_send';

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
  'native.ipi_send': {
    cycles: 200,
    source:
      'derived: N. Amit, LKML 2019-05-25 (Haswell): a one-page shootdown to three remote CPUs costs 1571 ns against 1436 ns to one, so each further target adds about 68 ns = 200 cycles at an assumed 3.0 GHz: the x2APIC ICR write and csd setup per target',
  },
};
