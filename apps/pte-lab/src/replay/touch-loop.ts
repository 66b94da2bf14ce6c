import { PteError } from '@pte/core';
import { ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE } from '@pte/arch-x86';
import { ACCESS_NONCANONICAL, type Machine } from '@pte/machine';
import { vpnHi, vpnLo, type Task } from '@pte/vm';
import { OP_INSTR, OP_MODIFY, OP_STORE, type RecordChunk } from '@pte/workloads';

const A_READ = ACCESS_USER;
const A_WRITE = ACCESS_USER | ACCESS_WRITE;
const A_FETCH = ACCESS_USER | ACCESS_FETCH;

/**
 * Replays page touches on one task of a machine: the hardware path of Machine.touch() (translate;
 * on a fault, KVM's shadow handler or the guest's handle_mm_fault, then retry) for one page at a
 * time, in the trace's order.
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
    m.kernel.switchMm(task.mm);
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
    const m = this.m;
    const k = m.kernel;
    const ok = this.one(vpn, access);
    k.touchClock++;
    if (count > 1) {
      if (ok) {
        // The other count − 1 accesses: L1 hits (as Machine.touch() does for its runs).
        m.mmu.translateRun(vpnHi(vpn), vpnLo(vpn), access, count - 1);
        k.touchClock += count - 1;
      } else {
        for (let i = 1; i < count; i++) {
          this.one(vpn, access);
          k.touchClock++;
        }
      }
    }
    m.touches += count;
    m.accesses += count;
    this.touches += count;
  }

  /** One access through the hardware path (Machine.accessPage); false if it ended in SIGSEGV. */
  private one(vpn: number, access: number): boolean {
    const pfn = this.m.accessPage(this.task.mm, vpn, access);
    if (pfn === ACCESS_NONCANONICAL) throw new PteError('parse', `trace address 0x${(vpn * 4096).toString(16)} is not canonical`);
    return pfn >= 0;
  }
}
