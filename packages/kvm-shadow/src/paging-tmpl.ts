import {
  A,
  ACCESS_USER,
  ACCESS_WRITE,
  D,
  entryPfn,
  frameHi,
  frameLo,
  G,
  isLeaf,
  P,
  PCD,
  PF_P,
  PS,
  PWT,
  RW,
  tableIndex,
  US,
  XD_HI,
} from '@pte/arch-x86';
import { exit, flushIfNeeded, getDirectSp, getSp, link, zapSpte } from './mmu.js';
import { unprotectForUserWrite } from './page-track.js';
import type { ShadowMmu } from './shadow-mmu.js';
import { setSpte } from './spte.js';

/** PTE_PREFETCH_NUM (arch/x86/kvm/mmu/mmu.c). */
export const PTE_PREFETCH_NUM = 8;

/**
 * FNAME(page_fault) (arch/x86/kvm/mmu/paging_tmpl.h): FNAME(walk_addr_generic) walks the guest's
 * tables (setting guest A/D); true when the shadow tables were fixed, false when the #PF is the
 * guest's (`injectCode` holds its error code).
 */
export function pageFault(s: ShadowMmu, hi: number, lo: number, access: number): boolean {
  const w = s.walker;
  const ok = w.walk(s.root, hi, lo, access | ACCESS_USER);
  if (!ok && s.era === '2008' && (w.errorCode & PF_P) === 0) {
    // bypass_guest_pf (VMX, 2008): a not-present guest #PF reaches the guest without an exit.
    s.bypassed++;
    s.injectCode = w.errorCode;
    return false;
  }
  exit(s);
  s.guestWalks++;
  // 2008: an injected #PF, or a fault fixed without a write to a page table, resets the fork detector.
  s.lastWriteCount = 0;
  s.ledger.charge(s.catFault, w.refs * s.c['kvm.guest_walk_ref']);
  if (!ok) {
    s.injected++;
    s.injectCode = w.errorCode;
    s.ledger.charge(s.catExit, s.c['kvm.inject']);
    return false;
  }
  s.shadowFaults++;
  s.ledger.charge(s.catFault, s.c['kvm.shadow_fault']);
  fetch(s, hi, lo, (access & ACCESS_WRITE) !== 0);
  flushIfNeeded(s);
  return true;
}

/**
 * FNAME(fetch): build the shadow path for the address from the walk just done, then the leaf spte.
 * Above the guest's leaf level each shadow page shadows one guest table; where the guest maps 2
 * MiB (walk level 2) the host, backing guest memory with 4 KiB pages, links a direct shadow page
 * (kvm_mmu_get_child_sp(..., direct)) and maps the one 4 KiB piece, then prefetches its 8-aligned
 * neighbours (__direct_pte_prefetch).
 */
function fetch(s: ShadowMmu, hi: number, lo: number, write: boolean): void {
  const w = s.walker;
  unprotectForUserWrite(s, write);
  let sp = s.shadowRoot;
  s.spFlood[sp] = 0;
  const huge = w.level === 2 && s.hostHuge;
  for (let level = 4; level >= 2; level--) {
    const idx = tableIndex(level, hi, lo);
    if (huge && level === 2) {
      mapHuge(s, sp, idx, write);
      return;
    }
    const direct = level === w.level ? 1 : 0;
    const childGfn = direct === 1 ? w.basePfn : w.tables[level - 1]!;
    const cur = s.smem.readLo(sp, idx);
    let child = -1;
    if ((cur & P) !== 0) {
      const f = entryPfn(level, cur, s.smem.readHi(sp, idx));
      if (s.spGfn[f] === childGfn && s.spLevel[f] === level - 1 && s.spDirect[f] === direct) child = f;
      else zapSpte(s, sp, idx, level);
    }
    if (child < 0) {
      child = direct === 1 ? getDirectSp(s, childGfn) : getSp(s, childGfn, level - 1);
      link(s, sp, idx, child);
    }
    s.spFlood[child] = 0;
    sp = child;
  }
  const idx = tableIndex(1, hi, lo);
  const e = w.path[w.level]!; // the walker records the low half's index in PhysMem.ent
  const glo = s.gmem.ent[e]!;
  const ghi = s.gmem.ent[e + 1]!;
  if (w.level === 2) {
    setSpte(s, sp, idx, pieceLo(glo, w.pfn), pieceHi(ghi, w.pfn), w.rights, write, false);
    directPrefetch(s, sp, idx, glo, ghi, w.rights);
    return;
  }
  setSpte(s, sp, idx, glo, ghi, w.rights, write, false);
  if (s.era === 'modern') prefetch(s, sp, idx, w.tables[1]!);
}

/**
 * A 2 MiB spte for the walk's 2 MiB gpte (kvm_mmu_hugepage_adjust: the host maps the range with a
 * 2 MiB page, so FNAME(fetch) stops at level 2): writable only if the gpte is dirty, as a 4 KiB
 * spte; whatever was linked there (a direct page, an older spte) goes first unless it maps the
 * same 2 MiB, which is just rewritten (a write to a clean mapping adds RW and D).
 */
function mapHuge(s: ShadowMmu, sp: number, idx: number, write: boolean): void {
  const w = s.walker;
  const glo = s.gmem.ent[w.path[2]!]!;
  const ghi = s.gmem.ent[w.path[2]! + 1]!;
  const cur = s.smem.readLo(sp, idx);
  if ((cur & P) !== 0 && (!isLeaf(2, cur) || entryPfn(2, cur, s.smem.readHi(sp, idx)) !== w.basePfn))
    zapSpte(s, sp, idx, 2);
  const writable = (w.rights & RW) !== 0 && ((glo & D) !== 0 || write);
  const slo = frameLo(w.basePfn) + (P | PS | A | (w.rights & US) | (writable ? RW | D : 0));
  s.smem.write(sp, idx, slo >>> 0, (frameHi(w.basePfn) | (ghi & XD_HI)) >>> 0);
  s.hugeSptes++;
}

/** Flags a 4 KiB piece of a 2 MiB gpte keeps (not PS, whose bit is PAT in a PTE): as a PTE's low half for `frame`. */
function pieceLo(glo: number, frame: number): number {
  return (frameLo(frame) + (glo & (P | RW | US | PWT | PCD | A | D | G))) >>> 0;
}

function pieceHi(ghi: number, frame: number): number {
  return (frameHi(frame) | (ghi & XD_HI)) >>> 0;
}

/**
 * __direct_pte_prefetch (FNAME(pte_prefetch) of a direct page): the not-present sptes of the
 * 8-aligned group, each the next 4 KiB of the same 2 MiB gpte, created old and writable only if
 * the gpte is dirty.
 */
function directPrefetch(s: ShadowMmu, sp: number, idx: number, glo: number, ghi: number, rights: number): void {
  const base = idx - (idx % PTE_PREFETCH_NUM);
  const first = s.spGfn[sp]!;
  for (let i = base; i < base + PTE_PREFETCH_NUM; i++) {
    if (i === idx || (s.smem.readLo(sp, i) & P) !== 0) continue;
    setSpte(s, sp, i, pieceLo(glo, first + i), pieceHi(ghi, first + i), rights, false, true);
    s.prefetched++;
    s.ledger.charge(s.catPrefetch, s.c['kvm.prefetch']);
  }
}

/**
 * FNAME(pte_prefetch): the 8-aligned group around the fault; skip present sptes, stop at the
 * first gpte that is not present and accessed (FNAME(prefetch_invalid_gpte)). Prefetched sptes
 * are created old and write-protected unless the gpte is dirty. Upper levels of a Linux guest
 * grant RW|US, so each neighbour's rights are its own gpte's.
 */
function prefetch(s: ShadowMmu, sp: number, idx: number, gtable: number): void {
  const base = idx - (idx % PTE_PREFETCH_NUM);
  for (let i = base; i < base + PTE_PREFETCH_NUM; i++) {
    if (i === idx || (s.smem.readLo(sp, i) & P) !== 0) continue;
    const glo = s.gmem.readLo(gtable, i);
    if ((glo & P) === 0 || ((glo & A) === 0 && !s.deferredAD)) break;
    setSpte(s, sp, i, glo, s.gmem.readHi(gtable, i), glo & (RW | US), false, true);
    s.prefetched++;
    s.ledger.charge(s.catPrefetch, s.c['kvm.prefetch']);
  }
}

/**
 * FNAME(sync_spte) for spte `i` of unsync leaf `sp`: drop it if the gpte is invalid or now names
 * another frame; else refresh its rights from the gpte (`speculative`: keep it old).
 */
export function syncSpte(s: ShadowMmu, sp: number, i: number, speculative: boolean): void {
  const gfn = s.spGfn[sp]!;
  const glo = s.gmem.readLo(gfn, i);
  const ghi = s.gmem.readHi(gfn, i);
  const slo = s.smem.readLo(sp, i);
  if ((glo & (P | A)) !== (P | A) || entryPfn(1, glo, ghi) !== entryPfn(1, slo, s.smem.readHi(sp, i))) {
    s.smem.write(sp, i, 0, 0);
  } else {
    setSpte(s, sp, i, glo, ghi, glo & (RW | US), false, speculative);
  }
}
