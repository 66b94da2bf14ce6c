import { configError } from '@pte/core';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import type { Inode } from './page-cache.js';
import { PT_HUGE, pteTableFor } from './pgtable.js';
import type { Prot } from './mprotect.js';
import type { Task } from './task.js';
import { MmuGather } from './tlb-gather.js';
import { Vma, VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_SHARED, VM_WRITE } from './vma.js';
import { freePgtables, splitPmd, zapRange } from './zap.js';

export interface MmapRequest {
  /** Length in pages. */
  readonly pages: number;
  readonly prot: Prot;
  readonly shared: boolean;
  /** The file, or null for anonymous memory (MAP_SHARED|MAP_ANONYMOUS becomes a shmem file). */
  readonly file: Inode | null;
  /** File page offset. */
  readonly pgoff?: number;
  /** MAP_FIXED address (page number); otherwise top-down placement below `mmapBase`. */
  readonly fixedVpn?: number;
}

/** Top of the mmap area: 0x7f0000000000 >> 12, where glibc-era x86-64 mappings begin. */
export const MMAP_BASE_VPN = 0x7f0000000;

/**
 * mm/mmap.c do_mmap(): a new VMA. Mappings of 2 MiB or more are placed 2 MiB-aligned
 * (thp_get_unmapped_area), so PMD-sized folios can be PMD-mapped. Returns the first page.
 */
export function doMmap(k: Kernel, task: Task, req: MmapRequest): Vma {
  const mm = task.mm;
  if (!Number.isSafeInteger(req.pages) || req.pages <= 0) throw configError(`mmap of ${req.pages} pages`);
  let file = req.file;
  if (file === null && req.shared)
    file = k.pageCache.createFile(`shmem:${task.pid}:${mm.vmas.size}`, req.pages * 4096, true);
  let flags = req.prot | VM_MAYREAD | VM_MAYEXEC;
  if (req.shared) flags |= VM_SHARED | VM_MAYSHARE | ((req.prot & VM_WRITE) !== 0 ? VM_MAYWRITE : 0);
  else flags |= VM_MAYWRITE;
  let start: number;
  if (req.fixedVpn !== undefined) {
    start = req.fixedVpn;
    doMunmap(k, mm, start, req.pages);
  } else {
    start = mm.vmas.findGap(req.pages, MMAP_BASE_VPN, req.pages >= 512 ? 512 : 1);
    if (start < 0) throw configError(`no room for a mapping of ${req.pages} pages`);
  }
  const vma = new Vma(start, start + req.pages, flags, file, req.pgoff ?? 0);
  mm.vmas.insert(vma);
  return vma;
}

/** mm/mmap.c do_munmap(): split at the edges, zap, remove, free page tables, flush the TLB range. */
export function doMunmap(k: Kernel, mm: Mm, start: number, pages: number): void {
  const end = start + pages;
  const victims = splitRange(mm, start, end);
  if (victims.length === 0) return;
  const tlb = new MmuGather(k, mm, false);
  for (const v of victims) zapRange(k, mm, v, v.start, v.end, tlb);
  for (const v of victims) mm.vmas.remove(v);
  freePgtables(k, mm, false);
  tlb.finish();
}

/**
 * mm/mmap.c exit_mmap(): unpin first (Xen: the tables become ordinary writable memory, so the zap is
 * plain stores), zap every VMA with a full-mm gather, free all page tables and the pgd.
 */
export function exitMmap(k: Kernel, mm: Mm): void {
  k.pv.pgdUnpin(mm.root);
  const tlb = new MmuGather(k, mm, true);
  for (const v of mm.vmas.all()) zapRange(k, mm, v, v.start, v.end, tlb);
  tlb.finish();
  // The CPU must not keep the dying tables loaded: Linux frees the pgd only in mmdrop, after
  // the switch away (to init_mm when nothing else runs: leave_mm).
  if (k.cpu.mm === mm) {
    const kmm = k.kernelMmIfAny;
    if (kmm !== null) k.switchMm(kmm);
    else k.cpu.dropMm(); // without a kernel mm nothing reloads CR3 before the next switch_mm
  }
  for (const v of [...mm.vmas.all()]) mm.vmas.remove(v);
  freePgtables(k, mm, true);
  k.mms.delete(mm);
}

/** Split VMAs at `start` and `end`; return those inside [start, end). */
function splitRange(mm: Mm, start: number, end: number): Vma[] {
  const first = mm.vmas.find(start);
  if (first !== null && first.start < start) mm.vmas.split(first, start);
  const last = mm.vmas.find(end - 1);
  if (last !== null && last.end > end) mm.vmas.split(last, end);
  return mm.vmas.all().filter((v) => v.start >= start && v.end <= end);
}

/** The VMAs overlapping [start, end), unsplit (a copy: callers may split while iterating). */
export function vmasOverlapping(mm: Mm, start: number, end: number): Vma[] {
  return mm.vmas.all().filter((v) => v.start < end && start < v.end);
}

/** vma_modify(): split `vma` so that its part inside [start, end) is a VMA of its own; return it. */
export function vmaModify(k: Kernel, mm: Mm, vma: Vma, start: number, end: number): Vma {
  if (vma.start < start) splitHugeAt(k, mm, start);
  if (vma.end > end) splitHugeAt(k, mm, end);
  const v = vma.start < start ? mm.vmas.split(vma, start) : vma;
  if (v.end > end) mm.vmas.split(v, end);
  return v;
}

/** vma_adjust_trans_huge(): a VMA boundary moving inside a PMD leaf splits it first. */
function splitHugeAt(k: Kernel, mm: Mm, vpn: number): void {
  if (vpn % 512 !== 0 && pteTableFor(k, mm, vpn, false) === PT_HUGE) splitPmd(k, mm, vpn);
}
