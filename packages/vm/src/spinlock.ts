import type { SharedLine } from './cache-line.js';
import type { Kernel } from './kernel.js';
import type { RwSem } from './rwsem.js';
import { lineRmw } from './fault-lock.js';

/**
 * A kernel spinlock, or an rwlock taken for write (the 2008 vmlist_lock), in virtual time: the
 * lock word's cache line moves to the taking CPU (SharedLine), and a CPU that finds the lock held
 * spins until the holder releases it, in arrival order (queued spinlocks are FIFO). The state is an
 * RwSem used in write mode only; the machine's scheduler resumes the spinner at the release, the
 * gap charged to `lock.<name>.wait` — a spinner pays no wake-up, unlike a sleeping rwsem waiter.
 */
export function spinLock(k: Kernel, sem: RwSem, line: SharedLine, task: number): boolean {
  const now = k.now();
  lineRmw(k, line);
  return sem.downWrite(task, now);
}

/** spin_unlock() / write_unlock(): the next spinner in line gets the lock; its task goes on `wake`. */
export function spinUnlock(k: Kernel, sem: RwSem, line: SharedLine, task: number, wake: number[]): void {
  lineRmw(k, line);
  for (const w of sem.upWrite(task)) wake.push(w.task);
}
