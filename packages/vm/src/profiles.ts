import type { FaultLockPolicy } from './fault-lock.js';
import { configError } from '@pte/core';

/** Anonymous prefault policy (linux-mm.md §3): off, fixed N, Lameter's adaptive, or mTHP orders. */
export type AnonPrefault =
  | { readonly kind: 'off' }
  | { readonly kind: 'fixed'; readonly pages: number }
  | { readonly kind: 'adaptive'; readonly maxOrder: number }
  | { readonly kind: 'mthp'; readonly orders: readonly number[] };

/** The population policies a run chooses once (DESIGN: strategies chosen by config). */
export interface VmPolicy {
  /** fault_around_bytes / PAGE_SIZE: 1 disables fault-around; a power of two up to 512. */
  readonly faultAround: number;
  /** Prefaulted PTEs old (arch_wants_old_prefaulted_pte) instead of young. */
  readonly prefaultOld: boolean;
  readonly anonPrefault: AnonPrefault;
  /** Page-cache folio order cap for write() and readahead (0: order-0 page cache). */
  readonly maxFolioOrder: number;
  /** Map PMD-sized file folios with one PMD entry (do_set_pmd / filemap_map_pmd). */
  readonly pmdMapFileFolios: boolean;
  /** tlb_single_page_flush_ceiling: ranges above it flush the whole address space (0: always). */
  readonly tlbFlushCeiling: number;
  /**
   * Reclaim batches the TLB flushes of the PTEs it unmaps when other CPUs run the mm
   * (TTU_BATCH_FLUSH, should_defer_flush: Mel Gorman, v4.3, linux-mm.md §9): one full flush of
   * every CPU in the batch's mask at the end of the batch instead of one flush_tlb_page per PTE.
   */
  readonly batchedUnmapFlush: boolean;
  /** set_ptes() wraps its loop in lazy MMU mode (bcc6cc832573, 2023). */
  readonly lazySetPtes: boolean;
  /**
   * Page-table pages come from a cache of alias-free pages, refilled N at a time with one
   * vm_unmap_aliases() (Nick Piggin's suggestion in seed 003, like the old quicklists); 0: off.
   */
  readonly ptCache: number;
  /**
   * Run do_fault_around()'s filemap_map_pages() loop in lazy MMU mode, so a paravirt backend can
   * batch its PTE writes (Fitzhardinge's proposal, seed 001). Linux does not: only set_ptes() of a
   * large folio is lazy, order-0 pages are set one by one.
   */
  readonly faultAroundLazy: boolean;
  /**
   * Fault-around only in mappings userspace advised (MADV_SEQUENTIAL, or MADV_WILLNEED): Chris
   * Snook's proposal in seed 001. Linux never did this; off in every profile.
   */
  readonly faultAroundGate: boolean;
  /**
   * filemap_map_pages() lowers mmap_miss for every page it maps (the 2014 original; Andrew Morton:
   * "We treat every speculative faultahead as a hit") instead of once for the faulting folio
   * (current), linux-mm.md §1.3.
   */
  readonly mmapMissPerPage: boolean;
  /**
   * The thread's proposal (seed 001): "create mappings for any nearby page which does become
   * physically present" — when a read completes, map its pages into the address space whose fault
   * started it (where their PTE is none and the page table exists).
   */
  readonly mapOnIoComplete: boolean;
  /**
   * filemap_map_pages() compares `file_end >= folio_next_index(folio)` with file_end the index of
   * the file's last page (74207de2ba10 and its fix, 6.18), so a folio that ends exactly at EOF
   * fails it: fault-around maps only its pages inside the window, and when it is the window's first
   * folio and the PMD is none, nothing at all (filemap_map_pmd() is skipped, so there is no page
   * table) and ->fault with finish_fault() maps it. Measured on 6.18.44 (docs/validation.md).
   */
  readonly mapPagesEofStrict: boolean;
  /**
   * Transparent huge pages for anonymous memory with THP enabled=madvise: a write fault in a
   * VM_HUGEPAGE VMA, on a none PMD whose aligned 2 MiB lies inside the VMA, maps a new PMD-sized
   * folio with one PMD entry (do_huge_pmd_anonymous_page). A read fault there maps the huge zero
   * page (doHugeZeroPmd) unless zeroPage is off.
   */
  readonly anonThp: boolean;
  /**
   * Anonymous read faults map the shared zero page (4 KiB, or the huge zero page under THP). false
   * is what mm_forbids_zeropage() does in do_anonymous_page() and do_huge_pmd_anonymous_page(): a
   * read fault allocates and zeroes a page as a write fault would. Stock x86 never forbids it; a
   * guest booted with PVM's pvm_no_zero_page=1 behaves so (measured: docs/validation.md).
   */
  readonly zeroPage: boolean;
  /**
   * x86 mm_cpumask and lazy TLB as since 6.14 (docs/smp-notes.md §5): switch_mm_irqs_off() only
   * sets the next mm's bit (209954cbc7d0, with the once-a-second trim in flush_tlb_func), and flush
   * IPIs skip lazy CPUs (should_flush_tlb, 4.19) unless page tables were freed. false: as up to
   * 4.18 — switch_mm() clears the previous mm's bit ("stop flush ipis for the previous mm"), the
   * flush goes to every CPU in the mask, and a lazy CPU that takes one leaves the mm (flush_tlb_func
   * → leave_mm: off the mask, CR3 to swapper_pg_dir). Kernels 4.19–6.13 (lazy CPUs skipped, the bit
   * still cleared at each switch) have no profile here.
   */
  readonly lazyMmCpumask: boolean;
  /**
   * folio_pte_batch() in zap_present_ptes() and copy_present_ptes() (David Hildenbrand, "mm/memory:
   * optimize unmap/zap with PTE-mapped THP" and "optimize fork() with PTE-mapped THP", 6.9;
   * linux-mm.md §4.4): consecutive PTEs of one folio are zapped or copied as one batch, so the
   * per-folio work (rmap, reference, RSS) is charged once per batch (guest.zap_folio,
   * guest.fork_folio) and only the per-PTE part per PTE (guest.zap_pte, guest.fork_pte). false:
   * both per PTE.
   */
  readonly folioPteBatch: boolean;
}

export interface KernelProfile {
  readonly name: string;
  readonly description: string;
  readonly policy: VmPolicy;
  /**
   * How this kernel's Xen PV code writes a PTE of a pinned table outside lazy mode
   * (hypervisors.md §2): one update_va_mapping per set_pte_at in 2008, one mmu_update since.
   */
  readonly xenPteWrite: 'mmu_update' | 'update_va_mapping' | 'ptwr';
  /** KVM shadow paging of the kernel's time: 2008's (bypass_guest_pf, no prefetch) or modern. */
  readonly shadowEra: '2008' | 'modern';
  /** vunmap flushing by default: eager before lazy vunmap (db64fe02258f, 2.6.28), else lazy. */
  readonly vmapMode: 'eager' | 'lazy';
  /** Transparent huge pages exist (they came in 2.6.38). */
  readonly hasThp: boolean;
  /** A KVM guest's PV TLB flush, kvm_flush_tlb_multi (4.16), skipping preempted vCPUs. */
  readonly hasPvTlbFlush: boolean;
  /**
   * What a user fault may hold on several CPUs (fault-lock.ts), the default first: mmap_lock
   * everywhere; per-VMA locks from 6.4; Lespinasse's (2021) and Dufour's (2018) speculative faults,
   * never merged, are offered as proposals on the newest profile only, the kernel closest to the
   * ones they were posted against (5.12; 4.x) that has the per-VMA machinery they lean on.
   */
  readonly faultLocks: readonly FaultLockPolicy[];
}

/**
 * Kernel profiles of DESIGN.md ("Kernel profiles and eras"). Each default names what it follows.
 */
export const PROFILES: Readonly<Record<string, KernelProfile>> = {
  'linux-2.6.27': {
    name: 'linux-2.6.27',
    shadowEra: '2008',
    vmapMode: 'eager',
    hasThp: false,
    hasPvTlbFlush: false,
    faultLocks: ['mmap_lock'],
    description:
      "the thread's kernel (2008): no fault-around, order-0 page cache, no lazy set_ptes, one update_va_mapping per fault on Xen",
    xenPteWrite: 'update_va_mapping',
    policy: {
      faultAround: 1, // fault-around arrived in v3.15 (8c6e50b0290c4, linux-mm.md §1.2)
      prefaultOld: false,
      anonPrefault: { kind: 'off' },
      maxFolioOrder: 0,
      pmdMapFileFolios: false,
      // x86 flush_tlb_range() flushed the whole mm in 2.6.27 (UNVERIFIED: from memory of arch/x86/mm/tlb.c).
      tlbFlushCeiling: 0,
      batchedUnmapFlush: false,
      lazySetPtes: false,
      ptCache: 0,
      faultAroundLazy: false,
      faultAroundGate: false,
      mmapMissPerPage: false,
      mapOnIoComplete: false,
      mapPagesEofStrict: false,
      anonThp: false,
      zeroPage: true,
      lazyMmCpumask: false,
      folioPteBatch: false,
    },
  },
  'linux-3.15': {
    name: 'linux-3.15',
    shadowEra: 'modern',
    vmapMode: 'lazy',
    hasThp: true,
    hasPvTlbFlush: false,
    faultLocks: ['mmap_lock'],
    description: 'fault-around 64 KiB (16 PTEs), young prefaulted PTEs on x86, order-0 page cache',
    xenPteWrite: 'mmu_update',
    policy: {
      faultAround: 16, // fault_around_bytes = 65536 (linux-mm.md §1.2)
      prefaultOld: false, // x86 installs young PTEs (§1.4)
      anonPrefault: { kind: 'off' },
      maxFolioOrder: 0,
      pmdMapFileFolios: false,
      tlbFlushCeiling: 33, // tlb_single_page_flush_ceiling (a5102476a24b, linux-mm.md §9)
      batchedUnmapFlush: false, // 4.3
      lazySetPtes: false,
      ptCache: 0,
      faultAroundLazy: false,
      faultAroundGate: false,
      mmapMissPerPage: true,
      mapOnIoComplete: false,
      mapPagesEofStrict: false,
      anonThp: false,
      zeroPage: true,
      lazyMmCpumask: false,
      folioPteBatch: false,
    },
  },
  'linux-6.18': {
    name: 'linux-6.18',
    shadowEra: 'modern',
    vmapMode: 'lazy',
    hasThp: true,
    hasPvTlbFlush: true,
    faultLocks: ['per_vma', 'mmap_lock', 'spf', 'spf_vma'],
    description:
      'large page-cache folios up to PMD order, PMD mapping of PMD-sized file folios, set_ptes in lazy mode, fault-around 16',
    xenPteWrite: 'mmu_update',
    policy: {
      faultAround: 16,
      prefaultOld: false,
      anonPrefault: { kind: 'off' }, // mTHP is off unless enabled (linux-mm.md §3.1)
      maxFolioOrder: 9, // MAX_PAGECACHE_ORDER = HPAGE_PMD_ORDER with THP (§2.1)
      pmdMapFileFolios: true,
      tlbFlushCeiling: 33,
      batchedUnmapFlush: true,
      lazySetPtes: true,
      ptCache: 0,
      faultAroundLazy: false,
      faultAroundGate: false,
      mmapMissPerPage: false,
      mapOnIoComplete: false,
      mapPagesEofStrict: true,
      anonThp: true,
      zeroPage: true,
      lazyMmCpumask: true,
      folioPteBatch: true,
    },
  },
};

export const DEFAULT_PROFILE = 'linux-6.18';

export function getProfile(name: string): KernelProfile {
  const p = PROFILES[name];
  if (p === undefined) {
    throw configError(`unknown profile '${name}'`, `profiles are ${Object.keys(PROFILES).join(', ')}`);
  }
  return p;
}
