import { PteError } from '@pte/core';
import { A, D, entryPfn, isLeaf, P, RW, type Mmu } from '@pte/arch-x86';
import {
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_PRESERVE_AD,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  MMUEXT_UNPIN_TABLE,
  UVMF_FLUSHTYPE_MASK,
  UVMF_INVLPG,
  UVMF_TLB_FLUSH,
} from './abi.js';
import type { XenHypervisor } from './hypervisor.js';
import type { McQueue } from './multicall.js';

/** Result codes of an update, as the guest sees them (0 or -EINVAL). */
export const XEN_OK = 0;
export const XEN_EINVAL = -22;

/** A hypercall enters Xen (the hypercall page's syscall and the dispatch). */
export function enterHypercall(x: XenHypervisor, op: number): void {
  x.hypercalls++;
  x.byOp[op]!++;
  x.ledger.charge(x.catHypercall, x.c['xen.hypercall']);
}

/** A refused request: -EINVAL to the guest, counted (a model error under `strict`). */
export function refuse(x: XenHypervisor, why: string): number {
  x.refused++;
  if (x.strict) throw new PteError('model', `Xen refused: ${why}`);
  return XEN_EINVAL;
}

/** do_mmu_update (xen/arch/x86/mm.c) over the queue's items [first, first + count). Returns failures. */
export function doMmuUpdate(x: XenHypervisor, q: McQueue, first: number, count: number): number {
  let failed = 0;
  for (let i = first; i < first + count; i++) {
    const cmd = q.iCmd[i]!;
    const table = q.iTable[i]!;
    if (cmd === MMU_PT_UPDATE_PRESERVE_AD) {
      // *ptr = val | (*ptr & (A|D)): keep what the hardware set since the guest read the entry.
      const ad = x.mem.readLo(table, q.iIndex[i]!) & (A | D);
      if (modEntry(x, table, q.iIndex[i]!, (q.iLo[i]! | ad) >>> 0, q.iHi[i]!, true) !== 0) failed++;
    } else if (cmd === MMU_NORMAL_PT_UPDATE) {
      if (modEntry(x, table, q.iIndex[i]!, q.iLo[i]!, q.iHi[i]!, true) !== 0) failed++;
    } else {
      // MMU_MACHPHYS_UPDATE / NO_TRANSLATE: not modelled; fail visibly like doMmuextOp's default.
      refuse(x, `mmu_update command ${cmd} is not modelled`);
      failed++;
    }
  }
  return failed;
}

/**
 * do_update_va_mapping of a user PTE, or (table < 0) of the guest kernel's direct-map alias of guest
 * frame −1 − table: the model keeps no kernel page tables for the direct map, only its RW state.
 */
export function doUpdateVaMapping(
  x: XenHypervisor,
  table: number,
  index: number,
  lo: number,
  hi: number,
  flags: number,
  vaHi: number,
  vaLo: number,
): number {
  const rc = table < 0 ? directMap(x, -table - 1, (lo & RW) !== 0) : modEntry(x, table, index, lo, hi, true);
  const cpu = x.cpu;
  if (rc === 0 && cpu !== null) {
    const type = flags & UVMF_FLUSHTYPE_MASK;
    if (type === UVMF_INVLPG) cpu.invlpg(vaHi, vaLo);
    else if (type === UVMF_TLB_FLUSH) cpu.writeCr3(cpu.root, cpu.tlb.pcid);
  }
  return rc;
}

/** do_mmuext_op with one operation: pin/unpin, new base pointer, local TLB flushes. */
export function doMmuextOp(x: XenHypervisor, cmd: number, arg: number, vaHi: number, vaLo: number): number {
  x.ledger.charge(x.catValidate, x.c['xen.update_entry']);
  if (cmd >= MMUEXT_PIN_L1_TABLE && cmd <= MMUEXT_PIN_L4_TABLE) return pin(x, arg, cmd - MMUEXT_PIN_L1_TABLE + 1);
  const cpu = x.cpu;
  switch (cmd) {
    case MMUEXT_UNPIN_TABLE:
      return unpin(x, arg);
    case MMUEXT_NEW_BASEPTR:
      if (x.ptType[arg] !== 4) return refuse(x, `new base pointer 0x${arg.toString(16)} is not a validated L4`);
      cpu?.writeCr3(arg, cpu.tlb.pcid);
      return XEN_OK;
    case MMUEXT_TLB_FLUSH_LOCAL:
      if (cpu !== null && cpu.root >= 0) cpu.writeCr3(cpu.root, cpu.tlb.pcid);
      return XEN_OK;
    case MMUEXT_INVLPG_LOCAL:
      cpu?.invlpg(vaHi, vaLo);
      return XEN_OK;
    case MMUEXT_TLB_FLUSH_MULTI:
    case MMUEXT_INVLPG_MULTI:
      return flushMulti(x, cmd === MMUEXT_INVLPG_MULTI, arg, vaHi, vaLo);
    default:
      return refuse(x, `mmuext command ${cmd} is not modelled`);
  }
}

/**
 * MMUEXT_TLB_FLUSH_MULTI / MMUEXT_INVLPG_MULTI with a vCPU mask (do_mmuext_op →
 * vcpumask_to_pcpumask → flush_tlb_mask / flush_tlb_one_mask → flush_area_mask, smp.c): the
 * calling vCPU flushes here; every other vCPU in the mask is a pCPU that gets a physical IPI and
 * flushes in Xen's interrupt handler, on its own clock (the guest there is only interrupted).
 * Xen sends them under its one global flush_lock and spins until the last target acks, so
 * concurrent flushes from several vCPUs go one after another. Every vCPU runs on its own pCPU
 * here (none is descheduled, so none is skipped).
 */
function flushMulti(x: XenHypervisor, invlpg: boolean, vcpumask: number, vaHi: number, vaLo: number): number {
  x.flushMulti++;
  const self = x.current;
  if ((vcpumask & (1 << self)) !== 0) flushVcpu(x.vcpus[self]!, invlpg, vaHi, vaLo);
  const smp = x.smp;
  if (smp === null) return XEN_OK;
  const catHandler = x.ledger.id('smp.ipi_handler');
  let targets = 0;
  let slowest = 0;
  for (let id = 0; id < x.vcpus.length; id++) {
    if (id === self || (vcpumask & (1 << id)) === 0) continue;
    if (smp.descheduled !== null && smp.descheduled()) {
      // vcpumask_to_pcpumask(): a descheduled vCPU has no dirty pCPU and gets no IPI; its TLB
      // state is flushed when Xen next schedules it (the context switch's flush).
      x.flushSkipped++;
      const t0 = x.ledger.total();
      flushVcpu(x.vcpus[id]!, false, vaHi, vaLo);
      smp.clocks.charge(id, x.ledger.total() - t0);
      continue;
    }
    targets++;
    const t0 = x.ledger.total();
    x.ledger.charge(catHandler, smp.ipiHandler);
    flushVcpu(x.vcpus[id]!, invlpg, vaHi, vaLo);
    const work = x.ledger.total() - t0;
    smp.clocks.charge(id, work);
    if (work > slowest) slowest = work;
  }
  if (targets === 0) return XEN_OK;
  x.flushIpis += targets;
  // flush_lock: the flush waits for the one before it in the host, then holds the lock for its round trip.
  const now = smp.clocks.now?.() ?? x.ledger.total();
  const start = now > x.flushLockFreeAt ? now : x.flushLockFreeAt;
  const round = smp.ipiSend * targets + smp.ipiLatency + slowest + smp.lineTransfer;
  x.flushLockFreeAt = start + round;
  x.ledger.charge(x.ledger.id('smp.ipi'), start - now + round);
  return XEN_OK;
}

/** One vCPU's part of a MULTI flush: INVLPG of the address, or a full flush of its current context. */
function flushVcpu(mmu: Mmu, invlpg: boolean, vaHi: number, vaLo: number): void {
  if (invlpg) mmu.invlpg(vaHi, vaLo);
  else if (mmu.root >= 0) mmu.writeCr3(mmu.root, mmu.tlb.pcid);
}

/** The guest's direct-map alias of guest frame `pfn` becomes writable or read-only (__set_pfn_prot). */
function directMap(x: XenHypervisor, pfn: number, writable: boolean): number {
  x.updateEntries++;
  x.ledger.charge(x.catValidate, x.c['xen.update_entry']);
  const mfn = x.p2m[pfn]!;
  if (writable === (x.directMapRW[pfn] === 1)) return XEN_OK;
  if (writable) {
    if (x.ptRefs[mfn] !== 0)
      return refuse(x, `writable mapping of page-table frame 0x${mfn.toString(16)} (direct map)`);
    x.writable[mfn]!++;
    x.directMapRW[pfn] = 1;
  } else {
    x.writable[mfn]!--;
    x.directMapRW[pfn] = 0;
  }
  return XEN_OK;
}

/**
 * mod_l1_entry / mod_l2..l4_entry for an entry of a validated table, or a plain checked write for
 * a frame that is not a page table. Takes the new entry's references before dropping the old's.
 */
export function modEntry(
  x: XenHypervisor,
  table: number,
  index: number,
  lo: number,
  hi: number,
  hypercall: boolean,
): number {
  if (hypercall) {
    x.updateEntries++;
    x.ledger.charge(x.catValidate, x.c['xen.update_entry']);
  }
  const level = x.ptType[table]!;
  if (level === 0) {
    x.mem.write(table, index, lo, hi);
    return XEN_OK;
  }
  const oldLo = x.mem.readLo(table, index);
  const oldHi = x.mem.readHi(table, index);
  if ((lo & P) !== 0) {
    const rc = getRefs(x, level, lo, hi);
    if (rc !== 0) return rc;
  }
  if ((oldLo & P) !== 0) putRefs(x, level, oldLo, oldHi);
  x.mem.write(table, index, lo, hi);
  return XEN_OK;
}

/** get_page_from_l1e / get_page_from_lNe: the references a present entry at `level` takes. */
function getRefs(x: XenHypervisor, level: number, lo: number, hi: number): number {
  const target = entryPfn(level, lo, hi);
  if (target >= x.mem.frames || x.m2p[target] === -1)
    return refuse(x, `entry maps machine frame 0x${target.toString(16)}, which the domain does not own`);
  if (level === 1 || isLeaf(level, lo)) {
    if (level !== 1) return refuse(x, 'superpage mappings are not allowed for PV guests');
    if ((lo & RW) === 0) return XEN_OK;
    if (x.ptRefs[target] !== 0) return refuse(x, `writable mapping of page-table frame 0x${target.toString(16)}`);
    x.writable[target]!++;
    return XEN_OK;
  }
  return getPageType(x, target, level - 1);
}

/** put_page_from_l1e / put_page_from_lNe. */
function putRefs(x: XenHypervisor, level: number, lo: number, hi: number): void {
  const target = entryPfn(level, lo, hi);
  if (level === 1) {
    if ((lo & RW) !== 0) x.writable[target]!--;
    return;
  }
  putPageType(x, target);
}

/** get_page_type(frame, PGT_lN_page_table): validate the table on its first reference (alloc_page_type). */
function getPageType(x: XenHypervisor, frame: number, level: number): number {
  if (x.ptRefs[frame] !== 0) {
    if (x.ptType[frame] !== level)
      return refuse(x, `frame 0x${frame.toString(16)} is a level-${x.ptType[frame]} table, not level ${level}`);
    x.ptRefs[frame]!++;
    return XEN_OK;
  }
  if (x.writable[frame] !== 0) {
    return refuse(x, `frame 0x${frame.toString(16)} still has ${x.writable[frame]} writable mapping(s)`);
  }
  if (!x.mem.isTable(frame)) return refuse(x, `frame 0x${frame.toString(16)} is not a page table`);
  // Take the type first so entries of this table cannot map it writable, then promote.
  x.ptType[frame] = level;
  x.ptRefs[frame] = 1;
  for (let i = 0; i < 512; i++) {
    const lo = x.mem.readLo(frame, i);
    if ((lo & P) === 0) continue;
    x.validatedEntries++;
    x.ledger.charge(x.catValidate, x.c['xen.pin_validate_entry']);
    const rc = getRefs(x, level, lo, x.mem.readHi(frame, i));
    if (rc !== 0) {
      for (let j = 0; j < i; j++) {
        const l = x.mem.readLo(frame, j);
        if ((l & P) !== 0) putRefs(x, level, l, x.mem.readHi(frame, j));
      }
      x.ptRefs[frame] = 0;
      x.ptType[frame] = 0;
      return rc;
    }
  }
  return XEN_OK;
}

/** put_page_type: the last reference devalidates the table and drops its entries' references (free_page_type). */
function putPageType(x: XenHypervisor, frame: number): void {
  if (--x.ptRefs[frame]! !== 0) return;
  const level = x.ptType[frame]!;
  for (let i = 0; i < 512; i++) {
    const lo = x.mem.readLo(frame, i);
    if ((lo & P) !== 0) putRefs(x, level, lo, x.mem.readHi(frame, i));
  }
  x.ptType[frame] = 0;
}

/** MMUEXT_PIN_Lx_TABLE: take a type reference that the pin holds. */
function pin(x: XenHypervisor, frame: number, level: number): number {
  if (x.pinned[frame] === 1) return refuse(x, `frame 0x${frame.toString(16)} is already pinned`);
  const rc = getPageType(x, frame, level);
  if (rc !== 0) return rc;
  x.pinned[frame] = 1;
  x.pins++;
  return XEN_OK;
}

/** MMUEXT_UNPIN_TABLE: drop the pin's type reference. */
function unpin(x: XenHypervisor, frame: number): number {
  if (x.pinned[frame] !== 1) return refuse(x, `frame 0x${frame.toString(16)} is not pinned`);
  x.pinned[frame] = 0;
  x.unpins++;
  putPageType(x, frame);
  return XEN_OK;
}
