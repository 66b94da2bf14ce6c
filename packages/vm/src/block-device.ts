/**
 * The backing block device in simulated time (the cycle ledger's total is "now"). A request of
 * `pages` contiguous pages occupies one of `queueDepth` slots for `io.request` + `io.page` × pages
 * cycles, starting when a slot is free; `submit` returns its completion time. Reads are issued
 * asynchronously; whoever needs a page waits until its request completes (io.wait).
 */
export class BlockDevice {
  requests = 0;
  pagesRead = 0;
  /**
   * Called on the submitting CPU for each request: what telling the device costs there beyond
   * io.request (a VM exit to kick a virtio queue, an event-channel hypercall; the platform's).
   */
  onRequest: (() => void) | null = null;
  private readonly slots: Float64Array;

  constructor(
    private readonly requestCycles: number,
    private readonly pageCycles: number,
    readonly queueDepth = 32,
  ) {
    this.slots = new Float64Array(queueDepth);
  }

  /** Queue a read of `pages` pages at time `now`; returns when it completes. */
  submit(now: number, pages: number): number {
    this.requests++;
    this.onRequest?.();
    this.pagesRead += pages;
    let slot = 0;
    for (let i = 1; i < this.slots.length; i++) if (this.slots[i]! < this.slots[slot]!) slot = i;
    const start = Math.max(now, this.slots[slot]!);
    const done = start + this.requestCycles + this.pageCycles * pages;
    this.slots[slot] = done;
    return done;
  }

  /** Cycles one request of `pages` pages occupies the device. */
  cycles(pages: number): number {
    return this.requestCycles + this.pageCycles * pages;
  }

  /** Cycles a synchronous read of `pages` pages takes on an idle device. */
  read(pages: number): number {
    this.requests++;
    this.onRequest?.();
    this.pagesRead += pages;
    return this.requestCycles + this.pageCycles * pages;
  }
}
