import { A, D, entryPfn, P, RW, US, XD_HI } from '@pte/arch-x86';
import { exit, flushIfNeeded, zapSp, zapSpte } from './mmu.js';
import { FLUSH_ALL_VCPUS, FLUSH_THIS_VCPU, type ShadowMmu } from './shadow-mmu.js';
import { setSpte } from './spte.js';

/** detect_write_flooding(): the third emulated write to a non-leaf shadow page zaps it. */
export const WRITE_FLOOD_LIMIT = 3;

/** account_shadowed → kvm_write_track_add_gfn: write-protect guest frame `gfn` (once). */
export function track(s: ShadowMmu, gfn: number): void {
  if (s.tracked[gfn] === 0) {
    s.tracked[gfn] = 1;
    s.gmem.trackWrites(gfn);
  }
}

/** unaccount_shadowed → kvm_write_track_remove_gfn. */
export function untrack(s: ShadowMmu, gfn: number): void {
  if (s.tracked[gfn] === 1) {
    s.tracked[gfn] = 0;
    s.gmem.untrackWrites(gfn);
  }
}

/**
 * A user access that maps a frame writable while KVM still shadows that frame as a page table:
 * the frame is not one any more (a page-table page the guest freed and reuses as data, whose
 * shadow outlived it). 2008 mmu_set_spte unshadows it on a user fault (mmu_unshadow); modern KVM
 * zaps its shadow pages when it retries the write it could not emulate as a page-table write
 * (retry_instruction → kvm_mmu_unprotect_page). Without this the write would fault on a
 * read-only spte forever. A table of the walk itself is left alone.
 */
export function unprotectForUserWrite(s: ShadowMmu, write: boolean): void {
  const w = s.walker;
  const glo = s.gmem.ent[w.path[w.level]!]!; // the leaf gpte: a PTE, or a 2 MiB PDE
  const frame = w.pfn;
  if (s.tracked[frame] === 0) return;
  if (!(write || (s.era === '2008' && (w.rights & RW) !== 0 && (glo & D) !== 0))) return;
  for (let l = 4; l >= w.level; l--) if (w.tables[l] === frame) return;
  for (let l = 1; l <= 4; l++) {
    const sf = s.byGfn.get(frame * 8 + l);
    if (sf !== undefined) zapSp(s, sf);
  }
}

/**
 * kvm_mmu_track_write: a guest store to a write-protected page table. Modern KVM makes a shadowed
 * leaf page unsync on its first write (one exit; the page stops being write-protected until the
 * next sync). Otherwise the write is emulated: the written spte is zapped (or, in 2008,
 * update_pte installs it, old, if the new gpte is P and A). Write flooding: modern KVM zaps a
 * non-leaf page on its third emulated write without a fault through it in between
 * (detect_write_flooding); 2008 KVM zaps every shadow page of the gfn on the third write in a row
 * to it while the spte it set last was not used and no fault exited in between (the "fork
 * detector" of kvm_mmu_pte_write, leaves included), after which the guest's stores are plain.
 */
export function trackWrite(s: ShadowMmu, gfn: number, index: number, newLo: number, newHi: number): void {
  exit(s);
  const leaf = s.byGfn.get(gfn * 8 + 1);
  let upper = false;
  for (let l = 2; l <= 4; l++) if (s.byGfn.has(gfn * 8 + l)) upper = true;
  if (s.era === 'modern' && leaf !== undefined && !upper) {
    s.spUnsync[leaf] = 1;
    s.unsync.add(leaf);
    untrack(s, gfn);
    s.unsyncs++;
    s.ledger.charge(s.catExit, s.c['kvm.unsync']);
    return;
  }
  s.emulated++;
  s.ledger.charge(s.catEmulate, s.c['kvm.emulate']);
  let flooded = false;
  if (s.era === '2008') {
    if (gfn === s.lastWriteGfn && !(s.lastSpte >= 0 && (s.smem.ent[2 * s.lastSpte]! & A) !== 0)) {
      flooded = ++s.lastWriteCount >= WRITE_FLOOD_LIMIT;
    } else {
      s.lastWriteGfn = gfn;
      s.lastWriteCount = 1;
      s.lastSpte = -1;
    }
  }
  for (let l = 1; l <= 4; l++) {
    const sf = s.byGfn.get(gfn * 8 + l);
    if (sf === undefined) continue;
    if (flooded || (l >= 2 && s.era === 'modern' && ++s.spFlood[sf]! >= WRITE_FLOOD_LIMIT)) {
      zapSp(s, sf);
      continue;
    }
    if (l === 1 && s.era === '2008' && (newLo & (P | A)) === (P | A)) {
      // FNAME(update_pte) → mmu_set_spte(..., speculative): the spte is created without A. Then
      // mmu_pte_write_flush_tlb(): the other vCPUs only when need_remote_flush(old, new) — the
      // old spte was present and the new one maps another frame or takes rights away; else
      // this vCPU's TLB alone (kvm_mmu_flush_tlb).
      const oldLo = s.smem.readLo(sf, index);
      const oldHi = s.smem.readHi(sf, index);
      setSpte(s, sf, index, newLo, newHi, newLo & (RW | US), false, true);
      const wide = needRemoteFlush(oldLo, oldHi, s.smem.readLo(sf, index), s.smem.readHi(sf, index));
      s.pendingFlush = Math.max(s.pendingFlush, wide ? FLUSH_ALL_VCPUS : FLUSH_THIS_VCPU);
    } else {
      zapSpte(s, sf, index, l);
    }
  }
  flushIfNeeded(s);
}

/**
 * need_remote_flush(old, new) of 2008's kvm_mmu_pte_write: a non-present old spte was in no TLB;
 * a new one that is not present, maps another frame or drops a right (W, U; NX counted as a right
 * taken when set) must be flushed everywhere.
 */
function needRemoteFlush(oldLo: number, oldHi: number, newLo: number, newHi: number): boolean {
  if ((oldLo & P) === 0) return false;
  if ((newLo & P) === 0) return true;
  if (entryPfn(1, oldLo, oldHi) !== entryPfn(1, newLo, newHi)) return true;
  if ((oldLo & ~newLo & (RW | US)) !== 0) return true;
  return (newHi & XD_HI) !== 0 && (oldHi & XD_HI) === 0;
}
