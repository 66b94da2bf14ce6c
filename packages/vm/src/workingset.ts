import type { Inode } from './page-cache.js';
import { LRU_ACTIVE_FILE } from './lru.js';
import { PG_ACTIVE, PG_WORKINGSET } from './page-flags.js';
import type { Reclaim } from './vmscan.js';

/** Refault detection (mm/workingset.c): shadow entries left by eviction, and the refaults they reveal. */

/** workingset_eviction(): the shadow entries of a folio of `n` pages evicted from `inode` at `index`. */
export function workingsetEviction(r: Reclaim, inode: Inode, index: number, n: number): void {
  r.evictions++;
  for (let j = 0; j < n; j++) inode.shadow.set(index + j, r.evictions * 0x100000000 + r.k.touchClock);
}

/** A swap-in of a slot written `writtenAt` touches ago: a refault, premature within the horizon. */
export function swapRefault(r: Reclaim, writtenAt: number): void {
  r.refaults++;
  if (r.k.touchClock - writtenAt <= r.horizon) r.premature++;
}

/**
 * A major fault on file page `index`: if its shadow entry is there it is a refault
 * (workingset_refault); premature when the page was evicted fewer than `horizon` touches ago.
 * Returns whether the new folio should start active (refault distance within the active list).
 */
export function workingsetRefault(r: Reclaim, inode: Inode, index: number): boolean {
  const s = inode.shadow.get(index);
  if (s === undefined) return false;
  inode.shadow.delete(index);
  r.refaults++;
  r.fileRefaults++;
  const evictedAt = s % 0x100000000;
  const eviction = Math.floor(s / 0x100000000);
  if (r.k.touchClock - evictedAt <= r.horizon) r.premature++;
  return r.evictions - eviction <= r.lru.pages[LRU_ACTIVE_FILE]!;
}

/** workingset_activation for a refaulting folio: straight to the active list. */
export function workingsetActivation(r: Reclaim, pfn: number): void {
  const f = r.k.frames;
  const n = 1 << f.order[pfn]!;
  const head = pfn - (pfn % n);
  for (let j = 0; j < n; j++) f.flags[head + j] = f.flags[head + j]! | PG_ACTIVE | PG_WORKINGSET;
  r.lru.move(head, LRU_ACTIVE_FILE, n);
}
