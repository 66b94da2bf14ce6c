/**
 * The clocks of a machine's CPUs as the shared layers see them. `now`: the running CPU's clock when
 * a scheduler runs several CPUs in virtual time (null otherwise: every cycle charged is the one
 * CPU's, so the ledger's total is the clock). `sink`: cycles one CPU charges on another's behalf
 * (the handler of a flush IPI it sent, or the flush Xen does on another vCPU for it), which the
 * scheduler moves to that CPU's clock; without one they are only charged. One per machine, shared
 * by the guest kernel and the platform.
 */
export class RemoteClock {
  now: (() => number) | null = null;
  sink: ((cpu: number, cycles: number) => void) | null = null;

  /** `cycles` just charged to the ledger were CPU `cpu`'s work. */
  charge(cpu: number, cycles: number): void {
    const s = this.sink;
    if (s !== null) s(cpu, cycles);
  }
}
