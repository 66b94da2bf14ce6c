import type { Counters } from '@pte/core';

/**
 * Event counts of the guest kernel, kept as plain number fields on the hot path and published
 * under the dotted names of the RunResult contract (DESIGN.md "Command line").
 */
export class VmStats {
  faults = 0;
  faultsMinor = 0;
  faultsMajor = 0;
  faultsAnon = 0;
  /** do_swap_page: a PTE held a swap entry (also counted major). */
  faultsSwap = 0;
  faultsFile = 0;
  faultsCow = 0;
  faultsWpReuse = 0;
  faultsWpShared = 0;
  faultsSharedWrite = 0;
  faultsSegv = 0;
  faultsSpurious = 0;
  ptePopulated = 0;
  ptePrefaulted = 0;
  ptePrefaultedUnused = 0;
  pteMappedOnIo = 0;
  zeroPageMaps = 0;
  pmdMapped = 0;
  /** Anonymous THPs allocated and PMD-mapped by a fault (thp_fault_alloc), and fallbacks to 4 KiB. */
  thpFaultAlloc = 0;
  thpFaultFallback = 0;
  /** PMD mappings of anonymous THPs split into PTEs (thp_split_pmd). */
  thpSplitPmd = 0;
  /** Read faults that mapped the huge zero page by a PMD. */
  thpZeroPmd = 0;
  pteZapped = 0;
  pteCopied = 0;
  pagesAllocated = 0;
  pagesFreed = 0;
  ptAllocs = 0;
  ptFrees = 0;
  ptCacheRefills = 0;
  tlbFlushCalls = 0;
  tlbFlushFull = 0;
  tlbFlushPages = 0;
  ioRequests = 0;
  ioPages = 0;
  ioWrites = 0;
  forks = 0;
  execs = 0;
  exits = 0;

  addCountersTo(c: Counters): void {
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('faults.total', this.faults);
    add('faults.minor', this.faultsMinor);
    add('faults.major', this.faultsMajor);
    add('faults.anon', this.faultsAnon);
    add('faults.swap', this.faultsSwap);
    add('faults.file', this.faultsFile);
    add('faults.cow', this.faultsCow);
    add('faults.wp_reuse', this.faultsWpReuse);
    add('faults.wp_shared', this.faultsWpShared);
    add('faults.shared_write', this.faultsSharedWrite);
    add('faults.segv', this.faultsSegv);
    add('faults.spurious', this.faultsSpurious);
    add('pte.populated', this.ptePopulated);
    add('pte.prefaulted', this.ptePrefaulted);
    add('pte.prefaulted_unused', this.ptePrefaultedUnused);
    add('pte.mapped_on_io', this.pteMappedOnIo);
    add('pte.zero_page', this.zeroPageMaps);
    add('pte.zapped', this.pteZapped);
    add('pte.copied', this.pteCopied);
    add('pmd.mapped', this.pmdMapped);
    add('thp.fault_alloc', this.thpFaultAlloc);
    add('thp.fault_fallback', this.thpFaultFallback);
    add('thp.split_pmd', this.thpSplitPmd);
    add('thp.zero_pmd', this.thpZeroPmd);
    add('pages.allocated', this.pagesAllocated);
    add('pages.freed', this.pagesFreed);
    add('pt.allocs', this.ptAllocs);
    add('pt.frees', this.ptFrees);
    add('pt.cache_refills', this.ptCacheRefills);
    add('tlb.flushes', this.tlbFlushCalls);
    add('tlb.flushes_full', this.tlbFlushFull);
    add('tlb.flush_pages', this.tlbFlushPages);
    add('io.requests', this.ioRequests);
    add('io.pages', this.ioPages);
    add('io.writes', this.ioWrites);
    add('proc.forks', this.forks);
    add('proc.execs', this.execs);
    add('proc.exits', this.exits);
  }
}
