import { configError } from '@pte/core';
import { P, RW, XD_HI } from '@pte/arch-x86';
import { readFolio } from './filemap.js';
import { forceReadahead } from './readahead.js';
import { dupMmap } from './fork.js';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import type { Inode } from './page-cache.js';
import { pmdTableFor, pteTableFor, vpnIndex } from './pgtable.js';
import { Task } from './task.js';
import { MmuGather } from './tlb-gather.js';
import {
  Vma, VM_EXEC, VM_HUGEPAGE, VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_NOHUGEPAGE, VM_RAND_READ,
  VM_READ, VM_SEQ_READ, VM_SHARED, VM_WILLNEED_HINT, VM_WRITE,
} from './vma.js';
import { freePgtables, splitPmd, zapRange } from './zap.js';

/** Protection bits for mmap/mprotect (PROT_READ/WRITE/EXEC as VM_READ/WRITE/EXEC). */
export type Prot = number;

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

/** madvise advice names and their MADV_* semantics. */
export type Advice = 'normal' | 'random' | 'sequential' | 'willneed' | 'dontneed' | 'hugepage' | 'nohugepage';

/**
 * The memory system calls of a task, after mm/mmap.c, mm/mprotect.c, mm/madvise.c and
 * kernel/fork.c / kernel/exit.c / fs/exec.c.
 */
export class Syscalls {
  private nextPid = 1;

  constructor(private readonly k: Kernel) {}

  /** A new process with an empty address space (the machine's init). */
  spawn(): Task {
    const mm = this.k.newMm();
    this.k.pv.pgdPin(mm.root);
    return new Task(this.nextPid++, mm, null);
  }

  /**
   * do_mmap(): a new VMA. Mappings of 2 MiB or more are placed 2 MiB-aligned
   * (thp_get_unmapped_area), so PMD-sized folios can be PMD-mapped. Returns the first page.
   */
  mmap(task: Task, req: MmapRequest): Vma {
    const k = this.k;
    const mm = task.mm;
    if (!Number.isSafeInteger(req.pages) || req.pages <= 0) throw configError(`mmap of ${req.pages} pages`);
    let file = req.file;
    if (file === null && req.shared) file = k.pageCache.createFile(`shmem:${task.pid}:${mm.vmas.size}`, req.pages * 4096, true);
    let flags = req.prot | VM_MAYREAD | VM_MAYEXEC;
    if (req.shared) flags |= VM_SHARED | VM_MAYSHARE | ((req.prot & VM_WRITE) !== 0 ? VM_MAYWRITE : 0);
    else flags |= VM_MAYWRITE;
    let start: number;
    if (req.fixedVpn !== undefined) {
      start = req.fixedVpn;
      this.munmap(task, start, req.pages);
    } else {
      start = mm.vmas.findGap(req.pages, MMAP_BASE_VPN, req.pages >= 512 ? 512 : 1);
      if (start < 0) throw configError(`no room for a mapping of ${req.pages} pages`);
    }
    const vma = new Vma(start, start + req.pages, flags, file, req.pgoff ?? 0);
    mm.vmas.insert(vma);
    return vma;
  }

  /** do_munmap(): split at the edges, zap, remove, free page tables, flush the TLB range. */
  munmap(task: Task, start: number, pages: number): void {
    const k = this.k;
    const mm = task.mm;
    const end = start + pages;
    const victims = this.splitRange(mm, start, end);
    if (victims.length === 0) return;
    const tlb = new MmuGather(k, mm, false);
    for (const v of victims) zapRange(k, mm, v, v.start, v.end, tlb);
    for (const v of victims) mm.vmas.remove(v);
    freePgtables(k, mm, false);
    tlb.finish();
  }

  /**
   * mprotect(): change_protection() → change_pte_range() in lazy MMU mode with
   * ptep_modify_prot_start/commit. Removing write or exec rewrites present PTEs; adding write
   * leaves them read-only (the next write faults: reuse or COW). The range is flushed. A VMA
   * whose flags would not change is left alone, unsplit (mprotect_fixup). A PMD-mapped file folio
   * gets the new protections in place when the VMA covers its 2 MiB (change_huge_pmd), and is
   * split otherwise (__split_huge_pmd: for a file folio, zapped; the pages refault).
   */
  mprotect(task: Task, start: number, pages: number, prot: Prot): void {
    const k = this.k;
    const mm = task.mm;
    const end = start + pages;
    const tlb = new MmuGather(k, mm, false);
    // A refusal part-way leaves the VMAs before it changed (as Linux's loop does): flush them anyway.
    try {
      this.changeProtection(mm, start, end, prot, tlb);
    } finally {
      tlb.finish();
    }
  }

  private changeProtection(mm: Mm, start: number, end: number, prot: Prot, tlb: MmuGather): void {
    const k = this.k;
    for (const v0 of this.overlapping(mm, start, end)) {
      if ((prot & VM_WRITE) !== 0 && (v0.flags & VM_MAYWRITE) === 0) {
        throw configError(`mprotect: cannot add write to a read-only shared mapping`);
      }
      const flags = (v0.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | prot;
      if (flags === v0.flags) continue;
      const v = this.isolate(mm, v0, start, end);
      v.flags = flags;
      const dropWrite = (prot & VM_WRITE) === 0;
      const noExec = (prot & VM_EXEC) === 0;
      // change_pte_range(): lazy MMU mode once per page table, as Linux holds it per PTE page.
      let lazyTable = -1;
      const leaveLazy = () => {
        if (lazyTable >= 0) k.pv.lazyLeave();
        lazyTable = -1;
      };
      for (let vpn = v.start; vpn < v.end; vpn++) {
        const pt = pteTableFor(k, mm, vpn, false);
        if (pt < 0) {
          leaveLazy();
          if (pt === -2 && this.changeHugePmd(mm, v, vpn, dropWrite, noExec, tlb)) {
            vpn = Math.max(v.start, vpn - (vpn % 512)) - 1; // split into PTEs: change those
            continue;
          }
          vpn = vpn - (vpn % 512) + 511;
          continue;
        }
        const idx = vpn % 512;
        const lo = k.readLo(pt, idx);
        if ((lo & P) === 0) continue;
        const hi = k.readHi(pt, idx);
        const nlo = dropWrite ? lo & ~RW : lo;
        const nhi = noExec ? hi | XD_HI : hi & ~XD_HI;
        if (nlo === lo && nhi >>> 0 === hi) continue;
        if (lazyTable !== pt) {
          leaveLazy();
          k.pv.lazyEnter();
          lazyTable = pt;
        }
        k.pv.ptepModifyProtStart(pt, idx);
        k.pv.ptepModifyProtCommit(pt, idx, nlo >>> 0, nhi >>> 0);
        tlb.add(vpn);
      }
      leaveLazy();
    }
  }

  /**
   * change_huge_pmd() for the PMD leaf mapping `vpn` in `v`, or its split when it reaches past `v`.
   * Returns true when the split left PTEs (an anonymous THP) that need the change.
   */
  private changeHugePmd(mm: Mm, v: Vma, vpn: number, dropWrite: boolean, noExec: boolean, tlb: MmuGather): boolean {
    const k = this.k;
    const base = vpn - (vpn % 512);
    if (base < v.start || base + 512 > v.end) {
      splitPmd(k, mm, vpn);
      return pteTableFor(k, mm, vpn, false) >= 0;
    }
    const pmd = pmdTableFor(k, mm, vpn, false);
    const idx = vpnIndex(vpn, 2);
    const lo = k.readLo(pmd, idx);
    const hi = k.readHi(pmd, idx);
    const nlo = dropWrite ? lo & ~RW : lo;
    const nhi = noExec ? hi | XD_HI : hi & ~XD_HI;
    if (nlo === lo && nhi >>> 0 === hi) return false;
    k.pv.setUpper(2, pmd, idx, nlo >>> 0, nhi >>> 0);
    tlb.addPmd(base);
    return false;
  }

  /**
   * madvise(): hints set VMA flags (madvise_update_vma: split only where the flags change);
   * DONTNEED zaps and WILLNEED fills the page cache, both without touching the VMAs
   * (madvise_dontneed_free, madvise_willneed).
   */
  madvise(task: Task, start: number, pages: number, advice: Advice): void {
    const k = this.k;
    const mm = task.mm;
    const end = start + pages;
    for (const v0 of this.overlapping(mm, start, end)) {
      const lo = Math.max(v0.start, start);
      const hi = Math.min(v0.end, end);
      let flags = v0.flags;
      switch (advice) {
        case 'normal':
          flags &= ~(VM_SEQ_READ | VM_RAND_READ | VM_WILLNEED_HINT);
          break;
        case 'random':
          flags = (flags & ~VM_SEQ_READ) | VM_RAND_READ;
          break;
        case 'sequential':
          flags = (flags & ~VM_RAND_READ) | VM_SEQ_READ;
          break;
        case 'hugepage':
          flags = (flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
          break;
        case 'nohugepage':
          flags = (flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
          break;
        case 'dontneed': {
          const tlb = new MmuGather(k, mm, false);
          zapRange(k, mm, v0, lo, hi, tlb);
          tlb.finish();
          break;
        }
        case 'willneed':
          // Linux changes no vm_flags here; only the madvise-gated proposal remembers the hint
          // (which then splits the VMA like any flag change).
          if (k.policy.faultAroundGate) flags |= VM_WILLNEED_HINT;
          if (v0.file !== null) {
            // madvise_willneed → vfs_fadvise(WILLNEED) → force_page_cache_ra(): the page cache only, no PTEs.
            if (v0.file.shmem) {
              for (let vpn = lo; vpn < hi; vpn++) {
                const index = v0.pgoffOf(vpn);
                if (index < v0.file.pages && k.pageCache.lookup(v0.file, index) < 0) readFolio(k, v0.file, index, 0);
              }
            } else {
              forceReadahead(k, v0.file, v0.pgoffOf(lo), hi - lo);
            }
          }
          break;
      }
      if (flags !== v0.flags) this.isolate(mm, v0, start, end).flags = flags;
    }
  }

  /** fork(): a child with a copy of the address space (dup_mmap), pinned for the platform. */
  fork(parent: Task): Task {
    const k = this.k;
    const mm = k.newMm();
    dupMmap(k, parent.mm, mm);
    k.pv.pgdPin(mm.root); // xen_dup_mmap pins the child's tables after they are filled
    return new Task(this.nextPid++, mm, parent);
  }

  /** execve(): a fresh address space replaces the old one, which is torn down. */
  exec(task: Task): void {
    const k = this.k;
    const old = task.mm;
    const mm = k.newMm();
    k.pv.pgdPin(mm.root); // xen_activate_mm
    task.mm = mm;
    if (k.cpu.mm === old) k.switchMm(mm);
    this.exitMmap(old);
    k.stats.execs++;
  }

  /** exit(): tear the address space down. */
  exit(task: Task): void {
    if (task.exited) throw new Error(`task ${task.pid} exited twice`);
    this.exitMmap(task.mm);
    task.exited = true;
    this.k.stats.exits++;
  }

  /**
   * exit_mmap(): unpin first (Xen: the tables become ordinary writable memory, so the zap is
   * plain stores), zap every VMA with a full-mm gather, free all page tables and the pgd.
   */
  private exitMmap(mm: Mm): void {
    const k = this.k;
    k.pv.pgdUnpin(mm.root);
    const tlb = new MmuGather(k, mm, true);
    for (const v of mm.vmas.all()) zapRange(k, mm, v, v.start, v.end, tlb);
    tlb.finish();
    // The CPU must not keep the dying tables loaded: Linux frees the pgd only in mmdrop, after
    // the switch away (to init_mm when nothing else runs: leave_mm).
    if (k.cpu.mm === mm) {
      const kmm = k.kernelMmIfAny;
      if (kmm !== null) k.switchMm(kmm);
      else k.cpu.mm = null; // without a kernel mm nothing reloads CR3 before the next switch_mm
    }
    for (const v of [...mm.vmas.all()]) mm.vmas.remove(v);
    freePgtables(k, mm, true);
    k.mms.delete(mm);
  }

  /** Split VMAs at `start` and `end`; return those inside [start, end). */
  private splitRange(mm: Mm, start: number, end: number): Vma[] {
    const first = mm.vmas.find(start);
    if (first !== null && first.start < start) mm.vmas.split(first, start);
    const last = mm.vmas.find(end - 1);
    if (last !== null && last.end > end) mm.vmas.split(last, end);
    return mm.vmas.all().filter((v) => v.start >= start && v.end <= end);
  }

  /** The VMAs overlapping [start, end), unsplit (a copy: callers may split while iterating). */
  private overlapping(mm: Mm, start: number, end: number): Vma[] {
    return mm.vmas.all().filter((v) => v.start < end && start < v.end);
  }

  /** vma_modify(): split `vma` so that its part inside [start, end) is a VMA of its own; return it. */
  private isolate(mm: Mm, vma: Vma, start: number, end: number): Vma {
    if (vma.start < start) this.splitHugeAt(mm, start);
    if (vma.end > end) this.splitHugeAt(mm, end);
    const v = vma.start < start ? mm.vmas.split(vma, start) : vma;
    if (v.end > end) mm.vmas.split(v, end);
    return v;
  }

  /** vma_adjust_trans_huge(): a VMA boundary moving inside a PMD leaf splits it first. */
  private splitHugeAt(mm: Mm, vpn: number): void {
    if (vpn % 512 !== 0 && pteTableFor(this.k, mm, vpn, false) === -2) splitPmd(this.k, mm, vpn);
  }
}

export { VM_READ, VM_WRITE, VM_EXEC };
