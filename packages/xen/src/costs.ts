import type { CostDefaults } from '@pte/core';

export type XenCostKey =
  | 'xen.pf_bounce'
  | 'xen.hypercall'
  | 'xen.update_entry'
  | 'xen.multicall_entry'
  | 'xen.ptwr_emulate'
  | 'xen.pin_validate_entry';

/** Xen PV costs in cycles (hypervisors.md §6, all engineering estimates there); sources in docs/cost-model.md. */
export const XEN_COSTS: CostDefaults<XenCostKey> = {
  'xen.pf_bounce': {
    cycles: 1000,
    source:
      'hypervisors.md §6: guest #PF bounced through Xen, extra over native (estimate; Barham 2003 Table 5 UNVERIFIED)',
  },
  'xen.hypercall': {
    cycles: 700,
    source: 'hypervisors.md §6: hypercall round trip, entry/exit only, x86-64 PV (estimate)',
  },
  'xen.update_entry': {
    cycles: 150,
    source:
      'hypervisors.md §6: mmu_update / update_va_mapping per entry, validation and refcounts in mod_l1_entry (estimate)',
  },
  'xen.multicall_entry': {
    cycles: 60,
    source: 'hypervisors.md §6: multicall per extra entry, copy and dispatch in do_multicall (estimate)',
  },
  'xen.ptwr_emulate': {
    cycles: 4000,
    source:
      'hypervisors.md §6: ptwr trap and emulation of one PTE store (estimate; Linux: "a hypercall is much cheaper")',
  },
  'xen.pin_validate_entry': {
    cycles: 40,
    source: 'hypervisors.md §6: pin validation per present entry, promote_l1_table loop (estimate)',
  },
};
