import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import type { Inode } from './page-cache.js';
import { PG_LOCKED, PG_READAHEAD, PG_UPTODATE } from './page-flags.js';
import { pteTableFor } from './pgtable.js';
import { fileReadWritable, setPteRange } from './set-pte-range.js';

/**
 * The map-on-completion policy (Fitzhardinge's proposal, seed 001): when a read of pages
 * [start, start + pages) of `inode` completes, map each of them into `mm` wherever a VMA maps that
 * page of the file and its PTE is none — as fault-around would, but for pages
 * that just became present (in the faulting address space a missing page table is made). The page
 * being faulted on is left to the fault. Each mapped page counts
 * as prefaulted (and as unused if nothing touches it before it is unmapped).
 */
export function mapCompletedRead(k: Kernel, mm: Mm, inode: Inode, start: number, pages: number): void {
  const f = k.frames;
  const vmf = k.cpu.ioVmf;
  const fault = k.cpu.vmf;
  for (let index = start; index < start + pages; index++) {
    const pfn = k.pageCache.lookup(inode, index);
    if (pfn < 0 || (f.flags[pfn]! & (PG_UPTODATE | PG_LOCKED | PG_READAHEAD)) !== PG_UPTODATE) continue;
    for (const vma of mm.vmas.all()) {
      if (vma.file !== inode || index < vma.pgoff || index >= vma.pgoff + vma.pages) continue;
      const vpn = vma.start + (index - vma.pgoff);
      if (mm === fault.mm && vpn === fault.vpn) continue;
      // The faulting address space may get the page table made (it is about to need it anyway).
      const pt = pteTableFor(k, mm, vpn, mm === fault.mm);
      if (pt < 0) continue;
      const e = 2 * k.entryAt(pt, vpn % 512);
      if (k.mem.ent[e] !== 0 || k.mem.ent[e + 1] !== 0) continue;
      vmf.reset(mm, vma, -1, 0);
      vmf.pte = pt;
      vmf.mapAs(fileReadWritable(vma), false, false, true);
      setPteRange(k, vmf, vpn, pfn, 1);
      k.stats.pteMappedOnIo++;
    }
  }
}
