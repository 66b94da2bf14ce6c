import { ACCESS_FETCH, ACCESS_WRITE, P, RW } from '@pte/arch-x86';
import { doAnonymousPage } from './anon.js';
import { doFaultAround } from './fault-around.js';
import { filemapFault, tryMapPmd } from './filemap.js';
import { folioMarkDirty, folioPut, pageMkwrite } from './folio.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PG_ANON, PG_DIRTY, PG_EXCLUSIVE, PG_UPTODATE } from './page-flags.js';
import { doHugePmdAnonymousPage, doHugePmdWpPage, doHugeZeroPmd, isAnonPmd, thpAllowed } from './huge-anon.js';
import { PT_HUGE, PT_NONE, pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { fileReadWritable, setPteRange } from './set-pte-range.js';
import { isSwapPte, swpSlot } from './swap.js';
import { splitPmd } from './zap.js';
import {
  VM_EXEC,
  VM_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_UFFD_MINOR,
  VM_UFFD_WP,
  VM_WILLNEED_HINT,
  VM_WRITE,
  type Vma,
} from './vma.js';
import { FAULT_FLAG_INSTRUCTION, FAULT_FLAG_USER, FAULT_FLAG_WRITE, type VmFault } from './vm-fault.js';
import { doWpPage } from './wp.js';

/** Outcome of a fault: the access can be retried, or the process gets a signal. */
export const FAULT_RETRY = 0;
export const FAULT_SIGSEGV = 1;
export const FAULT_SIGBUS = 2;
/** VM_FAULT_FALLBACK: the PMD level did not handle the fault; go on to the PTE level. */
const VM_FAULT_FALLBACK = -1;

/**
 * mm/memory.c handle_mm_fault(): count the fault, complete finished reads, check the VMA
 * (access_error) and start the fault context. `access` carries the #PF error-code bits (W, U, I).
 */
export function handleMmFault(k: Kernel, mm: Mm, vpn: number, access: number): number {
  k.stats.faults++;
  k.charge(k.catFault, k.costs.faultEntry);
  const vmf = k.cpu.vmf;
  vmf.reset(mm, null, vpn, faultFlags(access));
  k.reapIo();
  const vma = mm.vmas.find(vpn);
  if (vma === null || !accessAllowed(vma, access)) {
    k.stats.faultsSegv++;
    return FAULT_SIGSEGV;
  }
  vmf.vma = vma;
  vmf.pgoff = vma.pgoffOf(vpn);
  return __handleMmFault(k, vmf);
}

/**
 * The FAULT_FLAG_* bits of a #PF error code: W (bit 1) and U (bit 2) shift down by one to
 * FAULT_FLAG_WRITE (1) and FAULT_FLAG_USER (2), I (bit 4) down by two to FAULT_FLAG_INSTRUCTION (4).
 * Shifts rather than three tests, so that this stays small enough for TurboFan to always inline.
 */
function faultFlags(access: number): number {
  return ((access >>> 1) & (FAULT_FLAG_WRITE | FAULT_FLAG_USER)) | ((access >>> 2) & FAULT_FLAG_INSTRUCTION);
}

/**
 * mm/memory.c __handle_mm_fault(): the PMD-level decisions. A huge PMD takes the huge-PMD write
 * path; a none PMD in a THP-enabled VMA tries create_huge_pmd(); else the PTE level.
 */
function __handleMmFault(k: Kernel, vmf: VmFault): number {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  vmf.pte = pteTableFor(k, mm, vpn, false);
  if (vmf.pte === PT_HUGE) {
    const r = hugePmdFault(k, vmf);
    if (r !== VM_FAULT_FALLBACK) return r;
  }
  if (vmf.pte === PT_NONE) {
    if (thpAllowed(k, vma, vpn) && createHugePmd(k, vmf)) return FAULT_RETRY;
    if (vma.file === null || (vmf.flags & FAULT_FLAG_WRITE) !== 0) vmf.pte = pteTableFor(k, mm, vpn, true);
  }
  return handlePteFault(k, vmf);
}

/**
 * A PMD leaf maps the address (pmd_trans_huge): a PMD-mapped file folio (read-only) or an
 * anonymous THP. A read, or a write to a writable leaf, was spurious; an anonymous write goes to
 * do_huge_pmd_wp_page() (reuse, or split and fall back to the PTE path's do_wp_page); a file leaf
 * is zapped by __split_huge_pmd() and the PTE path refaults.
 */
function hugePmdFault(k: Kernel, vmf: VmFault): number {
  const mm = vmf.mm!;
  const vpn = vmf.vpn;
  const pmd = lookupPmd(k, vmf, false);
  const pidx = vmf.pmdIdx;
  const plo = k.readLo(pmd, pidx);
  if ((vmf.flags & FAULT_FLAG_WRITE) === 0 || (plo & RW) !== 0) {
    k.stats.faultsSpurious++;
    return FAULT_RETRY;
  }
  if (isAnonPmd(k, plo, k.readHi(pmd, pidx))) {
    if (doHugePmdWpPage(k, vmf)) {
      k.stats.faultsMinor++;
      return FAULT_RETRY;
    }
    vmf.pte = pteTableFor(k, mm, vpn, false);
  } else {
    splitPmd(k, mm, vpn);
    vmf.pte = PT_NONE;
  }
  return VM_FAULT_FALLBACK;
}

/** vmf->pmd: the PMD table of the faulting address (pmd_alloc() when `alloc`) and its index. */
function lookupPmd(k: Kernel, vmf: VmFault, alloc: boolean): number {
  vmf.pmd = pmdTableFor(k, vmf.mm!, vmf.vpn, alloc);
  vmf.pmdIdx = vpnIndex(vmf.vpn, 2);
  return vmf.pmd;
}

/**
 * create_huge_pmd() on a none PMD: a new THP for a write, the huge zero page for a read unless
 * mm_forbids_zeropage() (policy zeroPage off), when a read makes a THP too.
 */
function createHugePmd(k: Kernel, vmf: VmFault): boolean {
  const pmd = lookupPmd(k, vmf, true);
  const pidx = vmf.pmdIdx;
  if (k.readLo(pmd, pidx) !== 0 || k.readHi(pmd, pidx) !== 0) return false;
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  return write || !k.policy.zeroPage ? doHugePmdAnonymousPage(k, vmf) : doHugeZeroPmd(k, vmf);
}

/**
 * mm/memory.c handle_pte_fault(): none → do_pte_missing, swap entry → do_swap_page, write to a
 * read-only PTE → do_wp_page; else the TLB held a stale entry (x86's flush_tlb_fix_spurious_fault
 * is a no-op).
 */
function handlePteFault(k: Kernel, vmf: VmFault): number {
  const pt = vmf.pte;
  if (pt === PT_NONE) return doPteMissing(k, vmf);
  const ent = k.mem.ent;
  const e = 2 * k.entryAt(pt, vmf.vpn % 512);
  const lo = ent[e]!;
  const hi = ent[e + 1]!;
  vmf.origLo = lo;
  vmf.origHi = hi;
  if ((lo & P) !== 0) return presentPteFault(k, vmf);
  return lo !== 0 || hi !== 0 ? doSwapPage(k, vmf) : doPteMissing(k, vmf);
}

/**
 * handle_pte_fault() on a present PTE (vmf.origLo / origHi): a write to a read-only PTE goes to
 * do_wp_page; else the TLB held a stale entry. Out of line: the common faults find the PTE none.
 */
function presentPteFault(k: Kernel, vmf: VmFault): number {
  const lo = vmf.origLo;
  if ((vmf.flags & FAULT_FLAG_WRITE) !== 0 && (lo & RW) === 0) {
    doWpPage(k, vmf);
    return FAULT_RETRY;
  }
  k.stats.faultsSpurious++;
  return FAULT_RETRY;
}

/**
 * do_swap_page(): the PTE holds a swap entry. A new page is read from the slot (swap_read_folio,
 * waiting for the swap device; swap readahead is not modelled), mapped exclusive — writable and
 * dirty on a write fault, read-only on a read fault (a later write reuses it, do_wp_page) — and
 * the slot count dropped (swap_free; the page is dirty again, as folio_free_swap leaves it). A
 * major fault, and a refault for reclaim's precision.
 */
function doSwapPage(k: Kernel, vmf: VmFault): number {
  const swap = k.swap;
  const lo = vmf.origLo;
  const hi = vmf.origHi;
  if (swap === null || !isSwapPte(lo))
    throw new Error(
      `page 0x${vmf.vpn.toString(16)}: non-present PTE ${hi.toString(16)}:${lo.toString(16)} is not a swap entry`,
    );
  const slot = swpSlot(lo, hi);
  k.stats.faultsMajor++;
  k.stats.faultsSwap++;
  const pfn = k.allocAnonPage(false);
  k.charge(k.catIo, swap.read(k.now()));
  k.reclaim!.swapRefault(swap.writtenAt[slot]!);
  swap.put(slot);
  vmf.mm!.swapEnts--;
  const f = k.frames;
  f.flags[pfn] = f.flags[pfn]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  vmf.mapAs(write, write, true, true);
  setPteRange(k, vmf, vmf.vpn, pfn, 1);
  return FAULT_RETRY;
}

/** VMA permission check of do_user_addr_fault() → access_error(). */
function accessAllowed(vma: Vma, access: number): boolean {
  if ((access & ACCESS_WRITE) !== 0) return (vma.flags & VM_WRITE) !== 0;
  if ((access & ACCESS_FETCH) !== 0) return (vma.flags & VM_EXEC) !== 0;
  return (vma.flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
}

/** do_pte_missing(): anonymous VMAs take do_anonymous_page, file VMAs do_fault. */
function doPteMissing(k: Kernel, vmf: VmFault): number {
  if (vmf.vma!.file === null) {
    doAnonymousPage(k, vmf);
    return FAULT_RETRY;
  }
  return doFault(k, vmf);
}

/** do_fault(): a read → do_read_fault; a write → do_cow_fault (private) or do_shared_fault. */
function doFault(k: Kernel, vmf: VmFault): number {
  k.stats.faultsFile++;
  if ((vmf.flags & FAULT_FLAG_WRITE) === 0) return doReadFault(k, vmf);
  return (vmf.vma!.flags & VM_SHARED) !== 0 ? doSharedFault(k, vmf) : doCowFault(k, vmf);
}

/**
 * do_read_fault(): fault-around first when it applies (should_fault_around: a window > 1 page and
 * no userfaultfd WP/MINOR registration; with the madvise-gated policy, an advised mapping); if
 * that did not map the faulting page, ->fault (filemap_fault) and finish_fault().
 */
function doReadFault(k: Kernel, vmf: VmFault): number {
  const vma = vmf.vma!;
  if (k.policy.faultAround > 1 && (vma.flags & (VM_UFFD_WP | VM_UFFD_MINOR)) === 0 && faultAroundAllowed(k, vma)) {
    if (doFaultAround(k, vmf)) {
      k.stats.faultsMinor++;
      return FAULT_RETRY;
    }
    vmf.pte = pteTableFor(k, vmf.mm!, vmf.vpn, false);
    if (vmf.pte === PT_HUGE) return FAULT_RETRY; // fault-around mapped the PMD
  }
  const pfn = filemapFault(k, vma, vmf.pgoff);
  if (pfn < 0) {
    k.stats.faultsSegv++;
    return FAULT_SIGBUS;
  }
  finishFault(k, vmf, pfn);
  folioPut(k, pfn, 1);
  return FAULT_RETRY;
}

/** The madvise-gated proposal (policy faultAroundGate): only where userspace asked for it. */
function faultAroundAllowed(k: Kernel, vma: Vma): boolean {
  return !k.policy.faultAroundGate || (vma.flags & (VM_SEQ_READ | VM_WILLNEED_HINT)) !== 0;
}

/**
 * finish_fault(): map the folio of `pfn` for a read fault. A PMD-sized folio may take the PMD
 * (do_set_pmd) when the PMD is none; a large folio inside the VMA and one page table, with every
 * PTE of its range none, is mapped whole with one set_pte_range(); otherwise one PTE.
 */
function finishFault(k: Kernel, vmf: VmFault, pfn: number): void {
  const f = k.frames;
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const order = f.order[pfn]!;
  const n = 1 << order;
  const head = pfn - (pfn % n);
  if (vmf.pte < 0) {
    if (n === 512 && tryMapPmd(k, vmf.mm!, vma, head, f.index[head]!, vpn)) return;
    vmf.pte = pteTableFor(k, vmf.mm!, vpn, true);
  }
  vmf.mapAs(fileReadWritable(vma), false, false, true);
  if (wholeFolioRun(k, vma, vmf.pte, vpn, pfn) > 1) setPteRange(k, vmf, vpn - (pfn - head), head, n);
  else setPteRange(k, vmf, vpn, pfn, 1);
}

/**
 * finish_fault()'s test for mapping the whole folio of `pfn` (faulting page `vpn`): the folio lies
 * inside the VMA, one page table and i_size (file_end < folio_next_index(folio) falls back to one
 * page, 74207de2ba10; shmem may cross EOF) and every PTE of its range is none. Returns its page
 * count, or 1 when only the faulting page can be mapped.
 */
function wholeFolioRun(k: Kernel, vma: Vma, pt: number, vpn: number, pfn: number): number {
  const f = k.frames;
  const n = 1 << f.order[pfn]!;
  if (n === 1) return 1;
  const headVpn = vpn - (pfn % n);
  const inode = vma.file!;
  const insideEof = inode.shmem || f.index[pfn - (pfn % n)]! + n <= inode.pages;
  const fits =
    insideEof &&
    headVpn >= vma.start &&
    headVpn + n <= vma.end &&
    Math.floor(headVpn / 512) === Math.floor((headVpn + n - 1) / 512);
  return fits && rangeNone(k, pt, headVpn, n) ? n : 1;
}

function rangeNone(k: Kernel, pt: number, vpn: number, n: number): boolean {
  const ent = k.mem.ent;
  const base = 2 * k.entryAt(pt, vpn % 512);
  for (let i = 0; i < 2 * n; i++) if (ent[base + i] !== 0) return false;
  return true;
}

/**
 * do_shared_fault(): a write to a shared file mapping with no PTE maps the page-cache page itself
 * (from ->fault, minor or major), writable, and dirties it. finish_fault() maps a large folio
 * whole, writable and dirty (Kiryl Shutsemau's "try to map the entire file folio in
 * finish_fault()", 6.18); otherwise the one page.
 */
function doSharedFault(k: Kernel, vmf: VmFault): number {
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const src = filemapFault(k, vma, vmf.pgoff);
  if (src < 0) {
    k.stats.faultsSegv++;
    return FAULT_SIGBUS;
  }
  k.stats.faultsSharedWrite++;
  pageMkwrite(k, vma.file?.shmem ?? true, src);
  folioMarkDirty(k, src);
  const n = wholeFolioRun(k, vma, vmf.pte, vpn, src);
  vmf.mapAs(true, true, false, true);
  if (n > 1) setPteRange(k, vmf, vpn - (src % n), src - (src % n), n);
  else setPteRange(k, vmf, vpn, src, 1);
  folioPut(k, src, 1);
  return FAULT_RETRY;
}

/**
 * do_cow_fault(): a write to a private file mapping with no PTE copies the page-cache page (from
 * ->fault) into a new anonymous page, mapped writable and dirty. No guest.map_page charge: the
 * copy's cost stands for it.
 */
function doCowFault(k: Kernel, vmf: VmFault): number {
  const vma = vmf.vma!;
  const src = filemapFault(k, vma, vmf.pgoff);
  if (src < 0) {
    k.stats.faultsSegv++;
    return FAULT_SIGBUS;
  }
  k.stats.faultsCow++;
  vma.anonVma = true;
  const pfn = k.allocAnonPage(false);
  k.charge(k.catFault, k.costs.pageCopy);
  k.pv.kernelAccess(src, 1); // copy_mc_user_highpage reads the page-cache page
  const f = k.frames;
  f.flags[pfn] = f.flags[pfn]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  vmf.mapAs(true, true, true, false);
  setPteRange(k, vmf, vmf.vpn, pfn, 1);
  folioPut(k, src, 1);
  return FAULT_RETRY;
}
