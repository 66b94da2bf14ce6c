import { PteError } from '@pte/core';
import { isLeaf, P } from '@pte/arch-x86';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { PG_ALLOCATED, PG_ANON, PG_PAGECACHE, PG_PAGETABLE, PG_PTCACHE, PG_VMALLOC, PG_ZERO } from './page-flags.js';
import { PTE_SPECIAL } from './pgtable.js';
import { isSwapPte, swpSlot } from './swap.js';

/**
 * Invariant checkers for tests and `--check` runs (DESIGN.md "Conventions"):
 * - RSS = present PTEs (zero-page PTEs excluded) + 512 per PMD leaf, per RSS type;
 * - page-table pages counted per mm match the tables reachable from its root plus those
 *   deposited under anonymous THPs, one per anonymous PMD mapping;
 * - every frame's mapcount equals the mappings found in all page tables;
 * - every folio's refcount equals its page-cache pages plus its mappings;
 * - every non-present, non-none PTE is a swap entry; each swap slot's use count equals the swap
 *   PTEs naming it, and each mm's MM_SWAPENTS its swap PTEs;
 * - no frame is leaked: an allocated frame is the zero page, a page table, in the page cache,
 *   or a mapped anonymous page.
 * Returns the violations (empty when all hold).
 */
export function checkInvariants(k: Kernel): string[] {
  const out: string[] = [];
  const f = k.frames;
  const seen = new Int32Array(f.frames);
  const swapRefs = k.swap === null ? null : new Uint32Array(k.swap.slots);
  let tables = 0;
  for (const mm of k.mms) tables += checkMm(k, mm, seen, swapRefs, out) + 1;
  if (k.swap !== null) {
    let used = 0;
    for (let s = 0; s < k.swap.slots; s++) {
      const uses = k.swap.uses(s);
      if (uses > 0) used++;
      if (uses !== swapRefs![s]) out.push(`swap slot ${s}: ${uses} uses but ${swapRefs![s]} swap PTEs found`);
    }
    if (used !== k.swap.used) out.push(`swap: ${k.swap.used} slots counted used but ${used} have uses`);
  }
  const kmm = k.kernelMmIfAny;
  if (kmm !== null) tables += kernelTables(k, kmm.root, k.levels) + 1;
  let ptFrames = 0;
  for (let pfn = 0; pfn < f.frames; pfn++) {
    const fl = f.flags[pfn]!;
    if ((fl & PG_ALLOCATED) === 0) continue;
    if (pfn === 0) continue; // reserved
    if ((fl & PG_ZERO) !== 0) continue;
    if ((fl & PG_PAGETABLE) !== 0) {
      ptFrames++;
      continue;
    }
    if ((fl & (PG_VMALLOC | PG_PTCACHE)) !== 0) continue; // kernel memory: vmalloc pages, the page-table page cache
    if (f.mapcount[pfn] !== seen[pfn]) {
      out.push(`frame 0x${pfn.toString(16)}: mapcount ${f.mapcount[pfn]} but ${seen[pfn]} mappings found`);
    }
    const n = 1 << f.order[pfn]!;
    if (pfn % n === 0) {
      let expect = 0;
      for (let i = 0; i < n; i++) expect += seen[pfn + i]! + ((f.flags[pfn + i]! & PG_PAGECACHE) !== 0 ? 1 : 0);
      if (f.refcount[pfn] !== expect)
        out.push(`folio 0x${pfn.toString(16)}: refcount ${f.refcount[pfn]} but ${expect} references found`);
      if (expect === 0) out.push(`folio 0x${pfn.toString(16)}: allocated but unreferenced (leaked)`);
    }
    if ((fl & (PG_ANON | PG_PAGECACHE)) === 0)
      out.push(`frame 0x${pfn.toString(16)}: allocated but neither anonymous, page cache nor page table`);
  }
  if (ptFrames !== tables)
    out.push(`${ptFrames} page-table frames allocated but ${tables} reachable from live address spaces`);
  return out;
}

/** Walk one mm; add its mappings to `seen`; return the number of tables below the root. */
function checkMm(k: Kernel, mm: Mm, seen: Int32Array, swapRefs: Uint32Array | null, out: string[]): number {
  const rss = [0, 0, 0];
  let tables = 0;
  let swapEnts = 0;
  let anonPmds = 0;
  const walk = (table: number, level: number): void => {
    for (let i = 0; i < 512; i++) {
      const lo = k.readLo(table, i);
      const hi = k.readHi(table, i);
      if ((lo & P) === 0) {
        if (lo === 0 && hi === 0) continue;
        // A non-present entry that is not none must be a PTE swap entry for a live slot.
        const slot = swpSlot(lo, hi);
        if (level !== 1 || !isSwapPte(lo) || swapRefs === null || slot >= swapRefs.length) {
          out.push(
            `mm ${mm.id}: level-${level} entry ${i} of table 0x${table.toString(16)} is non-present but not none (${hi.toString(16)}:${lo.toString(16)})`,
          );
          continue;
        }
        swapRefs[slot]!++;
        swapEnts++;
        continue;
      }
      if (level === 1) {
        if ((lo & PTE_SPECIAL) !== 0) continue;
        const pfn = k.frameOf(1, lo, hi);
        seen[pfn] = seen[pfn]! + 1;
        rss[rssType(k, pfn)]! += 1;
      } else if (isLeaf(level, lo)) {
        const head = k.frameOf(level, lo, hi);
        if (head === k.hugeZeroPfn) {
          anonPmds++; // the huge zero page: no mapcount or RSS, but a deposited table
          continue;
        }
        const n = level === 2 ? 512 : 512 * 512;
        for (let j = 0; j < n; j++) seen[head + j] = seen[head + j]! + 1;
        rss[rssType(k, head)]! += n;
        if ((k.frames.flags[head]! & PG_ANON) !== 0) anonPmds++;
      } else {
        tables++;
        walk(k.frameOf(level, lo, hi), level - 1);
      }
    }
  };
  walk(mm.root, k.levels);
  // Each anonymous THP mapped by a PMD has a page table deposited under it, counted in ptPages.
  if (anonPmds !== mm.deposit.size)
    out.push(`mm ${mm.id}: ${anonPmds} anonymous PMD mappings but ${mm.deposit.size} deposited page tables`);
  tables += mm.deposit.size;
  const names = ['file', 'anon', 'shmem'];
  for (const t of [MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES]) {
    if (rss[t] !== mm.rss[t]) out.push(`mm ${mm.id}: ${names[t]} RSS ${mm.rss[t]} but ${rss[t]} present pages`);
  }
  if (swapEnts !== mm.swapEnts) out.push(`mm ${mm.id}: ${mm.swapEnts} swap entries counted but ${swapEnts} found`);
  if (tables !== mm.ptPages) out.push(`mm ${mm.id}: ${mm.ptPages} page-table pages counted but ${tables} reachable`);
  return tables;
}

/** Tables below `table` in init_mm (its leaf mappings are vmalloc's and have no rmap). */
function kernelTables(k: Kernel, table: number, level: number): number {
  if (level === 1) return 0;
  let n = 0;
  for (let i = 0; i < 512; i++) {
    const lo = k.readLo(table, i);
    if ((lo & P) === 0 || isLeaf(level, lo)) continue;
    n += 1 + kernelTables(k, k.frameOf(level, lo, k.readHi(table, i)), level - 1);
  }
  return n;
}

function rssType(k: Kernel, pfn: number): number {
  const fl = k.frames.flags[pfn]!;
  if ((fl & PG_ANON) !== 0) return MM_ANONPAGES;
  const owner = k.frames.owner[pfn]!;
  const file = k.pageCache.files[owner];
  return file !== undefined && file.shmem ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** Throw a model error listing the first violations, for `--check` runs. */
export function assertInvariants(k: Kernel, where: string): void {
  const v = checkInvariants(k);
  if (v.length > 0) {
    throw new PteError(
      'model',
      `invariant check failed ${where}: ${v.slice(0, 3).join('; ')}${v.length > 3 ? ` (+${v.length - 3} more)` : ''}`,
    );
  }
}
