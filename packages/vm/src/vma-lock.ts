import { SharedLine } from './cache-line.js';

/**
 * Per-VMA locks (6.4+, mm/mmap_lock.c, include/linux/mmap_lock.h; docs/smp-notes.md §2): a fault
 * takes its VMA's lock for read instead of mmap_lock, so a writer of mmap_lock changing one VMA
 * stops only the faults on that VMA. The state lives in two small objects the mm and each VMA will
 * carry; the scheduler that runs the CPUs blocks and resumes the tasks.
 *
 * Modelled:
 * - mm_lock_seq is odd while mmap_lock is held for write (mmap_write_lock → mm_lock_seqcount_begin;
 *   unlock and downgrade end it);
 * - vma_start_write() (under the mmap write lock) stamps the VMA with the mm's sequence: the VMA is
 *   write-locked until the mmap write lock is released, when every VMA's write lock drops at once
 *   (vma_end_write_all); it first waits for the VMA's readers to drain (vm_refcnt, rcuwait);
 * - vma_start_read() fails on a write-locked or detached VMA, and while a writer waits for the
 *   readers to drain (VM_REFCNT_EXCLUDE_READERS_FLAG); lock_vma_under_rcu() then counts
 *   VMA_LOCK_ABORT (or VMA_LOCK_MISS when the VMA was detached) and the fault falls back to
 *   mmap_lock.
 */

/** The mm's side: mm->mm_lock_seq. */
export class MmLockSeq {
  seq = 0;
  /** mmap_write_lock(): the sequence turns odd. */
  writeBegin(): void {
    if ((this.seq & 1) !== 0) throw new Error('mm_lock_seq: write lock taken twice');
    this.seq++;
  }
  /** mmap_write_unlock() / mmap_write_downgrade(): every VMA write lock of this mm drops. */
  writeEnd(): void {
    if ((this.seq & 1) === 0) throw new Error('mm_lock_seq: write unlock without the lock');
    this.seq++;
  }
  get writeLocked(): boolean {
    return (this.seq & 1) !== 0;
  }
}

/** vma_start_read() results. */
export const VMA_READ_LOCKED = 0;
/** Write-locked or a writer is draining the readers: VMA_LOCK_ABORT, fall back to mmap_lock. */
export const VMA_READ_ABORT = 1;
/** The VMA was detached (unmapped) under the walk: VMA_LOCK_MISS, walk again. */
export const VMA_READ_MISS = 2;

/** A VMA's side: vm_lock_seq and the reader count of vm_refcnt. */
export class VmaLock {
  /** The mm sequence it was write-locked at, or -1. */
  lockSeq = -1;
  readers = 0;
  /** vm_refcnt's cache line: shared by every thread faulting in the VMA. */
  readonly line = new SharedLine('lock.vma.line');
  /** A writer waits for the readers to drain (the task), or -1. */
  drainingWriter = -1;
  detached = false;
  // vm events (CONFIG_PER_VMA_LOCK_STATS).
  success = 0;
  abort = 0;
  miss = 0;

  /** vma_start_read(): take it for read, or say why not. */
  startRead(mm: MmLockSeq): number {
    // vma_start_read() checks the sequence first: a VMA detached while still write-locked (munmap
    // before mmap_write_downgrade) aborts to mmap_lock, it is not walked again. A draining writer
    // has stamped the VMA already (the kernel stops new readers with VM_REFCNT_EXCLUDE_READERS_FLAG
    // first, then stamps): both read as write-locked here.
    if (this.writeLocked(mm)) {
      this.abort++;
      return VMA_READ_ABORT;
    }
    if (this.detached) {
      this.miss++;
      return VMA_READ_MISS;
    }
    this.readers++;
    this.success++;
    return VMA_READ_LOCKED;
  }

  /** vma_end_read(): returns the writer it wakes (the last reader out of a drain), or -1. */
  endRead(): number {
    if (this.readers === 0) throw new Error('vma_end_read without a reader');
    this.readers--;
    if (this.readers > 0 || this.drainingWriter < 0) return -1;
    const w = this.drainingWriter;
    this.drainingWriter = -1;
    return w;
  }

  /**
   * vma_start_write() by `task`, which holds mmap_lock for write: true if the VMA is now
   * write-locked; false if the task waits for the readers (endRead returns it when they are gone,
   * and the VMA is then write-locked).
   */
  startWrite(mm: MmLockSeq, task: number): boolean {
    if (!mm.writeLocked) throw new Error('vma_start_write without mmap_lock held for write');
    this.lockSeq = mm.seq;
    if (this.readers === 0) return true;
    this.drainingWriter = task;
    return false;
  }

  /** Write-locked: stamped with the mm's current (odd) sequence. */
  writeLocked(mm: MmLockSeq): boolean {
    return this.lockSeq === mm.seq && mm.writeLocked;
  }
}
