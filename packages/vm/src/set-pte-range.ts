import { folioGet } from './folio.js';
import type { Kernel } from './kernel.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from './mm.js';
import { mkPteHi, mkPteLo } from './pgtable.js';
import { VM_EXEC, VM_SHARED, VM_WRITE, type Vma } from './vma.js';
import type { VmFault } from './vm-fault.js';

/**
 * mm/memory.c set_pte_range(): map `n` consecutive pages of one folio, starting at page `vpn`
 * (PTE page vmf.pte) and frame `pfn`, writable / dirty / anon as `vmf` decided, and charge
 * guest.map_page per page and guest.map_folio per run unless the path does not (vmf.chargeMapPage). As in the kernel, the
 * entries are young unless the run does not contain the faulting address (vmf.vpn) and the policy
 * wants old prefaulted PTEs (arch_wants_old_prefaulted_pte). With `lazySetPtes` a run goes through
 * set_ptes() in lazy MMU mode; otherwise one set_pte per page (set_pte_at in the 2.6/3.x kernels).
 *
 * Pages other than the faulting one count as prefaulted and are marked so that the first walk
 * through them counts a use, and a zap of an unused one counts `pte.prefaulted_unused`.
 */
export function setPteRange(k: Kernel, vmf: VmFault, vpn: number, pfn: number, n: number): void {
  const mm = vmf.mm!;
  const vma = vmf.vma!;
  const pt = vmf.pte;
  const faultVpn = vmf.vpn;
  const writable = vmf.writable;
  const dirty = vmf.dirty;
  const anon = vmf.anon;
  const containsFault = faultVpn >= vpn && faultVpn < vpn + n;
  const young = containsFault || !k.policy.prefaultOld;
  const pv = k.pv;
  // pfn_pte(): the entry carries the frame the hardware uses (the P2M's, under Xen PV).
  const exec = (vma.flags & VM_EXEC) !== 0;
  const m = pv.mfn(pfn);
  const lo = mkPteLo(m, writable, young, dirty);
  const hi = mkPteHi(m, exec);
  const idx = vpn % 512;
  if (n === 1) {
    pv.setPte(pt, idx, lo, hi);
  } else if (k.policy.lazySetPtes) {
    pv.lazyEnter();
    pv.setPtes(pt, idx, n, lo, hi);
    pv.lazyLeave();
  } else {
    for (let i = 0; i < n; i++) {
      const mi = pv.mfn(pfn + i);
      pv.setPte(pt, idx + i, mkPteLo(mi, writable, young, dirty), mkPteHi(mi, exec));
    }
  }
  const f = k.frames;
  for (let i = 0; i < n; i++) f.mapcount[pfn + i] = f.mapcount[pfn + i]! + 1;
  folioGet(k, pfn, n);
  if (anon) k.reclaim?.addAnon(pfn, vpn, n);
  mm.addRss(anon ? MM_ANONPAGES : vma.file !== null && vma.file.shmem ? MM_SHMEMPAGES : MM_FILEPAGES, n);
  k.stats.ptePopulated += n;
  const prefaulted = containsFault ? n - 1 : n;
  if (prefaulted > 0) {
    k.stats.ptePrefaulted += prefaulted;
    const base = k.entryAt(pt, idx);
    for (let i = 0; i < n; i++) if (vpn + i !== faultVpn) k.mem.setMark(base + i);
  }
  // The per-page rmap work per page; the folio's reference, large mapcount and RSS once per run
  // (folio_ref_add, folio_add_file_rmap_ptes): kernels before large folios map one page per run.
  if (vmf.chargeMapPage) k.charge(k.catFault, k.costs.mapPage * n + k.costs.mapFolio);
}

/**
 * Whether a read fault maps a file page writable: only shared writable mappings that need no
 * write notification (shmem; regular files are write-protected for dirty tracking,
 * vma_wants_writenotify()).
 */
export function fileReadWritable(vma: Vma): boolean {
  return (vma.flags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE) && vma.file !== null && vma.file.shmem;
}
