import { MmapLock } from './mmap-lock.js';
import { MmTlbState } from './tlb-flush.js';
import { VmaTree } from './vma.js';

/** RSS counter types (MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES). */
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SHMEMPAGES = 2;

/**
 * An address space (`struct mm_struct`): the top-level table, the VMAs, RSS counters by type,
 * page-table pages in use, and the per-mm state of the anonymous prefault policy.
 */
export class Mm {
  readonly vmas = new VmaTree();
  readonly rss = new Float64Array(3);
  /** Highest RSS seen (hiwater_rss). */
  hiwaterRss = 0;
  /** Page-table pages below the root. */
  ptPages = 0;
  /** PTEs holding swap entries (MM_SWAPENTS). */
  swapEnts = 0;
  /** init_mm, the kernel's address space (vmalloc): no user mm for flushes. */
  isInitMm = false;
  /** mm_users: the tasks (threads) sharing this address space; the last exit tears it down. */
  users = 1;
  /** PCID of this address space (0 without PCID). */
  pcid = 0;
  /** Cache of the last PTE page found: PMD-range key (vpn / 512) → table frame. */
  cachedPmdKey = -1;
  cachedPt = -1;
  /**
   * Page tables deposited under PMD-mapped anonymous THPs (pgtable_trans_huge_deposit): PMD-range
   * key (vpn / 512) → table frame, withdrawn when the PMD is split or zapped. Counted in ptPages.
   */
  readonly deposit = new Map<number, number>();
  /** mm->context's flush state: mm_cpumask, tlb_gen (arch/x86/mm/tlb.c); Kernel.newMm sets its first trim. */
  readonly tlb = new MmTlbState(Number.POSITIVE_INFINITY);
  /** mmap_lock: the rwsem and mm_lock_seq (mmap-lock.ts); taken only by the several-CPU model. */
  readonly mmapLock = new MmapLock();
  /** mm->start_brk and mm->brk as page numbers (brk.ts); -1 until the first brk(). */
  brkStart = -1;
  brk = -1;
  /** Lameter's anticipatory prefault: the next address predicted, and the current order. */
  anonNextVpn = -1;
  anonOrder = 0;

  constructor(
    readonly id: number,
    /** Top-level table frame (pgd). */
    readonly root: number,
  ) {}

  get rssPages(): number {
    return this.rss[0]! + this.rss[1]! + this.rss[2]!;
  }

  addRss(type: number, pages: number): void {
    this.rss[type] = this.rss[type]! + pages;
    if (pages > 0) {
      const total = this.rssPages;
      if (total > this.hiwaterRss) this.hiwaterRss = total;
    }
  }

  /** Forget the PTE-page cache (after page tables are freed). */
  dropPtCache(): void {
    this.cachedPmdKey = -1;
    this.cachedPt = -1;
  }
}
