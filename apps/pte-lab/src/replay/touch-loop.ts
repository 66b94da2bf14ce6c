import { PteError } from '@pte/core';
import {
  ACCESS_NONCANONICAL,
  type Machine,
  OP_INSTR,
  OP_MODIFY,
  OP_STORE,
  type RecordChunk,
  type Task,
  USER_FETCH as A_FETCH,
  USER_READ as A_READ,
  USER_WRITE as A_WRITE,
} from '@pte/machine';

/**
 * Replays page touches on one task of a machine, in the trace's order, through Machine.accessRun
 * (the machine's one access path).
 *
 * Coalescing (exact): consecutive touches of the same page are merged into one run when every
 * touch after the first would be a first-level TLB hit that changes nothing: the same access
 * kind, or a read after a write (a write that translated proves the entry present, user, writable
 * and dirty, so a read of it passes every check). The run is one translate() then
 * Mmu.translateRun(), which counts the other accesses as L1 hits — exactly what translate() does
 * for them (an L1 hit charges no cycles; only mmu.accesses and tlb.l1_hits move). A fetch after a
 * read or a write after a read is never merged (XD or a clean entry may need a walk). If the
 * run's first access ends in SIGSEGV the others are replayed one by one, each faulting, as
 * without coalescing. `coalesce: false` turns merging off; tests check both give identical results.
 */
export class ReplayLoop {
  private runVpn = -1;
  private runAccess = 0;
  private runCount = 0;
  /** Touches replayed (the kernel's touch clock advances by one per touch). */
  touches = 0;

  constructor(
    private readonly m: Machine,
    private readonly task: Task,
    private readonly coalesce = true,
  ) {
    m.switchTo(task);
  }

  /** A RecordSink: expand each record to page touches (M: read each page, then write each). */
  readonly records = (c: RecordChunk): void => {
    for (let i = 0; i < c.length; i++) {
      const op = c.op[i]!;
      const vpn = c.vpn[i]!;
      const pages = c.pages[i]!;
      const rep = c.repeat[i]!;
      if (op === OP_MODIFY) {
        for (let r = 0; r < rep; r++) {
          for (let p = 0; p < pages; p++) this.touch(vpn + p, A_READ, 1);
          for (let p = 0; p < pages; p++) this.touch(vpn + p, A_WRITE, 1);
        }
      } else {
        const a = op === OP_INSTR ? A_FETCH : op === OP_STORE ? A_WRITE : A_READ;
        if (pages === 1) this.touch(vpn, a, rep);
        else for (let r = 0; r < rep; r++) for (let p = 0; p < pages; p++) this.touch(vpn + p, a, 1);
      }
    }
  };

  /** `n` consecutive touches of page `vpn` with access `a`. */
  touch(vpn: number, a: number, n: number): void {
    if (this.coalesce) {
      if (vpn === this.runVpn && (a === this.runAccess || (a === A_READ && this.runAccess === A_WRITE))) {
        this.runCount += n;
        return;
      }
      this.flush();
      this.runVpn = vpn;
      this.runAccess = a;
      this.runCount = n;
      return;
    }
    for (let i = 0; i < n; i++) this.run(vpn, a, 1);
  }

  /** Replay the pending run. Call at the end of the trace. */
  flush(): void {
    if (this.runCount > 0) this.run(this.runVpn, this.runAccess, this.runCount);
    this.runVpn = -1;
    this.runCount = 0;
  }

  private run(vpn: number, access: number, count: number): void {
    if (this.m.accessRun(this.task, vpn, access, count) === ACCESS_NONCANONICAL) {
      throw new PteError('parse', `trace address 0x${(vpn * 4096).toString(16)} is not canonical`);
    }
    this.touches += count;
  }
}
