import { configError } from '@pte/core';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { doMunmap } from './mmap.js';
import { Vma, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_WRITE } from './vma.js';

/**
 * Where the heap starts (mm->start_brk) as a page number: 0x555556000000, just above where a
 * PIE program's image sits on x86-64 without randomisation. The model has no program image, so
 * the heap is all that lives there.
 */
export const BRK_BASE_VPN = 0x555556000;

/**
 * mm/mmap.c brk(): move the program break of `mm` to page `newBrk` and return it. Growing extends
 * the heap VMA in place when it ends at the old break (do_brk_flags → vma_expand, after
 * vma_start_write on it under mmap_lock), else maps a new anonymous VMA there; shrinking unmaps
 * [newBrk, old break) as munmap does. Returns the break, unchanged when the request is refused
 * as Linux refuses it: below mm->start_brk, or growing into another mapping.
 */
export function doBrk(k: Kernel, mm: Mm, newBrk: number): number {
  if (mm.brkStart < 0) mm.brkStart = mm.brk = BRK_BASE_VPN;
  if (!Number.isSafeInteger(newBrk)) throw configError(`brk to page ${newBrk}`);
  const old = mm.brk;
  if (newBrk < mm.brkStart || newBrk === old) return old;
  if (newBrk < old) {
    doMunmap(k, mm, newBrk, old - newBrk);
    mm.brk = newBrk;
    return newBrk;
  }
  if (!mm.vmas.isFree(old, newBrk)) return old; // find_vma_intersection(): the heap may not grow into a mapping
  const heap = heapVma(mm);
  if (heap !== null)
    heap.end = newBrk; // vma_expand()
  else mm.vmas.insert(new Vma(old, newBrk, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC, null, 0));
  mm.brk = newBrk;
  return newBrk;
}

/** The VMA do_brk_flags() would expand: the anonymous one ending at the break, if any. */
export function heapVma(mm: Mm): Vma | null {
  if (mm.brk <= mm.brkStart) return null;
  const v = mm.vmas.find(mm.brk - 1);
  return v !== null && v.end === mm.brk && v.isAnon() ? v : null;
}
