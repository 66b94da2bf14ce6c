import type { CostDefaults } from '@pte/core';

/**
 * Costs the CPU model charges, in cycles. Each default's source is in docs/cost-model.md
 * (a test checks that every key here has a line there).
 */
export type ArchCostKey =
  'tlb.stlb_hit' | 'tlb.walk_ref' | 'tlb.ad_write' | 'tlb.invlpg' | 'tlb.cr3_write' | 'tlb.flush_global';

export const ARCH_COSTS: CostDefaults<ArchCostKey> = {
  'tlb.stlb_hit': {
    cycles: 9,
    source: 'estimate: L1 DTLB miss that hits the STLB, 7-9 cycles on Skylake-class cores (UNVERIFIED in references/)',
  },
  'tlb.walk_ref': {
    cycles: 20,
    source:
      'estimate: one paging-structure read that hits L1/L2 cache; the paging-structure caches (psc.ts) decide how many a walk makes',
  },
  'tlb.ad_write': {
    cycles: 20,
    source: 'estimate: locked read-modify-write of an entry to set A or D (SDM Vol. 3A §4.8)',
  },
  'tlb.invlpg': { cycles: 260, source: 'linux-mm.md §9: Ingo Molnar, __flush_tlb_one() (INVLPG) 260 cycles' },
  'tlb.cr3_write': { cycles: 96, source: 'linux-mm.md §9: Ingo Molnar, __flush_tlb() (CR3 reload) 96 cycles' },
  'tlb.flush_global': {
    cycles: 200,
    source: 'estimate: CR4.PGE toggle, about two CR3 reloads (linux-mm.md §9 gives 96 for one)',
  },
};
