/**
 * The backing block device, simple for now: a synchronous read of `pages` contiguous pages costs
 * one request latency plus a transfer per page (costs `io.request`, `io.page`). The readahead
 * issue replaces this with queued, asynchronous IO in simulated time.
 */
export class BlockDevice {
  requests = 0;
  pagesRead = 0;

  constructor(
    private readonly requestCycles: number,
    private readonly pageCycles: number,
  ) {}

  /** Cycles the caller waits for a synchronous read of `pages` pages. */
  read(pages: number): number {
    this.requests++;
    this.pagesRead += pages;
    return this.requestCycles + this.pageCycles * pages;
  }
}
