import { frameHi, frameLo, A, P, RW, SW1, US, XD_HI } from '@pte/arch-x86';
import type { Kernel } from './kernel.js';
import { PG_ANON, PG_DIRTY, PG_EXCLUSIVE, PG_UPTODATE } from './page-flags.js';
import { setPteRange } from './set-pte-range.js';
import { VM_EXEC, VM_WRITE } from './vma.js';
import { FAULT_FLAG_WRITE, type VmFault } from './vm-fault.js';

/**
 * mm/memory.c do_anonymous_page() (linux-mm.md §3.1). A read fault maps the shared zero page
 * (special, read-only, no allocation, no RSS) unless the policy forbids it (zeroPage off:
 * mm_forbids_zeropage), when it allocates as a write does. A write fault allocates per the anonymous prefault
 * policy:
 * - off: one order-0 page;
 * - mthp: the largest enabled order whose naturally aligned range lies in the VMA with every PTE
 *   none (alloc_anon_folio), mapped with one set_ptes(), falling back to smaller orders, then 0;
 * - fixed N / adaptive: Christoph Lameter's anticipatory prefault (§3.3): order-0 pages for the
 *   faulting page and the following ones, clipped to the VMA and the page table, only where the
 *   PTE is none; adaptive raises the order by one for each correctly predicted next address, up to
 *   maxOrder, and resets to 0 otherwise.
 */
export function doAnonymousPage(k: Kernel, vmf: VmFault): void {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const pt = vmf.pte;
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  k.stats.faultsAnon++;
  k.stats.faultsMinor++;
  if (!write && k.policy.zeroPage) {
    mapZeroPage(k, pt, vpn, (vma.flags & VM_EXEC) !== 0);
    return;
  }
  vma.anonVma = true; // vmf_anon_prepare(): anon_vma_prepare
  const policy = k.policy.anonPrefault;
  const writable = (vma.flags & VM_WRITE) !== 0;
  vmf.mapAs(writable, true, true, false); // no guest.map_page: page_alloc + page_zero stand for it
  switch (policy.kind) {
    case 'off':
      mapNewAnon(k, vmf, vpn, 0);
      return;
    case 'mthp': {
      for (const order of policy.orders) {
        const n = 1 << order;
        const start = vpn - (vpn % n);
        if (start < vma.start || start + n > vma.end || !ptesNone(k, pt, start, n)) continue;
        if (mapNewAnon(k, vmf, start, order)) return;
      }
      mapNewAnon(k, vmf, vpn, 0);
      return;
    }
    case 'fixed':
      prefaultRun(k, vmf, policy.pages);
      return;
    case 'adaptive': {
      mm.anonOrder = vpn === mm.anonNextVpn ? Math.min(mm.anonOrder + 1, policy.maxOrder) : 0;
      const n = prefaultRun(k, vmf, 1 << mm.anonOrder);
      mm.anonNextVpn = vpn + n;
      return;
    }
  }
}

/** Lameter-style run: order-0 pages at vpn, vpn+1, ... (up to `want`), clipped to VMA and table. Returns pages covered. */
function prefaultRun(k: Kernel, vmf: VmFault, want: number): number {
  const vma = vmf.vma!;
  const vpn = vmf.vpn;
  const pt = vmf.pte;
  const limit = Math.min(vma.end, vpn - (vpn % 512) + 512, vpn + want);
  const ent = k.mem.ent;
  for (let v = vpn; v < limit; v++) {
    const e = 2 * k.entryAt(pt, v % 512);
    if (ent[e] !== 0 || ent[e + 1] !== 0) continue; // present, or a swap entry: not none
    mapNewAnon(k, vmf, v, 0);
  }
  return limit - vpn;
}

/** True if the n PTEs from `vpn` in table `pt` are all none (pte_range_none). */
function ptesNone(k: Kernel, pt: number, vpn: number, n: number): boolean {
  const ent = k.mem.ent;
  const base = 2 * k.entryAt(pt, vpn % 512);
  for (let i = 0; i < 2 * n; i++) if (ent[base + i] !== 0) return false;
  return true;
}

/** Allocate a zeroed anonymous folio of 2^order pages at `start` and map it (young, dirty). */
function mapNewAnon(k: Kernel, vmf: VmFault, start: number, order: number): boolean {
  const n = 1 << order;
  // A large order may fail and fall back (MTHP_STAT_ANON_FAULT_FALLBACK); order 0 must succeed.
  const pfn = order > 0 ? k.frames.allocLarge(order) : k.frames.allocOrFail(0);
  if (pfn < 0) return false;
  k.stats.pagesAllocated += n;
  k.charge(k.catFault, k.costs.pageAlloc + k.costs.pageZero * n);
  k.pv.kernelAccess(pfn, n); // clear_user_highpages
  const f = k.frames;
  for (let i = 0; i < n; i++) f.flags[pfn + i] = f.flags[pfn + i]! | PG_ANON | PG_EXCLUSIVE | PG_UPTODATE | PG_DIRTY;
  setPteRange(k, vmf, start, pfn, n);
  return true;
}

/** The zero-page PTE (pte_mkspecial(pfn_pte(my_zero_pfn(addr), vma->vm_page_prot))): read-only, young. */
export function mapZeroPage(k: Kernel, pt: number, vpn: number, exec: boolean): void {
  const z = k.pv.mfn(k.zeroPfn);
  k.pv.setPte(pt, vpn % 512, (frameLo(z) + (P | US | A | SW1)) >>> 0, (frameHi(z) | (exec ? 0 : XD_HI)) >>> 0);
  k.stats.ptePopulated++;
  k.stats.zeroPageMaps++;
}

/** Is this PTE (low half) writable? */
export function pteWritable(lo: number): boolean {
  return (lo & RW) !== 0;
}
