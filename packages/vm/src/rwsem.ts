/**
 * kernel/locking/rwsem.c: a reader-writer semaphore (mmap_lock) as a state machine in virtual time,
 * for the several-CPU model (docs/smp-notes.md §1.1). It decides who holds the lock and who waits;
 * the scheduler that runs the CPUs blocks a task that was queued and resumes it when a release
 * grants it the lock, charging the wait to the lock's ledger category.
 *
 * The rules modelled (rwsem.c, !PREEMPT_RT):
 * - a reader gets the lock at once when no writer holds it and nobody waits (rwsem_read_trylock:
 *   once a waiter has set RWSEM_FLAG_WAITERS every new reader takes the slow path and queues, so
 *   a stream of readers cannot starve a queued writer);
 * - a writer gets it at once only when it is free and nobody waits (rwsem_write_trylock);
 * - otherwise the task queues, FIFO (rwsem_add_waiter);
 * - a release with waiters wakes by the head (rwsem_mark_wake): a writer at the head gets the lock
 *   alone; a reader at the head wakes every queued reader, skipping the queued writers
 *   ("phase-fair"), which keep their places (the kernel's MAX_READERS_WAKEUP, 256 per wake-up, is
 *   above the model's thread count);
 * - downgrade_write turns the writer into a reader and wakes the readers at the head.
 * A release hands the lock to the tasks it wakes. The kernel grants woken readers directly, but a
 * woken writer must still take the lock when it runs, and a newcomer may steal it in between
 * until a waiter has waited RWSEM_WAIT_TIMEOUT and set RWSEM_FLAG_HANDOFF; in virtual time a
 * woken writer runs at the release, so that window and the handoff flag are not modelled.
 *
 * Not modelled yet, and it changes who gets the lock: a writer first spins without queueing
 * (rwsem_optimistic_spin; on reader owners for 10 µs + 0.5 µs per reader, at most 25 µs). While
 * only a spinner waits, new readers still take the lock on the fast path, and the spinner can
 * take a freed lock ahead of queued waiters (rwsem_try_write_lock_unqueued). Here a writer
 * queues at once: readers wait sooner and the writer gets the lock sooner than in the kernel.
 */

export const RWSEM_READ = 0;
export const RWSEM_WRITE = 1;
export type RwsemKind = typeof RWSEM_READ | typeof RWSEM_WRITE;

/** A queued task: who, for what, since when (its clock when it queued). */
export interface RwsemWaiter {
  readonly task: number;
  readonly kind: RwsemKind;
  readonly since: number;
}

/** The tasks a release or a steal granted the lock to, in grant order (reused: copy to keep). */
export type Granted = readonly RwsemWaiter[];

export class RwSem {
  /** Readers holding the lock (the count's reader bias). */
  readers = 0;
  /** The task holding it for write, or -1 (RWSEM_WRITER_LOCKED and the owner). */
  writer = -1;
  /** Acquisitions, and those that had to queue. */
  acquires = 0;
  contended = 0;
  private readonly queue: RwsemWaiter[] = [];
  private readonly granted: RwsemWaiter[] = [];

  /** @param name the lock's name (`mmap_lock`), for counters and errors */
  constructor(readonly name: string) {}

  /** Waiters, head first. */
  get waiters(): readonly RwsemWaiter[] {
    return this.queue;
  }

  /** down_read(): true if `task` holds the lock now; false if it queued (a release grants it later). */
  downRead(task: number, now: number): boolean {
    this.acquires++;
    if (this.writer < 0 && this.queue.length === 0) {
      this.readers++;
      return true;
    }
    this.enqueue(task, RWSEM_READ, now);
    return false;
  }

  /** down_write(): true if `task` holds the lock now; false if it queued. */
  downWrite(task: number, now: number): boolean {
    this.acquires++;
    if (this.writer < 0 && this.readers === 0 && this.queue.length === 0) {
      this.writer = task;
      return true;
    }
    this.enqueue(task, RWSEM_WRITE, now);
    return false;
  }

  /** down_read_trylock() (mmap_read_trylock): the lock at once or not at all; fails whenever anyone waits. */
  tryDownRead(): boolean {
    if (this.writer >= 0 || this.queue.length > 0) return false;
    this.acquires++;
    this.readers++;
    return true;
  }

  /** down_write_trylock(): only a free lock nobody waits for. */
  tryDownWrite(task: number): boolean {
    if (this.writer >= 0 || this.readers > 0 || this.queue.length > 0) return false;
    this.acquires++;
    this.writer = task;
    return true;
  }

  /** up_read(): the last reader out wakes the head. Returns the tasks granted. */
  upRead(): Granted {
    if (this.readers === 0) throw new Error(`${this.name}: up_read without a reader`);
    this.granted.length = 0;
    this.readers--;
    if (this.readers === 0) this.wake();
    return this.granted;
  }

  /** up_write(): `task` releases; the head is woken. Returns the tasks granted. */
  upWrite(task: number): Granted {
    if (this.writer !== task) throw new Error(`${this.name}: up_write by ${task}, held by ${this.writer}`);
    this.granted.length = 0;
    this.writer = -1;
    this.wake();
    return this.granted;
  }

  /** downgrade_write(): the writer keeps the lock as a reader; readers at the head join it. */
  downgradeWrite(task: number): Granted {
    if (this.writer !== task) throw new Error(`${this.name}: downgrade by ${task}, held by ${this.writer}`);
    this.granted.length = 0;
    this.writer = -1;
    this.readers = 1;
    this.wakeReadersAtHead();
    return this.granted;
  }

  private enqueue(task: number, kind: RwsemKind, now: number): void {
    this.contended++;
    this.queue.push({ task, kind, since: now });
  }

  /** rwsem_wake → rwsem_mark_wake(RWSEM_WAKE_ANY) on a free lock. */
  private wake(): void {
    const head = this.queue[0];
    if (head === undefined) return;
    if (head.kind === RWSEM_WRITE) {
      this.queue.shift();
      this.writer = head.task;
      this.granted.push(head);
      return;
    }
    this.wakeReadersAtHead();
  }

  /** Grant every queued reader when the head is a reader; writers keep their places. */
  private wakeReadersAtHead(): void {
    const q = this.queue;
    if (q.length === 0 || q[0]!.kind !== RWSEM_READ) return;
    let kept = 0;
    for (let i = 0; i < q.length; i++) {
      const w = q[i]!;
      if (w.kind === RWSEM_READ) {
        this.readers++;
        this.granted.push(w);
      } else q[kept++] = w;
    }
    q.length = kept;
  }

  /** What must hold whatever the sequence of calls: one writer or readers, never both; no waiter on a free lock. */
  check(): string | null {
    if (this.writer >= 0 && this.readers > 0) return `${this.name}: a writer and ${this.readers} readers hold it`;
    if (this.writer < 0 && this.readers === 0 && this.queue.length > 0) return `${this.name}: free with waiters`;
    if (this.readers > 0 && this.queue.length > 0 && this.queue[0]!.kind === RWSEM_READ) {
      return `${this.name}: readers hold it while a reader waits at the head`;
    }
    return null;
  }
}
