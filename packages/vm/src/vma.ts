import type { VmaLock } from './vma-lock.js';
import type { Inode } from './page-cache.js';

/** vm_flags bits, as in include/linux/mm.h. */
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_PFNMAP = 0x400;
export const VM_UFFD_WP = 0x1000;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
/**
 * Model only (Linux keeps no such flag): the mapping was given MADV_WILLNEED, which the
 * madvise-gated fault-around proposal (VmPolicy.faultAroundGate) treats as a request to prefault.
 */
export const VM_WILLNEED_HINT = 0x4000000;
/** VM_UFFD_MINOR: not in x86's low bits in Linux; any distinct bit serves the model. */
export const VM_UFFD_MINOR = 0x80000000;

/** VM_COPY_ON_FORK (linux-mm.md §4.1): these VMAs copy page tables at fork even without anon_vma. */
export const VM_COPY_ON_FORK = VM_PFNMAP | VM_MIXEDMAP | VM_UFFD_WP;

/**
 * A virtual memory area, `struct vm_area_struct`: pages [start, end) in virtual page numbers
 * (address >> 12; exact doubles for any user address), the file and page offset behind it, and
 * whether it has an anon_vma (anonymous pages were ever created in it, e.g. by a COW write).
 */
export class Vma {
  constructor(
    public start: number,
    public end: number,
    public flags: number,
    public readonly file: Inode | null,
    /** File page offset of `start` (vm_pgoff). */
    public pgoff: number,
    public anonVma = false,
  ) {}

  /** Its per-VMA lock (vm_refcnt, vm_lock_seq), made by the first fault that takes it (fault-lock.ts). */
  lock: VmaLock | null = null;

  get pages(): number {
    return this.end - this.start;
  }

  isAnon(): boolean {
    return this.file === null;
  }

  /** File page offset of a page of this VMA (linear_page_index). */
  pgoffOf(vpn: number): number {
    return this.pgoff + (vpn - this.start);
  }

  clone(): Vma {
    return new Vma(this.start, this.end, this.flags, this.file, this.pgoff, this.anonVma);
  }
}

/**
 * The VMAs of one mm, sorted by start, with O(log n) lookup (the maple tree's job) and a
 * one-entry cache of the last hit (vmacache).
 */
export class VmaTree {
  private readonly list: Vma[] = [];
  private last: Vma | null = null;

  get size(): number {
    return this.list.length;
  }

  all(): readonly Vma[] {
    return this.list;
  }

  /** find_vma(): the VMA containing `vpn`, or null. */
  find(vpn: number): Vma | null {
    const last = this.last;
    if (last !== null && vpn >= last.start && vpn < last.end) return last;
    const list = this.list;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = list[mid]!;
      if (vpn < v.start) hi = mid - 1;
      else if (vpn >= v.end) lo = mid + 1;
      else {
        this.last = v;
        return v;
      }
    }
    return null;
  }

  /** True if no VMA overlaps [start, end). */
  isFree(start: number, end: number): boolean {
    for (const v of this.list) if (v.start < end && start < v.end) return false;
    return true;
  }

  insert(vma: Vma): void {
    if (!this.isFree(vma.start, vma.end)) throw new Error(`VMA [${vma.start}, ${vma.end}) overlaps an existing one`);
    let i = 0;
    while (i < this.list.length && this.list[i]!.start < vma.start) i++;
    this.list.splice(i, 0, vma);
  }

  remove(vma: Vma): void {
    const i = this.list.indexOf(vma);
    if (i < 0) throw new Error('removing a VMA not in the tree');
    this.list.splice(i, 1);
    if (this.last === vma) this.last = null;
  }

  /** Split `vma` at `vpn` (split_vma): `vma` keeps [start, vpn), the new one [vpn, end) is returned. */
  split(vma: Vma, vpn: number): Vma {
    const tail = new Vma(vpn, vma.end, vma.flags, vma.file, vma.pgoffOf(vpn), vma.anonVma);
    vma.end = vpn;
    const i = this.list.indexOf(vma);
    this.list.splice(i + 1, 0, tail);
    this.last = null;
    return tail;
  }

  /** Highest end below `limit` where `pages` fit, searching down from `limit` (top-down mmap). */
  findGap(pages: number, limit: number, align = 1): number {
    let top = limit;
    for (let i = this.list.length - 1; i >= -1; i--) {
      const below = i >= 0 ? this.list[i]!.end : 0;
      const start = Math.floor((top - pages) / align) * align;
      if (start >= below && start + pages <= top) return start;
      if (i >= 0) top = Math.min(top, this.list[i]!.start);
    }
    return -1;
  }
}
