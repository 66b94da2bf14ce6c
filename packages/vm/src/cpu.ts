import { VmFault } from './vm-fault.js';

/**
 * A CPU of the guest (the per-CPU part of the kernel's state): its fault context, preallocated so
 * that the fault path allocates nothing.
 */
export class Cpu {
  readonly id: number;
  /** The fault being handled on this CPU (struct vm_fault lives on the faulting CPU's stack). */
  readonly vmf = new VmFault();
  /** The context of read completion (map-on-io), which can run inside a fault and must not clobber `vmf`. */
  readonly ioVmf = new VmFault();

  constructor(id: number) {
    this.id = id;
  }
}
