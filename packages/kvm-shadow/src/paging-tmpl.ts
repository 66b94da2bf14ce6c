import { A, ACCESS_USER, ACCESS_WRITE, entryPfn, P, PF_P, RW, tableIndex, US } from '@pte/arch-x86';
import { exit, flushIfNeeded, getSp, link, zapSpte } from './mmu.js';
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
  if (w.level !== 1)
    throw new Error('guest large pages are not shadowed by this model (the guest maps 4 KiB pages under kvm-shadow)');
  s.shadowFaults++;
  s.ledger.charge(s.catFault, s.c['kvm.shadow_fault']);
  fetch(s, hi, lo, (access & ACCESS_WRITE) !== 0);
  flushIfNeeded(s);
  return true;
}

/** FNAME(fetch): build the shadow path for the address from the walk just done, then the leaf spte. */
function fetch(s: ShadowMmu, hi: number, lo: number, write: boolean): void {
  const w = s.walker;
  unprotectForUserWrite(s, write);
  let sp = s.shadowRoot;
  s.spFlood[sp] = 0;
  for (let level = 4; level >= 2; level--) {
    const idx = tableIndex(level, hi, lo);
    const childGfn = w.tables[level - 1]!;
    const cur = s.smem.readLo(sp, idx);
    let child = -1;
    if ((cur & P) !== 0) {
      const f = entryPfn(level, cur, s.smem.readHi(sp, idx));
      if (s.spGfn[f] === childGfn && s.spLevel[f] === level - 1) child = f;
      else zapSpte(s, sp, idx, level);
    }
    if (child < 0) {
      child = getSp(s, childGfn, level - 1);
      link(s, sp, idx, child);
    }
    s.spFlood[child] = 0;
    sp = child;
  }
  const idx = tableIndex(1, hi, lo);
  const e = w.path[1]!; // the walker records the low half's index in PhysMem.ent
  const glo = s.gmem.ent[e]!;
  const ghi = s.gmem.ent[e + 1]!;
  setSpte(s, sp, idx, glo, ghi, w.rights, write, false);
  if (s.era === 'modern') prefetch(s, sp, idx, w.tables[1]!);
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
