import { HYPERVISOR } from './abi.js';
import type { XenHypervisor } from './hypervisor.js';
import { doMmuextOp, doMmuUpdate, doUpdateVaMapping, enterHypercall } from './mm.js';
import type { McQueue } from './multicall.js';

const HC_MMU_UPDATE = HYPERVISOR.mmu_update;
const HC_UPDATE_VA_MAPPING = HYPERVISOR.update_va_mapping;
const HC_MMUEXT_OP = HYPERVISOR.mmuext_op;
const HC_MULTICALL = HYPERVISOR.multicall;

/** do_multicall (xen/common/multicall.c) over the guest's buffer. Returns failed entries. */
export function doMulticall(x: XenHypervisor, q: McQueue): number {
  enterHypercall(x, HC_MULTICALL);
  let failed = 0;
  for (let e = 0; e < q.entries; e++) {
    x.multicallEntries++;
    if (e > 0) x.ledger.charge(x.catHypercall, x.c['xen.multicall_entry']);
    const op = q.op[e]!;
    x.byOp[op]!++;
    let rc = 0;
    if (op === HC_MMU_UPDATE) rc = doMmuUpdate(x, q, q.first[e]!, q.count[e]!);
    else if (op === HC_UPDATE_VA_MAPPING) {
      rc = doUpdateVaMapping(x, q.aTable[e]!, q.aIndex[e]!, q.aLo[e]!, q.aHi[e]!, q.aFlags[e]!, 0, 0);
    } else if (op === HC_MMUEXT_OP) rc = doMmuextOp(x, q.aFlags[e]!, q.aTable[e]!, q.aHi[e]!, q.aLo[e]!);
    if (rc !== 0) failed++;
  }
  return failed;
}
