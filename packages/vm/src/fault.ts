import { ACCESS_FETCH, ACCESS_WRITE, P, RW } from '@pte/arch-x86';
import { doAnonymousPage } from './anon.js';
import { doFaultAround, tryMapPmd } from './fault-around.js';
import { filemapFault } from './filemap.js';
import { folioMarkDirty, folioPut } from './folio.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PG_ANON, PG_DIRTY, PG_EXCLUSIVE, PG_UPTODATE } from './page-flags.js';
import { doHugePmdAnonymousPage, doHugePmdWpPage, doHugeZeroPmd, isAnonPmd, thpAllowed } from './huge-anon.js';
import { pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { MmuGather } from './tlb-gather.js';
import { fileReadWritable, setPteRange } from './set-pte-range.js';
import { isSwapPte, swpSlot } from './swap.js';
import { splitPmd } from './zap.js';
import { VM_EXEC, VM_READ, VM_SEQ_READ, VM_SHARED, VM_UFFD_MINOR, VM_UFFD_WP, VM_WILLNEED_HINT, VM_WRITE, type Vma } from './vma.js';
import { doWpPage } from './wp.js';

/** Outcome of a fault: the access can be retried, or the process gets a signal. */
export const FAULT_RETRY = 0;
export const FAULT_SIGSEGV = 1;
export const FAULT_SIGBUS = 2;

/**
 * The page-fault handler, after mm/memory.c handle_mm_fault() → __handle_mm_fault() →
 * handle_pte_fault(). `access` carries the #PF error-code bits of the access (W, U, I).
 */
export function handleMmFault(k: Kernel, mm: Mm, vpn: number, access: number): number {
  k.stats.faults++;
  k.charge(k.catFault, k.costs.faultEntry);
  k.faultMm = mm;
  k.faultVpn = vpn;
  k.reapIo();
  const vma = mm.vmas.find(vpn);
  if (vma === null || !accessAllowed(vma, access)) {
    k.stats.faultsSegv++;
    return FAULT_SIGSEGV;
  }
  const write = (access & ACCESS_WRITE) !== 0;
  let pt = pteTableFor(k, mm, vpn, false);
  if (pt === -2) {
    // A PMD leaf maps the address: a PMD-mapped file folio (read-only) or an anonymous THP.
    const pmd = pmdTableFor(k, mm, vpn, false);
    const pidx = vpnIndex(vpn, 2);
    const plo = k.readLo(pmd, pidx);
    if (!write || (plo & RW) !== 0) {
      k.stats.faultsSpurious++;
      return FAULT_RETRY;
    }
    if (isAnonPmd(k, plo, k.readHi(pmd, pidx))) {
      // do_huge_pmd_wp_page(): reuse, or split and let the PTE path (do_wp_page) copy the page.
      const tlb = new MmuGather(k, mm, false);
      const reused = doHugePmdWpPage(k, mm, pmd, pidx, vpn - (vpn % 512), tlb);
      tlb.finish();
      if (reused) {
        k.stats.faultsMinor++;
        return FAULT_RETRY;
      }
      pt = pteTableFor(k, mm, vpn, false);
    } else {
      // For file folios __split_huge_pmd() just zaps the PMD and the PTE path refaults.
      splitPmd(k, mm, vpn);
      pt = -1;
    }
  }
  if (pt === -1 && thpAllowed(k, vma, vpn)) {
    // __handle_mm_fault(): a none PMD in a THP-enabled VMA → create_huge_pmd(): a new THP for a
    // write, the huge zero page for a read.
    const pmd = pmdTableFor(k, mm, vpn, true);
    const pidx = vpnIndex(vpn, 2);
    if (k.readLo(pmd, pidx) === 0 && k.readHi(pmd, pidx) === 0 && (write ? doHugePmdAnonymousPage(k, mm, vma, vpn, pmd) : doHugeZeroPmd(k, mm, vma, vpn, pmd))) return FAULT_RETRY;
  }
  if (pt === -1 && !(vma.file !== null && !write)) pt = pteTableFor(k, mm, vpn, true);
  if (pt === -1) return doPteMissing(k, mm, vma, vpn, pt, write);
  const idx = vpn % 512;
  const e = 2 * k.entryAt(pt, idx);
  const lo = k.mem.ent[e]!;
  const hi = k.mem.ent[e + 1]!;
  if ((lo & P) === 0) {
    if (lo !== 0 || hi !== 0) return doSwapPage(k, mm, vma, vpn, pt, lo, hi, write);
    return doPteMissing(k, mm, vma, vpn, pt, write);
  }
  if (write && (lo & RW) === 0) {
    doWpPage(k, mm, vma, vpn, pt, idx, lo, hi);
    return FAULT_RETRY;
  }
  // Present and allowed: the TLB held a stale entry (x86's flush_tlb_fix_spurious_fault is a no-op).
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
function doSwapPage(k: Kernel, mm: Mm, vma: Vma, vpn: number, pt: number, lo: number, hi: number, write: boolean): number {
  const swap = k.swap;
  if (swap === null || !isSwapPte(lo)) throw new Error(`page 0x${vpn.toString(16)}: non-present PTE ${hi.toString(16)}:${lo.toString(16)} is not a swap entry`);
  const slot = swpSlot(lo, hi);
  k.stats.faultsMajor++;
  k.stats.faultsSwap++;
  const pfn = k.allocAnonPage(false);
  k.charge(k.catIo, swap.read(k.now()));
  k.reclaim!.swapRefault(swap.writtenAt[slot]!);
  swap.put(slot);
  mm.swapEnts--;
  const f = k.frames;
  f.flags[pfn] = f.flags[pfn]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  setPteRange(k, mm, vma, pt, vpn, pfn, 1, vpn, write, write, true);
  k.charge(k.catFault, k.costs.mapPage);
  return FAULT_RETRY;
}

/** VMA permission check of do_user_addr_fault() → access_error(). */
function accessAllowed(vma: Vma, access: number): boolean {
  if ((access & ACCESS_WRITE) !== 0) return (vma.flags & VM_WRITE) !== 0;
  if ((access & ACCESS_FETCH) !== 0) return (vma.flags & VM_EXEC) !== 0;
  return (vma.flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
}

/** do_pte_missing(): anonymous VMAs take do_anonymous_page, file VMAs do_fault. */
function doPteMissing(k: Kernel, mm: Mm, vma: Vma, vpn: number, pt: number, write: boolean): number {
  if (vma.file === null) {
    doAnonymousPage(k, mm, vma, vpn, pt, write);
    return FAULT_RETRY;
  }
  k.stats.faultsFile++;
  return write ? doFileWriteFault(k, mm, vma, vpn, pt) : doReadFault(k, mm, vma, vpn, pt);
}

/**
 * do_read_fault(): fault-around first when it applies (should_fault_around: a window > 1 page and
 * no userfaultfd WP/MINOR registration; with the madvise-gated policy, an advised mapping); if
 * that did not map the faulting page, ->fault (filemap_fault) and finish_fault().
 */
function doReadFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, pt: number): number {
  if (k.policy.faultAround > 1 && (vma.flags & (VM_UFFD_WP | VM_UFFD_MINOR)) === 0 && faultAroundAllowed(k, vma)) {
    if (doFaultAround(k, mm, vma, vpn, pt)) {
      k.stats.faultsMinor++;
      return FAULT_RETRY;
    }
    pt = pteTableFor(k, mm, vpn, false);
    if (pt === -2) return FAULT_RETRY; // fault-around mapped the PMD
  }
  const pfn = filemapFault(k, vma, vma.pgoffOf(vpn));
  if (pfn < 0) {
    k.stats.faultsSegv++;
    return FAULT_SIGBUS;
  }
  finishFault(k, mm, vma, vpn, pt, pfn);
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
function finishFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, pt: number, pfn: number): void {
  const f = k.frames;
  const order = f.order[pfn]!;
  const n = 1 << order;
  const head = pfn - (pfn % n);
  const headVpn = vpn - (pfn - head);
  if (pt < 0) {
    if (n === 512 && tryMapPmd(k, mm, vma, head, f.index[head]!, vpn)) return;
    pt = pteTableFor(k, mm, vpn, true);
  }
  const writable = fileReadWritable(vma);
  if (wholeFolioRun(k, vma, pt, vpn, pfn) > 1) {
    setPteRange(k, mm, vma, pt, headVpn, head, n, vpn, writable, false, false);
    k.charge(k.catFault, k.costs.mapPage * n);
    return;
  }
  setPteRange(k, mm, vma, pt, vpn, pfn, 1, vpn, writable, false, false);
  k.charge(k.catFault, k.costs.mapPage);
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
  const fits = insideEof && headVpn >= vma.start && headVpn + n <= vma.end && Math.floor(headVpn / 512) === Math.floor((headVpn + n - 1) / 512);
  return fits && rangeNone(k, pt, headVpn, n) ? n : 1;
}

function rangeNone(k: Kernel, pt: number, vpn: number, n: number): boolean {
  const ent = k.mem.ent;
  const base = 2 * k.entryAt(pt, vpn % 512);
  for (let i = 0; i < 2 * n; i++) if (ent[base + i] !== 0) return false;
  return true;
}

/**
 * A write to a file mapping with no PTE. The page-cache page comes from ->fault (filemap_fault,
 * minor or major) either way; then do_cow_fault() copies it into a new anonymous page for a
 * private mapping, and do_shared_fault() maps the cache page itself, writable, and dirties it.
 */
function doFileWriteFault(k: Kernel, mm: Mm, vma: Vma, vpn: number, pt: number): number {
  const src = filemapFault(k, vma, vma.pgoffOf(vpn));
  if (src < 0) {
    k.stats.faultsSegv++;
    return FAULT_SIGBUS;
  }
  if ((vma.flags & VM_SHARED) !== 0) {
    k.stats.faultsSharedWrite++;
    folioMarkDirty(k, src);
    const n = wholeFolioRun(k, vma, pt, vpn, src);
    // finish_fault() maps a large folio whole, writable and dirty (Kiryl Shutsemau's "try to map
    // the entire file folio in finish_fault()", 6.18); otherwise the one page.
    if (n > 1) setPteRange(k, mm, vma, pt, vpn - (src % n), src - (src % n), n, vpn, true, true, false);
    else setPteRange(k, mm, vma, pt, vpn, src, 1, vpn, true, true, false);
    k.charge(k.catFault, k.costs.mapPage * n);
    folioPut(k, src, 1);
    return FAULT_RETRY;
  }
  k.stats.faultsCow++;
  vma.anonVma = true;
  const pfn = k.allocAnonPage(false);
  k.charge(k.catFault, k.costs.pageCopy);
  k.pv.kernelAccess(src, 1); // copy_mc_user_highpage reads the page-cache page
  const f = k.frames;
  f.flags[pfn] = f.flags[pfn]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  setPteRange(k, mm, vma, pt, vpn, pfn, 1, vpn, true, true, true);
  folioPut(k, src, 1);
  return FAULT_RETRY;
}
