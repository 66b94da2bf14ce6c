import { A, D, entryPfn, frameHi, frameLo, P, RW, US, XD_HI } from '@pte/arch-x86';
import type { ShadowMmu } from './shadow-mmu.js';

/**
 * mmu_set_spte / make_spte (arch/x86/kvm/mmu/spte.c) for gpte (glo, ghi) with effective `rights`:
 * present, writable only if the gpte is dirty (or this is the write that dirtied it) and its frame
 * is not a shadowed page table (mmu_need_write_protect); A unless speculative.
 */
export function setSpte(
  s: ShadowMmu,
  sp: number,
  idx: number,
  glo: number,
  ghi: number,
  rights: number,
  write: boolean,
  speculative: boolean,
): void {
  const frame = entryPfn(1, glo, ghi);
  const writable = (rights & RW) !== 0 && ((glo & D) !== 0 || write) && s.tracked[frame] === 0;
  const lo =
    frameLo(frame) +
    (P | (rights & US) | (writable ? RW : 0) | (speculative ? 0 : A) | (writable && (glo & D) !== 0 ? D : 0));
  const hi = frameHi(frame) | (ghi & XD_HI);
  s.smem.write(sp, idx, lo >>> 0, hi >>> 0);
  const se = s.smem.entryIndex(sp, idx);
  s.lastSpte = se;
  s.smem.dropMark(se);
  if (s.spDirect[sp] === 0 && s.gmem.mark[s.gmem.entryIndex(s.spGfn[sp]!, idx)] !== 0) s.smem.setMark(se);
}
