import { ACCESS_USER, ACCESS_WRITE, TRANSLATE_GP } from '@pte/arch-x86';
import {
  FAULT_RETRY,
  FaultLock,
  handleMmFault,
  heapVma,
  HELD_MMAP,
  HELD_SPECULATIVE,
  lockFault,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteDowngrade,
  mmapWriteLock,
  mmapWriteUnlock,
  ptlLockUnlock,
  QUEUED_MMAP,
  spinLock,
  spinUnlock,
  unlockFault,
  vmaLockOf,
  VM_READ,
  VM_WRITE,
  vpnHi,
  vpnLo,
  type FaultLockPolicy,
  type Kernel,
  type Mm,
  type Task,
  type Vma,
} from '@pte/vm';
import { AccessStream, type PatternSpec } from '@pte/workloads';
import { Prng } from '@pte/core';
import { FAULT_FIXED_BY_HOST } from './platform.js';
import { Scheduler, STEP_BLOCKED, STEP_DONE, STEP_RAN, type SimThread } from './scheduler.js';
import type { Machine } from './machine.js';

/** What the threads of one runThreads share: the machine, its scheduler and the run's fault lock. */
export interface ThreadHost {
  readonly m: Machine;
  readonly k: Kernel;
  readonly sched: Scheduler;
  readonly faultLock: FaultLockPolicy;
  /** Ledger ids of the waiting categories. */
  readonly catMmapWait: number;
  readonly catVmaWait: number;
  /** Tasks a release woke (reused). */
  readonly wake: number[];
  /** The ledger category each blocked thread's wait goes to, by thread id. */
  readonly waitCat: number[];
  /** Touching threads not finished: a writer without a round count stops when none is left. */
  faultersLeft: number;
  /** tlb.walk's ledger id and tlb.walk_ref's cycles (a vmap thread's touches). */
  readonly catWalk: number;
  readonly walkRef: number;
}

/** Wake the threads a release granted, at the releaser's time; each one's wait goes to its category. */
export function wakeGranted(h: ThreadHost): void {
  const at = h.sched.now();
  for (const t of h.wake) h.sched.wake(t, at, h.waitCat[t]!);
  h.wake.length = 0;
}

// FaultingThread states.
const ACCESS = 0;
const LOCK = 1;
const FAULT = 2;
const UNLOCK = 3;

/**
 * A thread that touches pages of its range, one page per step, with the fault path split at its
 * locks (docs/smp-notes.md §1.2), so that a lock is taken and released at the start of a step:
 * 1. translate; a #PF ends the step (the walk's cycles are its own);
 * 2. take what the fault needs (fault-lock.ts); if mmap_lock is queued the thread blocks and the
 *    release that grants it resumes it; then handle_mm_fault;
 * 3. release, wake whom the release granted, and retry the translation.
 * A speculative fault whose sequence moved is redone under mmap_lock: the work is charged again
 * (the page tables already hold its PTE; the redo's own result would be the same).
 */
export class FaultingThread implements SimThread {
  private state = ACCESS;
  private vpn = -1;
  private code = 0;
  private tries = 0;
  private loaded = false;
  private woken = false;
  private segv = false;
  /** The last speculative fault's cycles, charged again when it is redone under mmap_lock. */
  private specCycles = 0;
  private redo = false;
  private readonly fl = new FaultLock();
  private readonly buf = new Uint32Array(1);
  private readonly order: AccessStream;
  private readonly mm: Mm;

  constructor(
    private readonly h: ThreadHost,
    readonly id: number,
    readonly cpu: number,
    private readonly task: Task,
    private readonly start: number,
    pages: number,
    pattern: PatternSpec,
    private readonly access: number,
    seed: number,
    /** It is a touching thread of its own (a writer waits for it), not one chunk of another thread's work. */
    private readonly counted = true,
  ) {
    this.order = new AccessStream(pattern, pages, new Prng(seed, `thread.${id}`));
    this.mm = task.mm;
  }

  step(): number {
    switch (this.state) {
      case ACCESS:
        return this.next();
      case LOCK:
        return this.lock(this.redo ? 'mmap_lock' : this.h.faultLock);
      case FAULT:
        return this.fault();
      default:
        return this.unlock();
    }
  }

  /** The next page (or the same one again), translated. */
  private next(): number {
    const m = this.h.m;
    if (!this.loaded) {
      m.switchTo(this.task);
      this.loaded = true;
    }
    if (this.vpn < 0) {
      if (this.order.fill(this.buf) === 0) {
        if (this.counted) this.h.faultersLeft--;
        return STEP_DONE;
      }
      this.vpn = this.start + this.buf[0]!;
      this.tries = 0;
    }
    return this.translate();
  }

  private translate(): number {
    const m = this.h.m;
    const hi = vpnHi(this.vpn);
    const lo = vpnLo(this.vpn);
    let pfn = m.mmu.translate(hi, lo, this.access);
    while (pfn < 0) {
      if (pfn === TRANSLATE_GP) throw new Error(`non-canonical address for page ${this.vpn}`);
      const code = m.platform.pageFaultExit(hi, lo, this.access, m.mmu.faultCode);
      if (++this.tries > 12) {
        const why = m.platform.unfixableFault(this.vpn);
        throw why ?? new Error(`page ${this.vpn} still faults after ${this.tries} retries`);
      }
      if (code === FAULT_FIXED_BY_HOST) {
        pfn = m.mmu.translate(hi, lo, this.access);
        continue;
      }
      this.code = code;
      this.state = LOCK;
      return STEP_RAN;
    }
    this.pageDone();
    return STEP_RAN;
  }

  private pageDone(): void {
    const m = this.h.m;
    m.touches++;
    m.accesses++;
    this.h.k.touchClock++;
    this.vpn = -1;
    this.state = ACCESS;
  }

  private lock(policy: FaultLockPolicy): number {
    const h = this.h;
    h.sched.sharedPoint();
    const write = (this.code & ACCESS_WRITE) !== 0;
    if (lockFault(h.k, this.mm, this.vpn, write, policy, this.id, this.fl) === QUEUED_MMAP) {
      h.waitCat[this.id] = h.catMmapWait;
      this.state = FAULT;
      this.woken = true;
      return STEP_BLOCKED;
    }
    return this.fault();
  }

  private fault(): number {
    const h = this.h;
    const k = h.k;
    if (this.woken) {
      // The woken task is scheduled in (try_to_wake_up, the IPI, schedule()) holding the lock.
      this.woken = false;
      this.fl.held = HELD_MMAP;
      k.charge(h.catMmapWait, k.costs.wakeup);
    }
    this.state = UNLOCK;
    if (this.redo) {
      this.redo = false;
      k.charge(k.catFault, this.specCycles);
      return STEP_RAN;
    }
    const t0 = k.ledger.total();
    h.m.pv.onPageFault();
    this.segv = handleMmFault(k, this.mm, this.vpn, this.code | ACCESS_USER) !== FAULT_RETRY;
    ptlLockUnlock(k, k.cpu.vmf.pte);
    if (this.fl.held === HELD_SPECULATIVE) this.specCycles = k.ledger.total() - t0;
    return STEP_RAN;
  }

  private unlock(): number {
    const h = this.h;
    h.sched.sharedPoint();
    const committed = unlockFault(h.k, this.mm, this.fl, h.wake);
    wakeGranted(h);
    if (!committed) {
      this.redo = true;
      this.state = LOCK;
      return STEP_RAN;
    }
    if (this.segv) {
      h.m.segv++;
      this.pageDone();
      return STEP_RAN;
    }
    this.state = ACCESS;
    return this.translate();
  }
}

/** unmapStep's answer when the munmap is over (not a scheduler step result). */
const UNMAP_FINISHED = -1;

/** Where a lockedSection is: 0 before the lock, 1 holding it (the work may be waiting), 2 work done. */
interface Section {
  phase: number;
}

/**
 * What the mmap_lock writers (MapUnmapThread, ChunkThread, ProtectThread) share: blocking on a lock with the
 * wait's ledger category, the wake-up a sleeper pays when granted, and mmap / munmap of an
 * anonymous region under the write lock.
 */
abstract class WriterThread {
  protected woken = false;

  constructor(
    protected readonly h: ThreadHost,
    readonly id: number,
    readonly cpu: number,
    protected readonly task: Task,
    protected readonly pages: number,
  ) {}

  /** When the thread blocked (its clock), to tell a short wait from a long one. */
  private blockedAt = 0;

  /** Wait for a lock; its release resumes the thread (the wait goes to `cat`). */
  protected block(cat: number): number {
    this.h.waitCat[this.id] = cat;
    this.woken = true;
    this.blockedAt = this.h.sched.now();
    return STEP_BLOCKED;
  }

  /**
   * A woken task is scheduled in (try_to_wake_up, the IPI, schedule()) before it goes on — unless
   * it never slept: a writer spins for the lock first (rwsem_optimistic_spin) and only sleeps
   * after rwsem_rspin_threshold (smp.rwsem_spin), so a shorter wait costs no wake-up.
   */
  protected wokenUp(): void {
    if (!this.woken) return;
    this.woken = false;
    const k = this.h.k;
    if (this.h.sched.now() - this.blockedAt <= k.costs.rwsemSpin) return;
    k.charge(this.h.waitCat[this.id]!, k.costs.wakeup);
  }

  /** mmap(2) of `pages` anonymous pages, its fixed cost included (mmap_lock held for write). */
  protected mapAnon(): Vma {
    const k = this.h.k;
    k.charge(k.catFault, k.costs.mmapCall);
    return this.h.m.mmap(this.task, { pages: this.pages, prot: VM_READ | VM_WRITE, shared: false, file: null });
  }

  /**
   * A system call's section under one lock, one step per lock operation: take the lock at a shared
   * point (queueing on it if need be: the granting release resumes the thread), run `work` under it
   * — which may wait again, returning false with the thread blocked — then release at a shared
   * point and wake whom the release granted. `s.phase` keeps the place between steps. Returns true
   * when the section is over, else false with the step's result in `stepResult`.
   */
  protected lockedSection(s: Section, take: () => boolean, work: () => boolean, release: () => void): boolean {
    const h = this.h;
    switch (s.phase) {
      case 0:
        h.sched.sharedPoint();
        s.phase = 1;
        if (!take()) {
          this.stepResult = this.block(h.catMmapWait);
          return false;
        }
        return this.sectionWork(s, work);
      case 1:
        return this.sectionWork(s, work);
      default:
        h.sched.sharedPoint();
        release();
        wakeGranted(h);
        s.phase = 0;
        return true;
    }
  }

  private sectionWork(s: Section, work: () => boolean): false {
    this.wokenUp();
    this.stepResult = STEP_RAN;
    if (work()) s.phase = 2;
    return false;
  }

  private readonly mapSection: Section = { phase: 0 };
  private loaded = false;
  private mapped: Vma | null = null;
  private readonly takeWrite = () => mmapWriteLock(this.h.k, this.task.mm, this.id);
  private readonly releaseWrite = () => mmapWriteUnlock(this.h.k, this.task.mm, this.id, this.h.wake);
  private readonly takeRead = () => mmapReadLock(this.h.k, this.task.mm, this.id);
  private readonly releaseRead = () => mmapReadUnlock(this.h.k, this.task.mm, this.h.wake);
  private readonly mapWork = () => {
    this.mapped = this.mapAnon();
    return true;
  };

  /**
   * mmap(2) of `pages` anonymous pages under mmap_lock for write (lockedSection; the first call
   * also loads the mm: switch_mm is a step of its own, so the CR3 write is charged before the lock
   * is taken). Returns the VMA when done, else null with the step's result in `stepResult`.
   */
  protected mapStep(): Vma | null {
    if (!this.loaded) {
      this.h.m.switchTo(this.task);
      this.loaded = true;
      this.stepResult = STEP_RAN;
      return null;
    }
    if (!this.lockedSection(this.mapSection, this.takeWrite, this.mapWork, this.releaseWrite)) return null;
    const vma = this.mapped!;
    this.mapped = null;
    return vma;
  }

  /** No mmap is under way (mapStep holds no lock): a writer may stop here. */
  protected get mapIdle(): boolean {
    return this.mapSection.phase === 0;
  }

  /** The last step's result when a step method returned null or false. */
  protected stepResult = STEP_RAN;

  /** Where unmapStep is: taking the write lock, write-locking the VMA, downgraded and zapping, unlocking. */
  private unmapPhase = 0;

  /**
   * munmap(2) of `vma` as the kernel does it (__vm_munmap → do_vmi_munmap → vms_complete_munmap_vmas):
   * under mmap_lock for write the VMA is write-locked (vma_start_write, waiting for its fault
   * readers to drain) and detached; then mmap_write_downgrade() lets readers back in while the
   * zap, free_pgtables and the TLB flush run under the read lock; then mmap_read_unlock(). One
   * step per lock operation. Returns UNMAP_FINISHED when done, else the step's result.
   */
  protected unmapStep(vma: Vma): number {
    const h = this.h;
    const k = h.k;
    const mm = this.task.mm;
    switch (this.unmapPhase) {
      case 0:
        h.sched.sharedPoint();
        this.unmapPhase = 1;
        if (!mmapWriteLock(k, mm, this.id)) return this.block(h.catMmapWait);
        return this.detach(vma);
      case 1:
        return this.detach(vma);
      case 2:
        h.sched.sharedPoint();
        mmapWriteDowngrade(k, mm, this.id, h.wake);
        wakeGranted(h);
        k.charge(k.catZap, k.costs.mmapCall);
        h.m.munmap(this.task, vma.start, this.pages);
        // The flush is complete: no CPU may still translate the unmapped pages (--check).
        h.m.verify('after a writer thread munmap');
        this.unmapPhase = 3;
        return STEP_RAN;
      default:
        h.sched.sharedPoint();
        mmapReadUnlock(k, mm, h.wake);
        wakeGranted(h);
        this.unmapPhase = 0;
        return UNMAP_FINISHED;
    }
  }

  private readonly populateSection: Section = { phase: 0 };
  /** The VMA protectStep works on, and its new protection; the pages populateStep faults in. */
  private target: Vma | null = null;
  private prot = 0;
  private fillStart = 0;
  private fillEnd = 0;
  private readonly populateWork = () => {
    const m = this.h.m;
    const mm = this.task.mm;
    for (let vpn = this.fillStart; vpn < this.fillEnd; vpn++) m.accessPage(mm, vpn, ACCESS_USER | ACCESS_WRITE);
    return true;
  };

  /**
   * populate_vma_page_range() (MAP_POPULATE's __mm_populate): fault pages [start, end) in for
   * write under mmap_lock for read (lockedSection); true when done.
   */
  protected populateStep(start: number, end: number): boolean {
    this.fillStart = start;
    this.fillEnd = end;
    return this.lockedSection(this.populateSection, this.takeRead, this.populateWork, this.releaseRead);
  }

  private readonly protectSection: Section = { phase: 0 };
  /** mprotect_fixup()'s vma_start_write() (waiting for the VMA's fault readers), then change_protection(). */
  private readonly protectWork = () => {
    const h = this.h;
    const k = h.k;
    const vma = this.target!;
    if (!vmaLockOf(vma).startWrite(this.task.mm.mmapLock.seq, this.id)) {
      this.stepResult = this.block(h.catVmaWait);
      return false;
    }
    k.charge(k.catFault, k.costs.mmapCall);
    h.m.mprotect(this.task, vma.start, vma.end - vma.start, this.prot);
    h.m.verify('after a writer thread mprotect');
    return true;
  };

  /**
   * mprotect(2) of the whole of `vma` to `prot` (do_mprotect_pkey): mmap_lock for write, then
   * mprotect_fixup() write-locks the VMA and change_protection() rewrites its PTEs and flushes them,
   * all before mmap_write_unlock() (lockedSection); true when done.
   */
  protected protectStep(vma: Vma, prot: number): boolean {
    this.target = vma;
    this.prot = prot;
    return this.lockedSection(this.protectSection, this.takeWrite, this.protectWork, this.releaseWrite);
  }

  private readonly brkSection: Section = { phase: 0 };
  private brkTo = 0;
  /**
   * brk() under the write lock: the heap VMA it expands or cuts back is write-locked first
   * (vma_start_write in do_brk_flags, or in the munmap of the tail), waiting for its fault readers.
   */
  private readonly brkWork = () => {
    const h = this.h;
    const k = h.k;
    const heap = heapVma(this.task.mm);
    if (heap !== null && !vmaLockOf(heap).startWrite(this.task.mm.mmapLock.seq, this.id)) {
      this.stepResult = this.block(h.catVmaWait);
      return false;
    }
    k.charge(k.catFault, k.costs.mmapCall);
    h.m.brk(this.task, this.brkTo);
    h.m.verify('after a writer thread brk');
    return true;
  };

  /**
   * brk(2) to page `to` (SYSCALL brk): mmap_lock for write, the heap VMA write-locked, the break
   * moved — grown in place (vma_expand) or cut back (the tail unmapped and flushed, here under the
   * write lock throughout, where the kernel downgrades it for the zap as munmap does); true when done.
   */
  protected brkStep(to: number): boolean {
    this.brkTo = to;
    return this.lockedSection(this.brkSection, this.takeWrite, this.brkWork, this.releaseWrite);
  }

  /** vma_start_write() and the VMA's detach, under the write lock; blocked while its fault readers drain. */
  private detach(vma: Vma): number {
    this.wokenUp();
    const lock = vmaLockOf(vma);
    if (!lock.startWrite(this.task.mm.mmapLock.seq, this.id)) return this.block(this.h.catVmaWait);
    lock.detached = true;
    this.unmapPhase = 2;
    return STEP_RAN;
  }
}

// MapUnmapThread states.
const W_MAP = 0;
const P_WORK = 1;
const W_UNMAP = 2;

/**
 * A thread that maps `pages` anonymous pages with MAP_POPULATE and unmaps them again, `rounds`
 * times (-1: until the touching threads are done): the mmap_lock writer of pft runs. mmap and
 * munmap each take mmap_lock for write (queueing if needed), do the call, release and wake; MAP_POPULATE then
 * faults the pages in under mmap_lock for read (__mm_populate), so the munmap that follows has
 * PTEs to zap and a TLB flush to send to the CPUs running the mm. munmap write-locks the VMA it
 * removes (vma_start_write, waiting for its fault readers to drain) and marks its lock detached.
 * munmap downgrades to the read lock for the zap and its flush (unmapStep). The system call's own
 * fixed cost (`guest.mmap_call`) is charged here only: one-CPU runs predate it and leave it out.
 */
export class MapUnmapThread extends WriterThread implements SimThread {
  private state = W_MAP;
  private round = 0;
  private vma: Vma | null = null;

  constructor(
    h: ThreadHost,
    id: number,
    cpu: number,
    task: Task,
    pages: number,
    private readonly rounds: number,
  ) {
    super(h, id, cpu, task, pages);
  }

  step(): number {
    switch (this.state) {
      case W_MAP: {
        if (this.mapIdle && (this.round === this.rounds || (this.rounds < 0 && this.h.faultersLeft === 0)))
          return STEP_DONE;
        const vma = this.mapStep();
        if (vma === null) return this.stepResult;
        this.vma = vma;
        this.state = P_WORK;
        return STEP_RAN;
      }
      case P_WORK:
        if (!this.populateStep(this.vma!.start, this.vma!.end)) return this.stepResult;
        this.state = W_UNMAP;
        return STEP_RAN;
      default: {
        const r = this.unmapStep(this.vma!);
        if (r !== UNMAP_FINISHED) return r;
        this.vma = null;
        this.round++;
        this.state = W_MAP;
        return STEP_RAN;
      }
    }
  }
}

/**
 * A writer that sets itself up once, then runs its round — a fixed list of locked steps — again
 * and again until the touching threads are done (it stops only between rounds, holding no lock).
 * `setupStep` and each round step return true when done, else false with the step's result in
 * `stepResult`, as mapStep and the other locked steps do.
 */
abstract class RoundWriter extends WriterThread implements SimThread {
  private setUp = false;
  /** The round step running, or -1 between rounds. */
  private at = -1;
  protected abstract setupStep(): boolean;
  protected abstract readonly round: ReadonlyArray<() => boolean>;

  step(): number {
    if (!this.setUp) {
      if (!this.setupStep()) return this.stepResult;
      this.setUp = true;
      return STEP_RAN;
    }
    if (this.at < 0) {
      if (this.h.faultersLeft === 0) return STEP_DONE;
      this.at = 0;
    }
    if (!this.round[this.at]!()) return this.stepResult;
    this.at = this.at + 1 === this.round.length ? -1 : this.at + 1;
    return STEP_RAN;
  }
}

/**
 * A thread that maps `pages` anonymous pages once, then until the touching threads are done
 * writes them (faulting them in, or making them writable again, under mmap_lock for read as
 * MAP_POPULATE does), mprotects them read-only and back to read-write — the write-protect cycle
 * of a JIT or a garbage collector's barrier: the mprotect writer of mmap_lock. Each mprotect takes
 * mmap_lock for write and write-locks the VMA (protectStep); dropping write from populated PTEs
 * flushes them on every CPU running the mm.
 */
export class ProtectThread extends RoundWriter {
  private vma: Vma | null = null;

  protected setupStep(): boolean {
    this.vma = this.mapStep();
    return this.vma !== null;
  }

  protected readonly round = [
    () => this.populateStep(this.vma!.start, this.vma!.end),
    () => this.protectStep(this.vma!, VM_READ),
    () => this.protectStep(this.vma!, VM_READ | VM_WRITE),
  ];
}

/**
 * A thread that moves its process's program break, as malloc does for a small arena: once up by
 * `pages`, then until the touching threads are done up by `pages` more, writing the new pages, and
 * back down (brk). Each brk takes mmap_lock for write and write-locks the heap VMA; cutting back
 * zaps the pages and flushes them on every CPU running the mm.
 */
export class BrkThread extends RoundWriter {
  /** The break the thread keeps between rounds: its arena's first `pages` pages. */
  private base = -1;

  protected setupStep(): boolean {
    if (this.base < 0) {
      // A step of its own, as mapStep's: load the mm, and read the break (glibc's brk(0)).
      const mm = this.task.mm;
      this.h.m.switchTo(this.task);
      if (mm.brk < 0) this.h.m.brk(this.task, 0);
      this.base = mm.brk + this.pages;
      this.stepResult = STEP_RAN;
      return false;
    }
    return this.brkStep(this.base);
  }

  protected readonly round = [
    () => this.brkStep(this.base + this.pages),
    () => this.populateStep(this.base, this.base + this.pages),
    () => this.brkStep(this.base),
  ];
}

// VmapThread states.
const V_MAP_LOCK = 0;
const V_MAP = 1;
const V_MAP_UNLOCK = 2;
const V_UNMAP_LOCK = 3;
const V_UNMAP = 4;
const V_UNMAP_UNLOCK = 5;

/** The vmap allocators of smp/vmap-scaling. */
export type VmapEra = '2008' | 'lazy' | '6.18';

/**
 * A thread mapping `pages` frames into the kernel, touching them and unmapping them, `rounds`
 * times: Nick Piggin's 2008 benchmark of the vmap layer. Per era:
 * - `2008` (≤ 2.6.27): get_vm_area() and remove_vm_area() take the global vmlist_lock for write,
 *   and vunmap's flush_tlb_kernel_range() — an IPI to every other CPU, waited for — runs under it;
 * - `lazy` (the rewrite, 2.6.28) and `6.18`: small maps come from the CPU's own vmap block
 *   (vm_map_ram → vb_alloc, "a per-CPU allocator for small vmaps"; vm_unmap_ram → vb_free under the
 *   block's lock), so no line is shared; the PTEs are cleared at once and the flush waits for a
 *   purge of lazy_max_pages (one flush for all). For this benchmark the two eras coincide: 6.18's
 *   purge helpers start only when the backlog reaches twice lazy_max_pages (docs/smp-notes.md,
 *   "Known gaps"), which a purge started at the threshold never has. A block's retirement to the
 *   lazy list (vmap_lazy_nr, vmap_area_lock) is not modelled.
 * The kernel's touch of each freshly mapped page is a TLB miss: a 4-level walk.
 */
export class VmapThread implements SimThread {
  private state = V_MAP_LOCK;
  private round = 0;
  private area = -1;
  private readonly frames: number[] = [];

  constructor(
    private readonly h: ThreadHost,
    readonly id: number,
    readonly cpu: number,
    private readonly era: VmapEra,
    private readonly pages: number,
    private readonly rounds: number,
  ) {
    const f = h.k.frames;
    for (let i = 0; i < pages; i++) {
      const pfn = f.allocOrFail(0);
      f.refcount[pfn] = 1;
      this.frames.push(pfn);
    }
  }

  step(): number {
    const h = this.h;
    const k = h.k;
    const v = h.m.vmalloc();
    switch (this.state) {
      case V_MAP_LOCK:
        if (this.round === this.rounds) return this.done();
        this.state = V_MAP;
        if (this.era === '2008') {
          h.sched.sharedPoint();
          if (!spinLock(k, v.vmlistLock, v.vmlistLine, this.id)) return this.spin(v.vmlistLock.name);
        }
        return this.map();
      case V_MAP:
        return this.map();
      case V_MAP_UNLOCK:
        if (this.era === '2008') {
          h.sched.sharedPoint();
          spinUnlock(k, v.vmlistLock, v.vmlistLine, this.id, h.wake);
          wakeGranted(h);
        }
        // The kernel's first touch of each freshly mapped page misses the TLB: a 4-level walk.
        k.charge(h.catWalk, this.pages * 4 * h.walkRef);
        this.state = V_UNMAP_LOCK;
        return STEP_RAN;
      case V_UNMAP_LOCK:
        this.state = V_UNMAP;
        if (this.era === '2008') {
          h.sched.sharedPoint();
          if (!spinLock(k, v.vmlistLock, v.vmlistLine, this.id)) return this.spin(v.vmlistLock.name);
        }
        return this.unmap();
      case V_UNMAP:
        return this.unmap();
      default:
        h.sched.sharedPoint();
        spinUnlock(k, v.vmlistLock, v.vmlistLine, this.id, h.wake);
        wakeGranted(h);
        this.state = V_MAP_LOCK;
        return STEP_RAN;
    }
  }

  /** Spin for `name` until the holder's release resumes this thread (no wake-up: it never slept). */
  private spin(name: string): number {
    this.h.waitCat[this.id] = this.h.k.ledger.id(`lock.${name}.wait`);
    return STEP_BLOCKED;
  }

  private map(): number {
    const k = this.h.k;
    k.charge(k.ledger.id('guest.vmap'), k.costs.vmapArea);
    this.area = this.h.m.vmalloc().vmap(this.frames);
    this.state = V_MAP_UNLOCK;
    return STEP_RAN;
  }

  private unmap(): number {
    const k = this.h.k;
    k.charge(k.ledger.id('guest.vmap'), k.costs.vmapArea);
    this.h.m.vmalloc().vunmap(this.area);
    this.round++;
    if (this.era === '2008') {
      this.state = V_UNMAP_UNLOCK;
    } else {
      this.state = V_MAP_LOCK;
    }
    return STEP_RAN;
  }

  private done(): number {
    const f = this.h.k.frames;
    for (const pfn of this.frames) {
      f.refcount[pfn] = 0;
      f.free(pfn, 0);
    }
    this.frames.length = 0;
    return STEP_DONE;
  }
}

// ChunkThread states.
const C_MAP = 0;
const C_TOUCH = 1;
const C_UNMAP = 2;

/**
 * An ebizzy thread (ebizzy -mT: every chunk mmap'd, and touched in place of the copy and the
 * search): `rounds` times, map a chunk of `pages` anonymous pages under mmap_lock for write, write
 * every page (each fault under the run's fault lock, as a touching thread does), and unmap it under
 * mmap_lock for write (write-locking its VMA, draining the VMA's fault readers; the flush reaches
 * every CPU running the mm). munmap downgrades to the read lock for the zap (unmapStep).
 */
export class ChunkThread extends WriterThread implements SimThread {
  private state = C_MAP;
  private round = 0;
  private vma: Vma | null = null;
  private inner: FaultingThread | null = null;

  constructor(
    h: ThreadHost,
    id: number,
    cpu: number,
    task: Task,
    pages: number,
    private readonly rounds: number,
    private readonly seed: number,
  ) {
    super(h, id, cpu, task, pages);
  }

  step(): number {
    switch (this.state) {
      case C_MAP: {
        if (this.mapIdle && this.round === this.rounds) return STEP_DONE;
        const vma = this.mapStep();
        if (vma === null) return this.stepResult;
        this.vma = vma;
        this.inner = new FaultingThread(
          this.h,
          this.id,
          this.cpu,
          this.task,
          vma.start,
          this.pages,
          { kind: 'seq' },
          ACCESS_USER | ACCESS_WRITE,
          this.seed,
          false,
        );
        this.state = C_TOUCH;
        return STEP_RAN;
      }
      case C_TOUCH: {
        const r = this.inner!.step();
        if (r !== STEP_DONE) return r;
        this.inner = null;
        this.state = C_UNMAP;
        return STEP_RAN;
      }
      default: {
        const r = this.unmapStep(this.vma!);
        if (r !== UNMAP_FINISHED) return r;
        this.vma = null;
        this.round++;
        this.state = C_MAP;
        return STEP_RAN;
      }
    }
  }
}
