import {
  VM_EXEC,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type Advice,
  type Syscalls,
  type Task,
  type Vma,
} from '@pte/vm';

/** The range operations the random-sequence property tests issue (vm, xen, kvm). */
export type RangeOp =
  | { readonly op: 'munmap' | 'dontneed' }
  | { readonly op: 'mprotect'; readonly prot: 'r' | 'rw' | 'rx' }
  | { readonly op: 'advise'; readonly advice: Advice };

/** The VMA of `vmas` chosen by `vmaSel` and a sub-range chosen by off/len, sometimes reaching past its end. */
export function pickRangeIn(
  vmas: readonly Vma[],
  vmaSel: number,
  off: number,
  len: number,
): { start: number; pages: number } | null {
  if (vmas.length === 0) return null;
  const v = vmas[vmaSel % vmas.length]!;
  const o = off % v.pages;
  return { start: v.start + o, pages: 1 + (len % (v.pages - o + 20)) };
}

/**
 * munmap / mprotect / MADV_DONTNEED / madvise over `r`. mprotect adds write only where every
 * mapping in the range may be written (VM_MAYWRITE): a read-only MAP_SHARED file mapping refuses
 * it (mprotect's EACCES).
 */
export function applyRangeOp(sys: Syscalls, task: Task, op: RangeOp, r: { start: number; pages: number }): void {
  switch (op.op) {
    case 'munmap':
      sys.munmap(task, r.start, r.pages);
      return;
    case 'dontneed':
      sys.madvise(task, r.start, r.pages, 'dontneed');
      return;
    case 'advise':
      sys.madvise(task, r.start, r.pages, op.advice);
      return;
    case 'mprotect': {
      let write = op.prot === 'rw';
      for (const v of task.mm.vmas.all()) {
        if (v.start < r.start + r.pages && r.start < v.end && (v.flags & (VM_SHARED | VM_MAYWRITE)) === VM_SHARED)
          write = false;
      }
      sys.mprotect(task, r.start, r.pages, VM_READ | (write ? VM_WRITE : 0) | (op.prot === 'rx' ? VM_EXEC : 0));
    }
  }
}
