import type { XenHypervisor } from './hypervisor.js';
import { modEntry, refuse } from './mm.js';

/**
 * ptwr_do_page_fault → ptwr_emulated_update (xen/arch/x86/pv/ro-page-fault.c): a plain guest store
 * to a write-protected L1 table faults; Xen decodes and emulates it, validating the new entry as
 * mod_l1_entry does. Stores to other page-table levels are refused.
 */
export function ptwrStore(x: XenHypervisor, table: number, index: number, lo: number, hi: number): number {
  x.ptwrEmulations++;
  x.ledger.charge(x.catEmulate, x.c['xen.ptwr_emulate']);
  if (x.ptType[table] !== 1)
    return refuse(x, `store to a level-${x.ptType[table]} page table (only L1 stores are emulated)`);
  return modEntry(x, table, index, lo, hi, false);
}
