import { entryPfn, isLeaf, P, RW, TLB_GLOBAL, TLB_RW } from '@pte/arch-x86';
import { pteTableFor, PT_HUGE, PT_NONE, vpnIndex, type Kernel, type Mm } from '@pte/vm';
import type { Platform } from './platform.js';

/**
 * The cross-CPU checker of `--check` on several CPUs: once a flush has completed (between the
 * scheduler's steps, and after every operation), no CPU's TLB may hold a translation its address
 * space's tables no longer allow — a page unmapped, moved to another frame, or made read-only
 * while the TLB still writes it (flush_tlb_mm_range()'s promise, arch/x86/mm/tlb.c) — and a CPU
 * holding a user mm's translations must be in that mm's mm_cpumask, or no flush would reach it.
 * A TLB entry less permissive than its PTE is allowed (x86 refaults on it: a spurious fault), as
 * is one whose PTE has lost its Accessed bit (ptep_clear_flush_young does not flush on x86).
 * Global (kernel) entries, CPUs with no user mm loaded and lazy CPUs are not checked. Returns the first
 * problem found, or null.
 */
export function checkTlbsAgainstTables(k: Kernel, platform: Platform): string | null {
  for (let id = 0; id < platform.cpus.length; id++) {
    const mm = k.cpus[id]!.mm;
    if (mm === null || mm.isInitMm) continue;
    // A lazy CPU runs no user code: flushes skip it and its stale entries are flushed when it
    // comes back to the mm (leaveLazyTlb).
    if (k.cpus[id]!.tlbState.lazy) continue;
    let problem: string | null = null;
    let holds = false;
    platform.cpus[id]!.mmu.tlb.forEachEntry((vpn, level, pfn, meta) => {
      if (problem !== null || (meta & TLB_GLOBAL) !== 0) return;
      holds = true;
      problem = entryProblem(k, mm, vpn, level, pfn, (meta & TLB_RW) !== 0);
      if (problem !== null) problem = `CPU ${id}: ${problem}`;
    });
    if (problem !== null) return problem;
    if (holds && (mm.tlb.cpumask & (1 << id)) === 0) {
      return `CPU ${id} holds translations of mm ${mm.id} but is not in its mm_cpumask`;
    }
  }
  return null;
}

/** What is wrong with a TLB entry mapping `vpn` (level 1: a page, 2: 2 MiB) to frame `pfn`, or null. */
function entryProblem(k: Kernel, mm: Mm, vpn: number, level: number, pfn: number, writable: boolean): string | null {
  let lo = 0;
  let hi = 0;
  if (level === 1) {
    const pt = pteTableFor(k, mm, vpn, false);
    if (pt === PT_HUGE) return `the TLB maps page ${vpn} by 4K but a PMD leaf maps it`;
    if (pt !== PT_NONE) {
      const e = 2 * k.entryAt(pt, vpnIndex(vpn, 1));
      lo = k.mem.ent[e]!;
      hi = k.mem.ent[e + 1]!;
    }
  } else if (level === 2) {
    const pt = pteTableFor(k, mm, vpn, false);
    if (pt !== PT_HUGE) return `the TLB maps 2 MiB at page ${vpn} but no PMD leaf does`;
    return null; // a PMD leaf: its frame and rights are checked by the huge-page invariants
  } else {
    return `the TLB holds a 1 GiB user mapping at page ${vpn}, which the guest never makes`;
  }
  if ((lo & P) === 0) return `the TLB maps page ${vpn} to frame ${pfn}, but its PTE is not present`;
  if (level === 1 && !isLeaf(1, lo)) return null;
  const frame = entryPfn(1, lo, hi);
  if (frame !== pfn) return `the TLB maps page ${vpn} to frame ${pfn}, its PTE to frame ${frame}`;
  if (writable && (lo & RW) === 0) return `the TLB may write page ${vpn}, its PTE is read-only`;
  return null;
}
