import type { CostDefaults } from '@pte/core';

export type KvmCostKey =
  | 'kvm.exit'
  | 'kvm.guest_walk_ref'
  | 'kvm.shadow_fault'
  | 'kvm.inject'
  | 'kvm.prefetch'
  | 'kvm.emulate'
  | 'kvm.unsync'
  | 'kvm.sync_page'
  | 'kvm.invlpg'
  | 'kvm.ept_violation'
  | 'kvm.vcpu_resched';

/** KVM costs in cycles (hypervisors.md §6; engineering estimates there); sources in docs/cost-model.md. */
export const KVM_COSTS: CostDefaults<KvmCostKey> = {
  'kvm.exit': {
    cycles: 1100,
    source:
      'hypervisors.md §6: VM exit + entry round trip, modern (300) + exit software overhead (800) (estimate; Agesen 2012 trend UNVERIFIED)',
  },
  'kvm.guest_walk_ref': {
    cycles: 60,
    source: 'estimate: KVM reads one guest paging-structure entry in software (__get_user through the host mapping)',
  },
  'kvm.shadow_fault': {
    cycles: 2500,
    source:
      'hypervisors.md §6: shadow #PF handling, walk + fetch + mmu_set_spte + rmap (estimate; bounded by Ingo Molnar 2007)',
  },
  'kvm.inject': {
    cycles: 600,
    source: 'hypervisors.md §6: inject a #PF into the guest when the gpte is not present (estimate)',
  },
  'kvm.prefetch': {
    cycles: 200,
    source: 'hypervisors.md §6: prefetch of one extra spte, gfn→pfn + set_spte + rmap (estimate)',
  },
  'kvm.emulate': {
    cycles: 5000,
    source: 'hypervisors.md §6: emulate one guest page-table write, decode + kvm_mmu_track_write + zap (estimate)',
  },
  'kvm.unsync': {
    cycles: 1500,
    source: 'hypervisors.md §6: unsync transition of a shadowed leaf on its first write, on top of the exit (estimate)',
  },
  'kvm.sync_page': {
    cycles: 8000,
    source: 'hypervisors.md §6: kvm_sync_page of an unsync leaf, 512 gpte reads (estimate)',
  },
  'kvm.invlpg': {
    cycles: 500,
    source: 'hypervisors.md §6: guest INVLPG exit + single-spte resync, on top of the exit (estimate)',
  },
  'kvm.ept_violation': {
    cycles: 1500,
    source:
      'hypervisors.md §6: EPT violation on the first touch of a guest-physical page, on top of the exit (estimate)',
  },
  'kvm.vcpu_resched': {
    cycles: 2100000,
    source:
      'derived: an IPI to a preempted vCPU waits until the host runs it again, taken as one slice of the task running in its place: sysctl_sched_base_slice = 700000 ns (kernel/sched/fair.c since 2ae891b826958 "sched: Reduce the default slice", 6.15; 750000 before), unscaled, at an assumed 3.0 GHz (how long a preempted vCPU really waits: UNVERIFIED)',
  },
};
