import { A, P, PS } from '@pte/arch-x86';
import { folioGet, folioPut } from './folio.js';
import type { Kernel } from './kernel.js';
import { MM_FILEPAGES, MM_SHMEMPAGES, type Mm } from './mm.js';
import { PG_LOCKED, PG_READAHEAD, PG_UPTODATE } from './page-flags.js';
import { mkPmdLo, mkPteHi, pteTableFor, vpnIndex, pmdTableFor } from './pgtable.js';
import { fileReadWritable, setPteRange } from './set-pte-range.js';
import { VM_EXEC, VM_NOHUGEPAGE, VM_SEQ_READ, type Vma } from './vma.js';
import type { VmFault } from './vm-fault.js';

/** The fault-around window in pages of the VMA: [from, to] inclusive, as virtual page numbers. */
export interface Window {
  from: number;
  to: number;
}

/**
 * mm/memory.c do_fault_around() window geometry (linux-mm.md §1.2):
 *   from_pte = max(ALIGN_DOWN(pte_off, nr), pte_off - min(pte_off, vma_off))
 *   to_pte   = min3(from_pte + nr, PTRS_PER_PTE, pte_off + vma_pages - vma_off) - 1
 * It starts at the nr-aligned boundary below the fault, or at the VMA start when that is later,
 * and runs up to nr pages from there, clipped to the VMA end and the page table: naturally aligned
 * inside a VMA, shifted (reaching into the next aligned block) when the VMA starts mid-block.
 * Pure: exact tests.
 */
export function faultAroundWindow(vpn: number, vmaStart: number, vmaEnd: number, nr: number): Window {
  const pteOff = vpn % 512;
  const vmaOff = vpn - vmaStart;
  const fromPte = Math.max(pteOff - (pteOff % nr), pteOff - Math.min(pteOff, vmaOff));
  const toPte = Math.min(fromPte + nr, 512, pteOff + (vmaEnd - vmaStart) - vmaOff) - 1;
  const base = vpn - pteOff;
  return { from: base + fromPte, to: base + toPte };
}

/**
 * do_fault_around(): map the cached neighbours of a read fault at `vpn` through
 * filemap_map_pages(). vmf.pte is the PTE page or PT_NONE when the PMD is none. Returns true when the
 * faulting address itself got mapped (VM_FAULT_NOPAGE: no ->fault needed).
 */
export function doFaultAround(k: Kernel, vmf: VmFault): boolean {
  const vma = vmf.vma!;
  const w = faultAroundWindow(vmf.vpn, vma.start, vma.end, k.policy.faultAround);
  if (!k.policy.faultAroundLazy) return filemapMapPages(k, vmf, vma.pgoffOf(w.from), vma.pgoffOf(w.to));
  k.pv.lazyEnter();
  const mapped = filemapMapPages(k, vmf, vma.pgoffOf(w.from), vma.pgoffOf(w.to));
  k.pv.lazyLeave();
  return mapped;
}

/**
 * mm/filemap.c filemap_map_pages() (linux-mm.md §1.3): map every page of [startPgoff, endPgoff]
 * (clipped to EOF) that is cached, uptodate, unlocked and not marked PG_readahead, whose PTE is
 * none. Pages not in the page cache are never read. The first folio may be mapped by one PMD entry
 * if the PMD is none and the folio is PMD-sized (filemap_map_pmd); a large folio that lies inside
 * i_size, the VMA and one page table is mapped whole, even beyond the window
 * (filemap_map_folio_range); otherwise only its pages inside the window. Under 6.18's strict EOF
 * test (policy mapPagesEofStrict) a folio ending at EOF counts as crossing it.
 */
export function filemapMapPages(k: Kernel, vmf: VmFault, startPgoff: number, endPgoff: number): boolean {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const faultVpn = vmf.vpn;
  const inode = vma.file!;
  const f = k.frames;
  const end = Math.min(endPgoff, inode.pages - 1);
  const fileEnd = k.policy.mapPagesEofStrict ? inode.pages - 1 : inode.pages;
  let mapped = false;
  let first = true;
  let index = startPgoff;
  while (index <= end) {
    k.charge(k.catFault, k.costs.filemapLookup);
    const pfn = k.pageCache.lookup(inode, index);
    if (pfn < 0) {
      index++;
      continue;
    }
    const flags = f.flags[pfn]!;
    const order = f.order[pfn]!;
    const n = 1 << order;
    const headIndex = index - (index % n);
    const head = pfn - (index - headIndex);
    if ((flags & PG_UPTODATE) === 0 || (flags & (PG_LOCKED | PG_READAHEAD)) !== 0) {
      index = headIndex + n;
      continue;
    }
    // file_end >= folio_next_index(folio): 6.18's file_end is the last page index (see the policy).
    const insideEof = inode.shmem || fileEnd >= headIndex + n;
    if (first) {
      first = false;
      if (vmf.pte < 0) {
        // filemap_map_pmd() (and its pmd_install) is skipped for a folio reaching EOF, so
        // pte_offset_map_lock() finds no table and nothing is mapped: ->fault will do it.
        if (!insideEof && k.policy.mapPagesEofStrict) return false;
        if (tryMapPmd(k, mm, vma, head, headIndex, faultVpn)) return true;
        folioGet(k, head, 1); // hold it while the PTE page is allocated (which may reclaim)
        vmf.pte = pteTableFor(k, mm, faultVpn, true);
        folioPut(k, head, 1);
      }
    }
    // Range of this folio to map: whole when it fits VMA, PMD and EOF; else the window part.
    const headVpn = vma.start + (headIndex - vma.pgoff);
    const fits =
      n > 1 &&
      headVpn >= vma.start &&
      headVpn + n <= vma.end &&
      Math.floor(headVpn / 512) === Math.floor((headVpn + n - 1) / 512) &&
      insideEof;
    const lo = fits ? headIndex : Math.max(headIndex, startPgoff);
    const hi = fits ? headIndex + n - 1 : Math.min(headIndex + n - 1, end);
    const before = k.stats.ptePopulated;
    const hit = mapFolioRange(k, vmf, head, headIndex, lo, hi);
    mapped = hit || mapped;
    // mmap_miss: every page mapped counts as a hit (2014), or only the faulting folio (current).
    const ra = inode.ra;
    if ((vma.flags & (VM_SEQ_READ | VM_EXEC)) === 0) {
      const hits = k.policy.mmapMissPerPage ? k.stats.ptePopulated - before : hit ? 1 : 0;
      ra.mmapMiss = Math.max(0, ra.mmapMiss - hits);
    }
    index = headIndex + n;
  }
  return mapped;
}

/**
 * filemap_map_folio_range(): set_pte_range() over runs of none PTEs of pages [lo, hi] of the folio
 * at frame `head` (file index `headIndex`). Returns true if `faultVpn` was mapped.
 */
function mapFolioRange(k: Kernel, vmf: VmFault, head: number, headIndex: number, lo: number, hi: number): boolean {
  const vma = vmf.vma!;
  const pt = vmf.pte;
  const faultVpn = vmf.vpn;
  const ent = k.mem.ent;
  vmf.mapAs(fileReadWritable(vma), false, false, true);
  let mapped = false;
  let runStart = -1;
  for (let i = lo; i <= hi + 1; i++) {
    let none = false;
    if (i <= hi) {
      const vpn = vma.start + (i - vma.pgoff);
      const e = 2 * k.entryAt(pt, vpn % 512);
      none = ent[e] === 0 && ent[e + 1] === 0; // pte_none: not present and not a swap entry
    }
    if (none && runStart < 0) runStart = i;
    if (!none && runStart >= 0) {
      const vpn = vma.start + (runStart - vma.pgoff);
      const n = i - runStart;
      setPteRange(k, vmf, vpn, head + (runStart - headIndex), n);
      if (faultVpn >= vpn && faultVpn < vpn + n) mapped = true;
      runStart = -1;
    }
  }
  return mapped;
}

/**
 * filemap_map_pmd() / do_set_pmd(): map a PMD-sized folio with one PMD entry when the PMD is none,
 * the folio is PMD-order and PMD-aligned in the VMA, inside the VMA, and inside i_size (shmem may
 * cross EOF). The entry is read-only and young, NX unless the VMA is executable (mk_huge_pmd with
 * vm_page_prot). Returns true if it mapped.
 */
export function tryMapPmd(k: Kernel, mm: Mm, vma: Vma, head: number, headIndex: number, faultVpn: number): boolean {
  if (!k.policy.pmdMapFileFolios || (vma.flags & VM_NOHUGEPAGE) !== 0) return false;
  if (k.frames.order[head] !== 9) return false;
  const headVpn = vma.start + (headIndex - vma.pgoff);
  if (headVpn % 512 !== 0 || headVpn < vma.start || headVpn + 512 > vma.end) return false;
  if (faultVpn < headVpn || faultVpn >= headVpn + 512) return false;
  const inode = vma.file!;
  if (!inode.shmem && headIndex + 512 > inode.pages) return false;
  const pmd = pmdTableFor(k, mm, faultVpn, true);
  const idx = vpnIndex(faultVpn, 2);
  if ((k.readLo(pmd, idx) & P) !== 0) return false;
  const m = k.pv.mfn(head); // a 2 MiB leaf needs machine-contiguous frames (native, TDP)
  k.pv.setUpper(2, pmd, idx, mkPmdLo(m, true), mkPteHi(m, (vma.flags & VM_EXEC) !== 0));
  const f = k.frames;
  for (let i = 0; i < 512; i++) f.mapcount[head + i] = f.mapcount[head + i]! + 1;
  folioGet(k, head, 512);
  mm.addRss(inode.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, 512);
  k.stats.pmdMapped++;
  k.charge(k.catFault, k.costs.mapPage);
  return true;
}

/** Whether a PMD entry is a present 2 MiB leaf. */
export function isPmdLeaf(lo: number): boolean {
  return (lo & (P | PS)) === (P | PS);
}

/** The A bit of a PMD leaf (for zap's folio_mark_accessed). */
export function pmdYoung(lo: number): boolean {
  return (lo & A) !== 0;
}
