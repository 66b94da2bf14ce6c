import { MC_ARGS, MC_BATCH, MMU_UPDATE_SIZE as MMU_UPDATE_BYTES, MMUEXT_OP_SIZE as MMUEXT_OP_BYTES } from './abi.js';

/**
 * The guest's per-CPU multicall buffer (Linux arch/x86/xen/multicalls.c), struct-of-arrays: up to
 * MC_BATCH entries and MC_ARGS bytes of argument space. Consecutive mmu_update requests extend the
 * previous entry (xen_mc_extend_args) while `argBytes + 16 < MC_ARGS`; an entry that does not fit,
 * or a full entry array, forces a flush first (__xen_mc_entry). The hypervisor reads the buffer
 * in place when the guest issues it, so queuing allocates nothing.
 */
export class McQueue {
  /** Hypercall number of each entry. */
  readonly op = new Uint8Array(MC_BATCH);
  /** mmu_update: first item and count; update_va_mapping / mmuext_op: inline arguments. */
  readonly first = new Int32Array(MC_BATCH);
  readonly count = new Int32Array(MC_BATCH);
  /** Inline arguments: table machine frame (or MMUEXT argument), index, value halves, flags (or MMUEXT command). */
  readonly aTable = new Float64Array(MC_BATCH);
  readonly aIndex = new Int32Array(MC_BATCH);
  readonly aLo = new Uint32Array(MC_BATCH);
  readonly aHi = new Uint32Array(MC_BATCH);
  readonly aFlags = new Int32Array(MC_BATCH);
  /** mmu_update items in the argument area. */
  readonly iTable = new Float64Array(MC_ARGS / MMU_UPDATE_BYTES);
  readonly iIndex = new Int32Array(MC_ARGS / MMU_UPDATE_BYTES);
  readonly iLo = new Uint32Array(MC_ARGS / MMU_UPDATE_BYTES);
  readonly iHi = new Uint32Array(MC_ARGS / MMU_UPDATE_BYTES);
  readonly iCmd = new Uint8Array(MC_ARGS / MMU_UPDATE_BYTES);
  entries = 0;
  items = 0;
  argBytes = 0;

  /** Room for an entry needing `bytes` of arguments without a flush? (__xen_mc_entry's test) */
  fits(bytes: number): boolean {
    return this.entries < MC_BATCH && this.argBytes + bytes < MC_ARGS;
  }

  /** Can an mmu_update request extend the last entry? (xen_mc_extend_args) */
  canExtend(op: number): boolean {
    return this.entries > 0 && this.op[this.entries - 1] === op && this.argBytes + MMU_UPDATE_BYTES < MC_ARGS;
  }

  /** Append one mmu_update request (the caller flushed if it did not fit). */
  pushMmuUpdate(op: number, table: number, index: number, lo: number, hi: number, cmd: number): void {
    const extend = this.canExtend(op);
    const it = this.items++;
    this.iTable[it] = table;
    this.iIndex[it] = index;
    this.iLo[it] = lo;
    this.iHi[it] = hi;
    this.iCmd[it] = cmd;
    this.argBytes += MMU_UPDATE_BYTES;
    if (extend) {
      this.count[this.entries - 1]!++;
      return;
    }
    const e = this.entries++;
    this.op[e] = op;
    this.first[e] = it;
    this.count[e] = 1;
  }

  /** Append an entry with inline arguments (update_va_mapping, mmuext_op). */
  pushInline(op: number, table: number, index: number, lo: number, hi: number, flags: number, argBytes: number): void {
    const e = this.entries++;
    this.op[e] = op;
    this.aTable[e] = table;
    this.aIndex[e] = index;
    this.aLo[e] = lo;
    this.aHi[e] = hi;
    this.aFlags[e] = flags;
    this.argBytes += argBytes;
  }

  reset(): void {
    this.entries = 0;
    this.items = 0;
    this.argBytes = 0;
  }
}

export { MMU_UPDATE_BYTES, MMUEXT_OP_BYTES };
