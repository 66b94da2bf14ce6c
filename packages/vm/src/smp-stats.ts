import type { Counters } from '@pte/core';

/**
 * The several-CPU model's counts: locks taken and waited for, speculative faults, flush IPIs.
 * Published only by a machine with more than one CPU, so a one-CPU run's output keeps its keys.
 */
export class SmpStats {
  // mmap_lock (down_read / down_write, and the trylocks that succeeded).
  mmapLockAcquires = 0;
  /** Acquisitions that had to queue (rwsem slow path). */
  mmapLockContended = 0;
  // Per-VMA locks (CONFIG_PER_VMA_LOCK_STATS: vma_lock_success, abort, retry, miss).
  vmaLockSuccess = 0;
  vmaLockAbort = 0;
  vmaLockRetry = 0;
  vmaLockMiss = 0;
  // Speculative faults (Lespinasse 2021): tried, and fallen back to mmap_lock.
  spfAttempts = 0;
  spfAborts = 0;
  /** PTEs reclaim unmapped (try_to_unmap): what its flushes, batched or not, cover. */
  reclaimUnmapped = 0;
  /** Flush targets a KVM guest skipped because the host had them preempted (kvm_flush_tlb_multi). */
  pvFlushSkipped = 0;

  addCountersTo(c: Counters, ipis: number): void {
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('lock.mmap_lock.acquires', this.mmapLockAcquires);
    add('lock.mmap_lock.contended', this.mmapLockContended);
    add('lock.vma.acquires', this.vmaLockSuccess);
    add('lock.vma.contended', this.vmaLockAbort + this.vmaLockMiss + this.vmaLockRetry);
    add('lock.vma.abort', this.vmaLockAbort);
    add('lock.vma.retry', this.vmaLockRetry);
    add('lock.vma.miss', this.vmaLockMiss);
    add('spf.attempts', this.spfAttempts);
    add('spf.aborts', this.spfAborts);
    add('smp.ipis', ipis);
    add('reclaim.unmapped_ptes', this.reclaimUnmapped);
    add('smp.pv_flush_skipped', this.pvFlushSkipped);
  }
}
