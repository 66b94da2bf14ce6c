import type { PvMmuOps } from '@pte/pvops';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { vpnHi, vpnLo } from './pgtable.js';
import {
  FLUSH_FULL,
  FLUSH_LAZY_SWITCH,
  FLUSH_NONE,
  FLUSH_RANGE,
  flushTlbMmRange,
  TLB_SINGLE_PAGE_FLUSH_CEILING,
  type FlushTlbInfo,
} from './tlb-flush.js';

/**
 * The mmu_gather of mm/mmu_gather.c with x86's flush_tlb_mm_range() policy (arch/x86/mm/tlb.c):
 * unmapped pages are collected and flushed once at the end. A range of at most
 * `tlb_single_page_flush_ceiling` entries (33) is flushed entry by entry with INVLPG — a page
 * each, or 2 MiB each when only PMD leaves were cleared; a larger one, or a full-mm teardown,
 * flushes the whole address space. Which CPUs flush, and how, is flush_tlb_mm_range()'s decision
 * (tlb-flush.ts): with one CPU, the CPU flushes only if it has the mm loaded.
 */
export class MmuGather {
  private start = Infinity;
  private end = -Infinity;
  private pages = 0;
  /** cleared_ptes / cleared_pmds: the flush stride is a page if any PTE went, else 2 MiB. */
  private ptes = false;

  constructor(
    private readonly k: Kernel,
    private mm: Mm | null,
    /** tlb_gather_mmu_fullmm(): the whole address space is going away. */
    private fullMm: boolean,
  ) {}

  /**
   * tlb_gather_mmu(): start gathering for `mm` afresh, as a new gather would. Lets a preallocated
   * gather (Cpu.tlb) serve a path that must not allocate.
   */
  gather(mm: Mm, fullMm: boolean): this {
    this.mm = mm;
    this.fullMm = fullMm;
    this.start = Infinity;
    this.end = -Infinity;
    this.pages = 0;
    this.ptes = false;
    return this;
  }

  /** tlb_remove_tlb_entry(): page `vpn` was unmapped. */
  add(vpn: number, pages = 1): void {
    this.extend(vpn, pages);
    this.ptes = true;
  }

  /** tlb_remove_pmd_tlb_entry(): the 2 MiB PMD leaf at `base` was cleared (or invalidated for a split). */
  addPmd(base: number): void {
    this.extend(base, 512);
  }

  private extend(vpn: number, pages: number): void {
    if (vpn < this.start) this.start = vpn;
    if (vpn + pages > this.end) this.end = vpn + pages;
    this.pages += pages;
  }

  /** tlb_finish_mmu(): flush what was gathered. */
  finish(): void {
    const k = this.k;
    if (this.pages === 0) return;
    // tlb_get_unmap_shift(): flush_tlb_mm_range() counts entries in strides of the largest
    // mapping size cleared everywhere in the range (one INVLPG per 2 MiB when only PMDs went).
    const stride = this.ptes ? 1 : 512;
    const entries = Math.ceil((this.end - this.start) / stride);
    flushTlbMm(k, this.mm!, this.start, this.fullMm ? 0 : entries, stride, k.policy.tlbFlushCeiling);
    this.start = Infinity;
    this.end = -Infinity;
    this.pages = 0;
    this.ptes = false;
  }
}

/**
 * flush_tlb_mm_range() from the running CPU for `strides` strides of `stride` pages from `start`
 * (0 strides: the whole mm), and the flushes it decided on this CPU: INVLPG per stride or a full
 * flush, counted (tlb.flush_calls, tlb.flush_pages / tlb.flushes_full) and charged
 * guest.flush_call. Nothing when no CPU has the mm loaded. flush_tlb_mm() is 0 strides.
 */
export function flushTlbMm(k: Kernel, mm: Mm, start: number, strides: number, stride: number, ceiling: number): void {
  const cpu = k.cpu;
  if ((mm.tlb.cpumask & ~(1 << cpu.id)) !== 0 && flushByHypervisor(k, mm, start, strides, stride, ceiling)) return;
  // free_pgtables() is not gathered yet: with one CPU it changes nothing (no other CPU to reach);
  // with several it sends the flush to every CPU in the mask, lazy or elsewhere.
  const plan = flushTlbMmRange(mm.tlb, k.tlbStates, cpu.id, cpu.flushInfo.set(strides, false, ceiling));
  deliverFlush(k, plan, start, stride);
}

/**
 * The flush a plan decided, delivered: the other CPUs' parts by IPI (flushOthers), then this
 * CPU's own, counted (tlb.flush_calls, tlb.flush_pages / tlb.flushes_full) and charged
 * guest.flush_call; then the wait for the slowest target.
 */
function deliverFlush(k: Kernel, plan: FlushTlbInfo, start: number, stride: number, viaFlushTlbMulti = true): void {
  const cpu = k.cpu;
  const slowest = plan.remote > 0 ? flushOthers(k, plan, start, stride, viaFlushTlbMulti) : 0;
  const before = slowest > 0 ? k.ledger.total() : 0;
  const local = plan.action[cpu.id];
  if (local === FLUSH_FULL || local === FLUSH_RANGE) {
    noteFlushCall(k, local === FLUSH_FULL ? 0 : plan.strides);
    applyFlush(k.pv, local, start, plan.strides, stride);
  }
  if (slowest > 0) {
    // csd_lock_wait(): the sender flushed its own TLB meanwhile, then waits for the last ack: the
    // delivery, the slowest target's handler, and the ack's cache line coming back.
    const wait = k.costs.ipiLatency + slowest + k.costs.lineTransfer - (k.ledger.total() - before);
    if (wait > 0) k.charge(k.ledger.id('smp.ipi'), wait);
  }
}

/**
 * flush_tlb_kernel_range() beyond the single-page ceiling with several CPUs: on_each_cpu(
 * do_flush_tlb_all) — kernel mappings are every CPU's, so every other online CPU takes an IPI and
 * flushes everything (no mm_cpumask, no lazy CPU skipped), and the sender waits for them; under
 * Xen PV one hypercall for all vCPUs.
 */
export function flushTlbKernelAll(k: Kernel): void {
  const cpu = k.cpu;
  const all = (2 ** k.cpus.length - 1) | 0;
  if (k.cpus.length > 1 && k.pv.flushTlbMulti(all, 0, 0, false)) {
    noteFlushCall(k, 0);
    return;
  }
  const plan = cpu.flushInfo.set(0, false, 0);
  plan.action.fill(FLUSH_FULL);
  plan.strides = 0;
  plan.remote = k.cpus.length - 1;
  plan.ipiMask = all & ~(1 << cpu.id);
  deliverFlush(k, plan, 0, 1, false);
}

/**
 * arch_tlbbatch_flush() (reclaim's try_to_unmap_flush): a full flush of every CPU in `mask` that
 * is not lazy (flush_tlb_info with no mm: should_flush_tlb() is true for them), by IPI, or one
 * MMUEXT_TLB_FLUSH_MULTI under Xen PV.
 */
export function archTlbbatchFlush(k: Kernel, mask: number): void {
  const cpu = k.cpu;
  if ((mask & ~(1 << cpu.id)) !== 0 && k.pv.flushTlbMulti(mask, 0, 0, false)) {
    for (const s of k.tlbStates) if ((mask & (1 << s.id)) !== 0 && s.loaded !== null) s.localGen = s.loaded.tlbGen;
    noteFlushCall(k, 0);
    return;
  }
  const plan = cpu.flushInfo.set(0, false, 0);
  plan.action.fill(FLUSH_NONE);
  let remote = 0;
  let ipiMask = 0;
  for (const s of k.tlbStates) {
    if ((mask & (1 << s.id)) === 0 || s.lazy || s.loaded === null) continue;
    plan.action[s.id] = FLUSH_FULL;
    s.localGen = s.loaded.tlbGen;
    if (s.id !== cpu.id) {
      remote++;
      ipiMask |= 1 << s.id;
    }
  }
  plan.strides = 0;
  plan.remote = remote;
  plan.ipiMask = ipiMask;
  deliverFlush(k, plan, 0, 1);
}

/**
 * flush_tlb_mm_range() with other CPUs in the mask on a platform whose flush_tlb_multi is a
 * hypercall (Xen PV): the whole mm_cpumask, lazy CPUs and CPUs running other mms included, is
 * handed over; exactly one page is an INVLPG, anything more a full flush (xen_flush_tlb_multi).
 * No flush_tlb_func() runs on the targets, so the mask is never trimmed. False: not such a platform.
 */
function flushByHypervisor(
  k: Kernel,
  mm: Mm,
  start: number,
  strides: number,
  stride: number,
  ceiling: number,
): boolean {
  const onePage = strides === 1 && stride === 1 && ceiling > 0;
  const tlb = mm.tlb;
  if (!k.pv.flushTlbMulti(tlb.cpumask, vpnHi(start), vpnLo(start), onePage)) return false;
  // inc_mm_tlb_gen(): every CPU of the mask is flushed, so each is up to date.
  const gen = ++tlb.tlbGen;
  for (const s of k.tlbStates) if (s.loaded === tlb) s.localGen = gen;
  noteFlushCall(k, onePage ? 1 : 0);
  return true;
}

/**
 * native_flush_tlb_multi() → on_each_cpu_cond_mask(): the flush IPIs go out at once (the
 * platform prices sending, pv.sendFlushIpis); each target takes the interrupt and runs
 * flush_tlb_func() on its own TLB, on its own clock (Kernel.remoteCycles). Returns the slowest
 * target's cycles, which the sender waits for.
 */
function flushOthers(k: Kernel, plan: FlushTlbInfo, start: number, stride: number, viaFlushTlbMulti: boolean): number {
  const self = k.cpu.id;
  const pv = k.pv;
  // kvm_flush_tlb_multi(): a preempted vCPU is taken out of the mask (KVM_VCPU_FLUSH_TLB: KVM
  // flushes it at its next entry); without the PV flush its IPI waits until it runs again. A
  // kernel-range flush (on_each_cpu) does not go through flush_tlb_multi: it always waits.
  const skip = pv.pvTlbFlush && viaFlushTlbMulti;
  let preempted = 0;
  let ipis = plan.remote;
  for (const other of k.cpus) {
    if (other.id === self || (plan.ipiMask & (1 << other.id)) === 0) continue;
    if (!pv.vcpuPreempted(other.id)) continue;
    preempted |= 1 << other.id;
    if (skip) ipis--;
  }
  if (ipis > 0) pv.sendFlushIpis(ipis);
  const catHandler = k.ledger.id('smp.ipi_handler');
  let slowest = 0;
  for (const other of k.cpus) {
    if (other.id === self || (plan.ipiMask & (1 << other.id)) === 0) continue;
    const late = (preempted & (1 << other.id)) !== 0;
    if (late && skip) {
      k.smp.pvFlushSkipped++;
      const t0 = k.ledger.total();
      applyFlush(other.pv, FLUSH_FULL, start, 0, stride); // kvm_vcpu_flush_tlb_guest() at its entry
      k.remote.charge(other.id, k.ledger.total() - t0);
      continue;
    }
    const t0 = k.ledger.total();
    k.charge(catHandler, k.costs.ipiHandler);
    const action = plan.action[other.id]!;
    if (action === FLUSH_LAZY_SWITCH) other.leaveMm();
    else applyFlush(other.pv, action, start, plan.strides, stride);
    const work = k.ledger.total() - t0;
    k.remote.charge(other.id, work);
    const wait = late ? pv.vcpuReschedCycles + work : work;
    if (wait > slowest) slowest = wait;
  }
  return slowest;
}

/**
 * flush_tlb_page(): one INVLPG of page `vpn` in every kernel, whatever the profile's ceiling for
 * ranges (2.6.27 flushed every gathered range whole: its ceiling is 0).
 */
export function flushTlbPage(k: Kernel, mm: Mm, vpn: number): void {
  flushTlbMm(k, mm, vpn, 1, 1, TLB_SINGLE_PAGE_FLUSH_CEILING);
}

/**
 * A flush_tlb_mm_range() (or kernel/batch flush) call this CPU made: counted (tlb.flushes, and
 * tlb.flush_pages for `pages` INVLPGs, or tlb.flushes_full when `pages` is 0) and charged
 * guest.flush_tlb_call.
 */
function noteFlushCall(k: Kernel, pages: number): void {
  k.stats.tlbFlushCalls++;
  k.charge(k.catFlush, k.costs.flushTlbCall);
  if (pages === 0) k.stats.tlbFlushFull++;
  else k.stats.tlbFlushPages += pages;
}

/** One CPU's part of a flush, on its own TLB: a full flush, or INVLPG per stride. */
function applyFlush(pv: PvMmuOps, action: number, start: number, strides: number, stride: number): void {
  if (action === FLUSH_FULL) pv.flushTlbAll();
  else if (action === FLUSH_RANGE) {
    for (let i = 0, v = start; i < strides; i++, v += stride) pv.flushTlbOne(vpnHi(v), vpnLo(v));
  }
}
