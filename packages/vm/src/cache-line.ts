/**
 * A cache line several CPUs write with atomic read-modify-writes (a lock's count word, a VMA's
 * refcount), in virtual time. One CPU holds it at a time (the cache-coherence protocol's Modified
 * state): an RMW from another CPU first pulls the line over (`smp.line_transfer` cycles), and the
 * transfers are serialised: an RMW that arrives while the line is still on its way to an earlier
 * requester waits for it. This is why an uncontended down_read() of mmap_lock stops scaling with
 * many threads (every fault does two RMWs on the count; Lespinasse 2021: one more atomic per VMA
 * "would decrease the 48-threads throughput by 62%", linux-mm.md §8). On the CPU that holds the
 * line an RMW costs nothing beyond what the operation's own cost already counts, so one CPU never
 * pays for it.
 */
export class SharedLine {
  /** The ledger category its transfers are charged to (`lock.<name>.line`), and its id once registered. */
  catId = -1;
  constructor(readonly category = 'lock.line') {}

  /** The CPU holding the line, or -1 before the first RMW. */
  owner = -1;
  /** When the last transfer completes (the line is busy until then). */
  freeAt = 0;
  /** Transfers between CPUs so far. */
  transfers = 0;

  /**
   * An RMW by `cpu` at time `now`: the cycles it waits for the line (queueing behind earlier
   * transfers, then its own), 0 when the line is already there.
   */
  rmw(cpu: number, now: number, transfer: number): number {
    if (this.owner === cpu || this.owner < 0) {
      this.owner = cpu;
      return 0;
    }
    const start = now > this.freeAt ? now : this.freeAt;
    const done = start + transfer;
    this.freeAt = done;
    this.owner = cpu;
    this.transfers++;
    return done - now;
  }
}
