import { SharedLine } from './cache-line.js';
import { MmLockSeq } from './vma-lock.js';
import { RWSEM_WRITE, RwSem, type Granted } from './rwsem.js';

/**
 * include/linux/mmap_lock.h: mmap_lock is an rwsem plus mm_lock_seq, which is odd exactly while
 * a writer holds the lock (mmap_write_lock → mm_lock_seqcount_begin; mmap_write_unlock and
 * mmap_write_downgrade → vma_end_write_all), so that per-VMA readers can tell a write-locked VMA
 * (vma-lock.ts). A writer granted the lock by a release starts the sequence when it gets it.
 */
export class MmapLock {
  readonly sem = new RwSem('mmap_lock');
  readonly seq = new MmLockSeq();
  /** The count word's cache line: every acquire and release is an RMW on it. */
  readonly line = new SharedLine('lock.mmap_lock.line');
  /**
   * mm->mm_rb_lock's line: Dufour's speculative faults find their VMA under this rwlock (SPF v11
   * replaced SRCU with it), so each such fault makes an RMW on one mm-wide line (`spf_vma`).
   */
  readonly rbLine = new SharedLine('lock.mm_rb.line');

  /** mmap_read_lock(): true if held now, false if queued. */
  readLock(task: number, now: number): boolean {
    return this.sem.downRead(task, now);
  }

  /** mmap_read_trylock(). */
  readTrylock(): boolean {
    return this.sem.tryDownRead();
  }

  /** mmap_write_lock(): true if held now (the sequence turns odd), false if queued. */
  writeLock(task: number, now: number): boolean {
    if (!this.sem.downWrite(task, now)) return false;
    this.seq.writeBegin();
    return true;
  }

  /** mmap_read_unlock(): the tasks granted (a writer among them starts the sequence). */
  readUnlock(): Granted {
    return this.granted(this.sem.upRead());
  }

  /** mmap_write_unlock(): every VMA write lock drops, then the waiters are woken. */
  writeUnlock(task: number): Granted {
    this.seq.writeEnd();
    return this.granted(this.sem.upWrite(task));
  }

  /** mmap_write_downgrade(): VMA write locks drop; the writer keeps the lock for read. */
  downgrade(task: number): Granted {
    this.seq.writeEnd();
    return this.sem.downgradeWrite(task);
  }

  private granted(g: Granted): Granted {
    for (const w of g) if (w.kind === RWSEM_WRITE) this.seq.writeBegin();
    return g;
  }
}
