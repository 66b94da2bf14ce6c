import type { Kernel } from './kernel.js';
import { readFolio } from './filemap.js';
import { vmaModify, vmasOverlapping } from './mmap.js';
import type { Mm } from './mm.js';
import { forceReadahead } from './readahead.js';
import { MmuGather } from './tlb-gather.js';
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_RAND_READ, VM_SEQ_READ, VM_WILLNEED_HINT } from './vma.js';
import { zapRange } from './zap.js';

/** madvise advice names and their MADV_* semantics. */
export type Advice = 'normal' | 'random' | 'sequential' | 'willneed' | 'dontneed' | 'hugepage' | 'nohugepage';

/**
 * mm/madvise.c madvise(): hints set VMA flags (madvise_update_vma: split only where the flags change);
 * DONTNEED zaps and WILLNEED fills the page cache, both without touching the VMAs
 * (madvise_dontneed_free, madvise_willneed).
 */
export function madvise(k: Kernel, mm: Mm, start: number, pages: number, advice: Advice): void {
  const end = start + pages;
  for (const v0 of vmasOverlapping(mm, start, end)) {
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
    if (flags !== v0.flags) vmaModify(k, mm, v0, start, end).flags = flags;
  }
}
