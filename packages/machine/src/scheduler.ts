import type { CycleLedger } from '@pte/core';

/**
 * Deterministic interleaving of several CPUs in virtual time (docs/smp-notes.md, plan §1): every
 * CPU has its own clock; the CPU with the smallest clock that has a runnable thread runs its next
 * step, ties to the lower CPU id. Steps run in the order of their start times, and everything a
 * step does is seen by the others at once; so a step touches shared state (takes or releases a
 * lock, starts a flush) first, at its start time, and then does its work (sharedPoint() checks
 * it). A system call that takes a lock, works and releases it is three steps. The cycles a step
 * charges to the shared ledger advance the clock of the CPU that ran it. A thread that must wait
 * (a lock held by another CPU) blocks; whoever releases wakes it at the release time: its clock
 * moves to that time and the gap is charged to the wait's ledger category, as time the CPU spent
 * waiting, not running. Same inputs, same order.
 */

/** What a step returns. */
export const STEP_RAN = 0;
/** The thread waits: it does not run until wake() is called for it. */
export const STEP_BLOCKED = 1;
/** The thread finished. */
export const STEP_DONE = 2;

export interface SimThread {
  readonly id: number;
  /** The CPU it runs on: pinned, one thread per CPU (there is no time slicing). */
  readonly cpu: number;
  /** Run one step on its CPU; STEP_RAN, STEP_BLOCKED or STEP_DONE. */
  step(): number;
}

const RUNNABLE = 0;
const BLOCKED = 1;
const DONE = 2;

export class Scheduler {
  /** Each CPU's clock, in cycles. */
  readonly clock: Float64Array;
  private readonly threads: SimThread[] = [];
  private readonly state: number[] = [];
  /** The CPU whose step is running, or -1. */
  running = -1;
  /** Cycles charged during the running step that are not the running CPU's (another's wait). */
  private notMine = 0;
  /** ledger.total() when the running step started. */
  private stepStart = 0;

  /**
   * @param onCpu called before a CPU runs a step (load its state: the kernel's running CPU)
   */
  constructor(
    nrCpus: number,
    private readonly ledger: CycleLedger,
    private readonly onCpu: (cpu: number) => void,
    /** A CPU's last thread finished: the CPU goes idle (enter_lazy_tlb), at the end of that step. */
    private readonly onIdle: (cpu: number) => void = () => {},
  ) {
    this.clock = new Float64Array(nrCpus);
  }

  add(t: SimThread): void {
    if (t.cpu < 0 || t.cpu >= this.clock.length) throw new Error(`thread ${t.id}: no CPU ${t.cpu}`);
    if (this.threads.some((u, j) => u.cpu === t.cpu && this.state[j] !== DONE)) {
      throw new Error(`thread ${t.id}: CPU ${t.cpu} already runs a thread`);
    }
    this.threads.push(t);
    this.state.push(RUNNABLE);
  }

  /** The running CPU's clock now: its clock plus what its step has charged so far. */
  now(): number {
    if (this.running < 0) throw new Error('no CPU is running');
    return this.clock[this.running]! + (this.ledger.total() - this.stepStart - this.notMine);
  }

  /**
   * A step is about to touch shared state: it must not have charged anything yet, or the others
   * would see the change before the time it happens.
   */
  sharedPoint(): void {
    if (this.running >= 0 && this.ledger.total() !== this.stepStart + this.notMine) {
      throw new Error(`CPU ${this.running} touched shared state after charging cycles in the same step`);
    }
  }

  /**
   * Wake `thread` (blocked) at time `at` (the releaser's clock): its CPU's clock moves to `at` if
   * behind, and the gap is charged to `waitCategory` (ledger id).
   */
  wake(thread: number, at: number, waitCategory: number): void {
    const i = this.indexOf(thread);
    if (this.state[i] !== BLOCKED) throw new Error(`thread ${thread} woken while not blocked`);
    this.state[i] = RUNNABLE;
    const cpu = this.threads[i]!.cpu;
    const waited = at - this.clock[cpu]!;
    if (waited > 0) {
      this.clock[cpu] = at;
      this.ledger.charge(waitCategory, waited);
      if (this.running >= 0) this.notMine += waited;
    }
  }

  /**
   * `cycles` the running step charged were another CPU's work (the handler of an interrupt it
   * sent): they go on that CPU's clock instead of the running one's.
   */
  chargeRemote(cpu: number, cycles: number): void {
    if (this.running < 0 || cpu === this.running) return;
    this.clock[cpu] += cycles;
    this.notMine += cycles;
  }

  /** Run until every thread is done. Throws if the ones left are all blocked (a deadlock). */
  run(): void {
    for (;;) {
      const i = this.pick();
      if (i < 0) {
        const blocked = this.threads.filter((_, j) => this.state[j] === BLOCKED).map((t) => t.id);
        if (blocked.length > 0) throw new Error(`deadlock: threads ${blocked.join(', ')} wait forever`);
        return;
      }
      const t = this.threads[i]!;
      this.running = t.cpu;
      this.onCpu(t.cpu);
      this.notMine = 0;
      this.stepStart = this.ledger.total();
      const r = t.step();
      this.clock[t.cpu] += this.ledger.total() - this.stepStart - this.notMine;
      this.running = -1;
      if (r === STEP_BLOCKED) this.state[i] = BLOCKED;
      else if (r === STEP_DONE) {
        this.state[i] = DONE;
        if (!this.threads.some((o, j) => o.cpu === t.cpu && this.state[j] !== DONE)) this.onIdle(t.cpu);
      }
    }
  }

  /** The runnable thread whose CPU has the smallest clock; ties to the lower CPU id, then the earlier thread. */
  private pick(): number {
    let best = -1;
    for (let i = 0; i < this.threads.length; i++) {
      if (this.state[i] !== RUNNABLE) continue;
      if (best < 0) {
        best = i;
        continue;
      }
      const a = this.threads[i]!.cpu;
      const b = this.threads[best]!.cpu;
      const ca = this.clock[a]!;
      const cb = this.clock[b]!;
      if (ca < cb || (ca === cb && a < b)) best = i;
    }
    return best;
  }

  private indexOf(thread: number): number {
    const i = this.threads.findIndex((t) => t.id === thread);
    if (i < 0) throw new Error(`no thread ${thread}`);
    return i;
  }
}
