import { configError } from '@pte/core';
import { SharedLine } from './cache-line.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { VMA_READ_LOCKED, VMA_READ_MISS, VmaLock } from './vma-lock.js';
import type { Vma } from './vma.js';

/**
 * What a user fault holds while it runs, as arch/x86/mm/fault.c do_user_addr_fault() decides it on
 * several CPUs (docs/smp-notes.md §1.2, §2, §3). Three policies, `fault_lock`:
 * - `mmap_lock`: the whole fault under mmap_lock for read (every kernel before 6.4);
 * - `per_vma`: lock_vma_under_rcu() takes the faulting VMA's lock for read and falls back to
 *   mmap_lock when the VMA is write-locked (6.4+; file read faults too from 6.7);
 * - `spf`: Lespinasse's 2021 speculative faults (never merged): no lock at all; the mm's
 *   sequence count is sampled first and checked before the PTE is committed, and a change means
 *   the fault is redone under mmap_lock. Anonymous VMAs only, and off for a single-threaded mm;
 * - `spf_vma`: Dufour's speculative faults (SPF v11, 2018, never merged; linux-mm.md §8): the VMA
 *   is looked up under mm->mm_rb_lock (an rwlock, one mm-wide line) and pinned by its refcount
 *   (get_vma), and its own sequence (vm_sequence) is sampled and checked, so only a change to the
 *   faulting VMA sends the fault back to mmap_lock. Same scope as `spf`.
 * The cost of a lock that is free is in guest.fault_entry already; what several CPUs add is the
 * lock word's cache line moving between them (SharedLine) and the time spent queued.
 */
export const FAULT_LOCKS = ['mmap_lock', 'per_vma', 'spf', 'spf_vma'] as const;
export type FaultLockPolicy = (typeof FAULT_LOCKS)[number];

export function parseFaultLock(text: string, where: string): FaultLockPolicy {
  if (!(FAULT_LOCKS as readonly string[]).includes(text)) {
    throw configError(`${where}: unknown fault lock '${text}'`, `choose one of ${FAULT_LOCKS.join(', ')}`);
  }
  return text as FaultLockPolicy;
}

/** lockFault() results: the fault holds mmap_lock for read. */
export const HELD_MMAP = 0;
/** It holds its VMA's lock for read (vma_start_read). */
export const HELD_VMA = 1;
/** It holds nothing: a speculative fault, checked at unlockFault(). */
export const HELD_SPECULATIVE = 2;
/** It queued for mmap_lock (read): the release that grants it wakes the task, which then holds HELD_MMAP. */
export const QUEUED_MMAP = 3;

/** One task's fault between lockFault and unlockFault (a task faults once at a time: one per task). */
export class FaultLock {
  held = HELD_MMAP;
  /** The VMA whose lock a HELD_VMA fault holds. */
  vma: Vma | null = null;
  /**
   * The sequence a speculative fault sampled: the mm's (`spf`), or, when `vma` is set, the VMA's
   * (`spf_vma`: the mm sequence its last write lock was stamped with, vm_sequence's stand-in).
   */
  seq = 0;
}

/** The VMA's lock, made on first use (a one-CPU run never needs it). */
export function vmaLockOf(vma: Vma): VmaLock {
  let l = vma.lock;
  if (l === null) {
    l = new VmaLock();
    vma.lock = l;
  }
  return l;
}

/**
 * Take what the fault of `task` on page `vpn` of `mm` needs under `policy`, at the running CPU's
 * time. `write`: a write fault (an anonymous one in a VMA with no anon_vma yet needs mmap_lock for
 * a moment, vmf_anon_prepare()).
 */
export function lockFault(
  k: Kernel,
  mm: Mm,
  vpn: number,
  write: boolean,
  policy: FaultLockPolicy,
  task: number,
  fl: FaultLock,
): number {
  fl.vma = null;
  if (policy === 'per_vma' && lockVmaUnderRcu(k, mm, vpn, write, fl)) return (fl.held = HELD_VMA);
  if (policy === 'spf' && speculate(k, mm, vpn, write, fl)) return (fl.held = HELD_SPECULATIVE);
  if (policy === 'spf_vma' && speculateVma(k, mm, vpn, write, fl)) return (fl.held = HELD_SPECULATIVE);
  return (fl.held = mmapReadLock(k, mm, task) ? HELD_MMAP : QUEUED_MMAP);
}

/**
 * Release what lockFault() took. Tasks the release wakes are pushed on `wake` (mmap_lock
 * waiters it granted, a writer waiting for the VMA's readers to drain). Returns false when a
 * speculative fault must be redone under mmap_lock (the sequence moved).
 */
export function unlockFault(k: Kernel, mm: Mm, fl: FaultLock, wake: number[]): boolean {
  switch (fl.held) {
    case HELD_MMAP:
      mmapReadUnlock(k, mm, wake);
      return true;
    case HELD_VMA: {
      const lock = fl.vma!.lock!;
      lineRmw(k, lock.line);
      const writer = lock.endRead();
      if (writer >= 0) wake.push(writer);
      return true;
    }
    case HELD_SPECULATIVE: {
      // The commit's check under the PTL: any mmap writer since the sample invalidates it (spf),
      // or any writer of this VMA (spf_vma, whose put_vma drops the refcount after the check).
      const vma = fl.vma;
      let valid: boolean;
      if (vma === null) valid = mm.mmapLock.seq.seq === fl.seq;
      else {
        const lock = vma.lock!;
        valid = lock.lockSeq === fl.seq && !lock.detached && !lock.writeLocked(mm.mmapLock.seq);
        lineRmw(k, lock.line);
      }
      if (valid) return true;
      k.smp.spfAborts++;
      return false;
    }
    default:
      throw new Error(`unlockFault: the fault holds nothing (${fl.held})`);
  }
}

/** mmap_read_lock() by `task`: the count's line, then the rwsem. True if held, false if queued. */
export function mmapReadLock(k: Kernel, mm: Mm, task: number): boolean {
  const lock = mm.mmapLock;
  const now = k.now();
  lineRmw(k, lock.line);
  k.smp.mmapLockAcquires++;
  if (lock.readLock(task, now)) return true;
  k.smp.mmapLockContended++;
  return false;
}

/** mmap_write_lock() by `task`: true if held, false if queued. */
export function mmapWriteLock(k: Kernel, mm: Mm, task: number): boolean {
  const lock = mm.mmapLock;
  const now = k.now();
  lineRmw(k, lock.line);
  k.smp.mmapLockAcquires++;
  if (lock.writeLock(task, now)) return true;
  k.smp.mmapLockContended++;
  return false;
}

/** mmap_read_unlock(): the tasks granted go on `wake`. */
export function mmapReadUnlock(k: Kernel, mm: Mm, wake: number[]): void {
  const lock = mm.mmapLock;
  lineRmw(k, lock.line);
  for (const w of lock.readUnlock()) wake.push(w.task);
}

/** mmap_write_unlock() by `task`: every VMA write lock drops; the tasks granted go on `wake`. */
export function mmapWriteUnlock(k: Kernel, mm: Mm, task: number, wake: number[]): void {
  const lock = mm.mmapLock;
  lineRmw(k, lock.line);
  for (const w of lock.writeUnlock(task)) wake.push(w.task);
}

/**
 * The split page-table lock of the PTE page a fault just worked on (pte_offset_map_lock →
 * ptlock_ptr: one spinlock per page-table page with USE_SPLIT_PTE_PTLOCKS, i.e. NR_CPUS >= 4):
 * taken and released once, two RMWs on its line, which moves when another CPU used that table
 * last. Held only inside the fault's own step here, so no CPU ever finds it taken.
 */
export function ptlLockUnlock(k: Kernel, ptFrame: number): void {
  if (ptFrame < 0) return;
  let line = k.ptlLines.get(ptFrame);
  if (line === undefined) {
    line = new SharedLine('lock.ptl.line');
    k.ptlLines.set(ptFrame, line);
  }
  lineRmw(k, line); // spin_lock
  lineRmw(k, line); // spin_unlock
}

/** mmap_write_downgrade() by `task`: VMA write locks drop, it keeps the lock for read; readers at the head join (`wake`). */
export function mmapWriteDowngrade(k: Kernel, mm: Mm, task: number, wake: number[]): void {
  const lock = mm.mmapLock;
  lineRmw(k, lock.line);
  for (const w of lock.downgrade(task)) wake.push(w.task);
}

/**
 * lock_vma_under_rcu() and vma_start_read(): true if the fault now holds its VMA's lock. False
 * (fall back to mmap_lock) when there is no VMA, it is write-locked (VMA_LOCK_ABORT) or detached
 * (VMA_LOCK_MISS), or a first anonymous write cannot take mmap_lock's trylock for anon_vma_prepare
 * (vmf_anon_prepare → VMA_LOCK_RETRY).
 */
function lockVmaUnderRcu(k: Kernel, mm: Mm, vpn: number, write: boolean, fl: FaultLock): boolean {
  const vma = mm.vmas.find(vpn);
  if (vma === null) return false; // no VMA: the mmap_lock path finds none either (SIGSEGV)
  const lock = vmaLockOf(vma);
  const r = lock.startRead(mm.mmapLock.seq);
  if (r !== VMA_READ_LOCKED) {
    if (r === VMA_READ_MISS) k.smp.vmaLockMiss++;
    else k.smp.vmaLockAbort++;
    return false;
  }
  lineRmw(k, lock.line);
  if (write && vma.anonVma === false && vma.isAnon()) {
    // vmf_anon_prepare(): anon_vma_prepare() needs mmap_lock; only a trylock under the VMA lock.
    const mmap = mm.mmapLock;
    if (mmap.readTrylock()) {
      k.smp.mmapLockAcquires++;
      lineRmw(k, mmap.line);
      // Released at once (anon_vma_prepare is quick): nobody can be queued behind a reader that
      // got in by trylock, since trylock fails whenever anyone waits.
      mmap.readUnlock();
    } else {
      lineRmw(k, lock.line);
      if (lock.endRead() >= 0) throw new Error('vma_end_read: a writer drained by a fault that never ran');
      k.smp.vmaLockRetry++;
      return false;
    }
  }
  k.smp.vmaLockSuccess++;
  fl.vma = vma;
  return true;
}

/**
 * A speculative anonymous write in a VMA with no anon_vma yet gives up: do_anonymous_page()
 * returns VM_FAULT_RETRY under FAULT_FLAG_SPECULATIVE rather than call __anon_vma_prepare()
 * (Lespinasse's series; Dufour's is taken to do the same, UNVERIFIED), and the fault is redone
 * under mmap_lock. Counted as an attempt and an abort (SPF_ABORT_ANON_VMA).
 */
function needsAnonVma(k: Kernel, vma: Vma, write: boolean): boolean {
  if (!write || vma.anonVma !== false) return false;
  k.smp.spfAttempts++;
  k.smp.spfAborts++;
  return true;
}

/** The speculative path: sample the mm's sequence; an odd one (a writer holds mmap_lock) falls back at once. */
function speculate(k: Kernel, mm: Mm, vpn: number, write: boolean, fl: FaultLock): boolean {
  if (mm.users < 2) return false; // single-threaded: Lespinasse's series does not speculate
  const vma = mm.vmas.find(vpn);
  if (vma === null || !vma.isAnon()) return false; // anonymous VMAs only
  if (needsAnonVma(k, vma, write)) return false;
  k.smp.spfAttempts++;
  const seq = mm.mmapLock.seq.seq;
  if ((seq & 1) !== 0) {
    k.smp.spfAborts++;
    return false;
  }
  fl.seq = seq;
  return true;
}

/**
 * Dufour's speculative path (handle_speculative_fault, SPF v11): find the VMA under mm_rb_lock
 * for read (its line), pin it (get_vma: the VMA's refcount line) and sample its sequence; a VMA
 * being written (write-locked or detached) falls back at once.
 */
function speculateVma(k: Kernel, mm: Mm, vpn: number, write: boolean, fl: FaultLock): boolean {
  if (mm.users < 2) return false; // single-threaded: no speculation, as with spf
  lineRmw(k, mm.mmapLock.rbLine); // read_lock(&mm->mm_rb_lock); the unlock finds the line here
  const vma = mm.vmas.find(vpn);
  if (vma === null || !vma.isAnon()) return false; // anonymous VMAs only
  if (needsAnonVma(k, vma, write)) return false;
  k.smp.spfAttempts++;
  const lock = vmaLockOf(vma);
  if (lock.detached || lock.writeLocked(mm.mmapLock.seq)) {
    k.smp.spfAborts++;
    return false;
  }
  lineRmw(k, lock.line); // get_vma(): atomic_inc(&vma->vm_ref_count)
  fl.vma = vma;
  fl.seq = lock.lockSeq;
  return true;
}

/** An RMW by the running CPU on a lock's `line` now: the cycles it waited for the line, charged to the line's category. */
export function lineRmw(k: Kernel, line: SharedLine): void {
  const moved = line.rmw(k.cpu.id, k.now(), k.costs.lineTransfer);
  if (moved === 0) return;
  if (line.catId < 0) line.catId = k.ledger.id(line.category);
  k.charge(line.catId, moved);
}
