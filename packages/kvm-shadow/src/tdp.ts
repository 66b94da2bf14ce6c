import { CycleLedger, resolveCosts, type CostTable } from '@pte/core';
import type { NestedPaging } from '@pte/arch-x86';
import { KVM_COSTS, type KvmCostKey } from './costs.js';

/**
 * KVM with TDP (EPT/NPT), hypervisors.md §3.8: the guest's page-table writes and #PFs go straight
 * to the guest (the native pvops backend), the CPU walks the guest's tables through the host's
 * (a 2D walk, charged by the MMU), and the first touch of each guest-physical page is an EPT
 * violation that maps it (kvm_tdp_page_fault). KVM builds the EPT lazily and keeps it, so a guest
 * that has run a while ("host-backed": every frame touched before) takes none; a fresh guest takes
 * one per frame it touches for the first time.
 */
export class KvmTdp implements NestedPaging {
  readonly levels: number;
  readonly mapped: Uint8Array;
  private readonly ledger: CycleLedger;
  private readonly cat: number;
  private readonly cost: number;
  violations = 0;
  /** Block requests the guest kicked (ioKick). */
  ioKicks = 0;
  private readonly kickCost: number;

  constructor(
    guestFrames: number,
    ledger: CycleLedger = new CycleLedger(),
    costs: CostTable<KvmCostKey> = resolveCosts(KVM_COSTS),
    levels = 4,
    /** Every guest frame already mapped in the EPT (a guest that has run a while); false: a fresh guest. */
    hostBacked = false,
  ) {
    this.levels = levels;
    this.mapped = new Uint8Array(guestFrames);
    if (hostBacked) this.mapped.fill(1);
    this.ledger = ledger;
    this.cat = ledger.id('kvm.exit');
    this.cost = costs['kvm.exit'] + costs['kvm.ept_violation'];
    this.kickCost = costs['kvm.exit'] + costs['kvm.inject'];
  }

  /**
   * A virtio-blk request: the guest's kick is a write to the queue's notify register
   * (virtqueue_notify → vp_notify), a VM exit; the completion is an interrupt KVM injects.
   */
  ioKick(): void {
    this.ioKicks++;
    this.ledger.charge(this.cat, this.kickCost);
  }

  violation(pfn: number): void {
    this.mapped[pfn] = 1;
    this.violations++;
    this.ledger.charge(this.cat, this.cost);
  }
}
