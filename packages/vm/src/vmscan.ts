import { PteError, type Counters } from '@pte/core';
import { folioPut } from './folio.js';
import type { Kernel } from './kernel.js';
import { LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, Lru } from './lru.js';
import type { Inode } from './page-cache.js';
import { PG_ACTIVE, PG_DIRTY, PG_LOCKED, PG_REFERENCED } from './page-flags.js';
import { folioReferenced, TlbUnmapBatch, tryToUnmap, tryToUnmapFlush } from './rmap.js';
import { swapRefault, workingsetActivation, workingsetEviction, workingsetRefault } from './workingset.js';

/** SWAP_CLUSTER_MAX: folios reclaimed per round. */
export const SWAP_CLUSTER_MAX = 32;

/** vm_swappiness default (mm/vmscan.c): the anon side's weight out of 200. */
export const SWAPPINESS = 60;

/**
 * Page reclaim for the page cache, after mm/vmscan.c (the rmap walks are in rmap.ts, refault
 * detection in workingset.ts) with the classic active/inactive LRU
 * (linux-mm.md §5.1). Watermarks min < low < high (mm/page_alloc.c __setup_per_zone_wmarks, with
 * min ≈ 1/256 of memory); an allocation that would go below low runs kswapd (inline) until free
 * memory is back at high; one that fails runs direct reclaim.
 *
 * shrink_inactive_list → folio_check_references: the accessed bits of every PTE mapping the folio
 * are tested and cleared through pvops.ptepTestAndClearYoung (so each platform pays its price; x86
 * does not flush the TLB for it), PG_referenced is test-and-cleared; a folio referenced by PTEs is
 * activated if it was referenced before, by more than one PTE, or is executable, else kept (and
 * marked referenced); an unreferenced folio is unmapped (try_to_unmap), written back if dirty, and
 * evicted with a shadow entry for refault detection.
 *
 * Anonymous memory is reclaimed only with a swap device (get_scan_count: no swap, SCAN_FILE). New
 * anonymous folios start on the inactive anon list (folio_add_lru_vma, since 5.9) and take the
 * same reference rules (minus the VM_EXEC rule, which is for file folios). `shrink` splits the
 * work between file and anon as get_scan_count does (see there). An unreferenced
 * anon folio gets one swap slot per mapped page (add_to_swap; swap full: activate), is written out
 * (pageout → swap_writepage) and unmapped: try_to_unmap_one() clears each PTE
 * (ptep_clear_flush) and sets a swap entry in its place (set_pte_at), one slot count per PTE.
 * The anon rmap (anon_vma) is modelled as each page's virtual page: address spaces forked from
 * one another map it at the same address.
 */
export class Reclaim {
  readonly lru: Lru;
  readonly min: number;
  readonly low: number;
  readonly high: number;
  private busy = false;
  /** File refaults, and those seen by the last shrink (cache_trim_mode needs none since). */
  fileRefaults = 0;
  private fileRefaultsSeen = 0;
  evictions = 0;
  /** Anon rmap: the virtual page each anonymous page is mapped at (anon_vma + folio index). */
  readonly anonVpn: Float64Array;
  /** Pages read from the device and not used yet (1 per frame): the "read but never used" metric. */
  readonly readUnused: Uint8Array;
  /** Swap slots of the folio being swapped out, per page (-1: page not mapped). */
  readonly slots = new Int32Array(512);
  /** The unmapped PTEs whose TLB flush is deferred to the end of the batch (tlb_ubc). */
  readonly ubc = new TlbUnmapBatch();
  // Statistics (reclaim.*).
  scanned = 0;
  reclaimed = 0;
  activated = 0;
  kept = 0;
  deactivated = 0;
  writebacks = 0;
  kswapdRuns = 0;
  directRuns = 0;
  refaults = 0;
  premature = 0;
  /** File pages evicted that were read from the device and never used (faulted on or touched through a PTE). */
  evictedUnused = 0;
  swapFull = 0;

  constructor(
    readonly k: Kernel,
    /** Touches after an eviction within which a refault counts as premature (the precision horizon). */
    readonly horizon = 4096,
  ) {
    const frames = k.frames.frames;
    this.lru = new Lru(frames);
    this.anonVpn = new Float64Array(frames);
    this.readUnused = new Uint8Array(frames);
    this.min = Math.max(32, Math.floor(frames / 256));
    this.low = this.min + (this.min >> 2);
    this.high = this.min + (this.min >> 1);
    k.pageCache.lru = this.lru;
    k.frames.pressure = {
      low: this.low,
      balance: () => this.kswapd(),
      direct: () => this.direct(),
    };
  }

  /** kswapd's balance_pgdat, run inline: reclaim until free memory reaches the high watermark. */
  private kswapd(): void {
    if (this.busy) return;
    this.kswapdRuns++;
    while (this.k.frames.freeCount < this.high) if (this.shrink(SWAP_CLUSTER_MAX) === 0) break;
  }

  /** Direct reclaim after a failed allocation; false when nothing could be freed. */
  private direct(): boolean {
    if (this.busy) return false;
    this.directRuns++;
    if (this.shrink(SWAP_CLUSTER_MAX) > 0) return true;
    throw new PteError(
      'model',
      `guest out of memory: reclaim freed nothing (${this.k.frames.freeCount} frames free, ${this.k.swap === null ? 'anonymous memory is not reclaimable without swap' : `${this.k.swap.free()} swap slots free`})`,
      'give the guest more memory (--set mem=...) or swap (--set swap=...)',
    );
  }

  /** Pages [pfn, pfn + n) were read into the page cache by readahead: unused until a fault needs them. */
  markRead(pfn: number, n: number): void {
    this.readUnused.fill(1, pfn, pfn + n);
  }

  /**
   * Page `pfn` was used: a fault returned it, or a PTE mapping it was removed after the process
   * walked through it (no prefault mark left).
   */
  markUsed(pfn: number, n = 1): void {
    if (n === 1) this.readUnused[pfn] = 0;
    else this.readUnused.fill(0, pfn, pfn + n);
  }

  /** A new anonymous folio (do_anonymous_page, wp_page_copy, do_swap_page): note its rmap, put it on the inactive anon list. */
  addAnon(pfn: number, vpn: number, n: number): void {
    for (let i = 0; i < n; i++) this.anonVpn[pfn + i] = vpn + i;
    const head = pfn - (pfn % (1 << this.k.frames.order[pfn]!));
    if (this.lru.listOfFrame(head) < 0) this.lru.add(head, LRU_INACTIVE_ANON, 1 << this.k.frames.order[head]!);
  }

  /**
   * shrink_lruvec with get_scan_count's split of `nr` between the lists: without free swap, file
   * only (SCAN_FILE); in cache_trim_mode (the inactive file list is not low and no file page
   * refaulted since the last round) file first; otherwise SCAN_FRACT with swappiness 60 and equal
   * anon/file costs, so each list's share is 60:140 weighted by its size. Whatever one side could
   * not free is asked of the other (the next priority round, folded into this one).
   * Returns pages freed.
   */
  shrink(nr: number): number {
    this.busy = true;
    try {
      const lru = this.lru;
      const swap = this.k.swap;
      const canSwap = swap !== null && swap.free() > 0;
      const file = lru.pages[LRU_INACTIVE_FILE]! + lru.pages[LRU_ACTIVE_FILE]!;
      const anon = lru.pages[LRU_INACTIVE_ANON]! + lru.pages[LRU_ACTIVE_ANON]!;
      const cacheTrim =
        lru.pages[LRU_INACTIVE_FILE]! >= lru.pages[LRU_ACTIVE_FILE]! && this.fileRefaults === this.fileRefaultsSeen;
      this.fileRefaultsSeen = this.fileRefaults;
      let anonNr = 0;
      if (canSwap && !cacheTrim && anon > 0)
        anonNr = Math.ceil((nr * SWAPPINESS * anon) / (SWAPPINESS * anon + (200 - SWAPPINESS) * file));
      let freed = this.shrinkLists(nr - anonNr, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE);
      if (canSwap) freed += this.shrinkLists(nr - freed, LRU_INACTIVE_ANON, LRU_ACTIVE_ANON);
      if (freed < nr && anonNr > 0) freed += this.shrinkLists(nr - freed, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE);
      this.reclaimed += freed;
      return freed;
    } finally {
      this.busy = false;
    }
  }

  /** One inactive/active pair: deactivate when the inactive list is low, then reclaim up to `nr` pages. */
  private shrinkLists(nr: number, inactive: number, active: number): number {
    const lru = this.lru;
    if (lru.pages[inactive]! < lru.pages[active]!) this.shrinkActive(nr, inactive, active);
    let freed = 0;
    let budget = 2 * lru.count[inactive]! + nr;
    while (freed < nr && budget-- > 0) {
      const head = lru.tail(inactive);
      if (head < 0) {
        if (lru.count[active]! === 0) break;
        this.shrinkActive(nr, inactive, active);
        continue;
      }
      freed += this.scanFolio(head, inactive, active);
    }
    // shrink_folio_list(): the batch's flush before its folios are freed for reuse.
    tryToUnmapFlush(this.k, this.ubc);
    return freed;
  }

  /** shrink_active_list: move folios from the active tail to the inactive list (executable file folios that were used stay). */
  private shrinkActive(nr: number, inactive: number, active: number): void {
    const lru = this.lru;
    const f = this.k.frames;
    for (let i = 0; i < nr; i++) {
      const head = lru.tail(active);
      if (head < 0) return;
      const n = 1 << f.order[head]!;
      const { refs, exec } = folioReferenced(this, head);
      if (refs > 0 && exec && active === LRU_ACTIVE_FILE) {
        lru.move(head, active, n);
        continue;
      }
      for (let j = 0; j < n; j++) f.flags[head + j] = f.flags[head + j]! & ~(PG_ACTIVE | PG_REFERENCED);
      lru.move(head, inactive, n);
      this.deactivated++;
    }
  }

  /** One folio from the inactive tail: folio_check_references, then keep, activate or reclaim. Returns pages freed. */
  private scanFolio(head: number, inactive: number, active: number): number {
    const k = this.k;
    const f = k.frames;
    const lru = this.lru;
    const n = 1 << f.order[head]!;
    const anon = inactive === LRU_INACTIVE_ANON;
    this.scanned++;
    k.charge(k.catReclaim, k.costs.reclaimScan);
    let mapped = 0;
    for (let j = 0; j < n; j++) mapped += f.mapcount[head + j]!;
    // Someone holds the folio (a fault in progress) or it is under IO: not now. The page cache
    // holds one reference per page of a file folio.
    if ((f.flags[head]! & PG_LOCKED) !== 0 || f.refcount[head]! > (anon ? 0 : n) + mapped) {
      lru.move(head, inactive, n);
      return 0;
    }
    const { refs, exec } = folioReferenced(this, head);
    const referencedFolio = (f.flags[head]! & PG_REFERENCED) !== 0;
    if (refs > 0) {
      for (let j = 0; j < n; j++) f.flags[head + j] = f.flags[head + j]! | PG_REFERENCED;
      if (referencedFolio || refs > 1 || (exec && !anon)) {
        this.activate(head, active);
      } else {
        lru.move(head, inactive, n);
        this.kept++;
      }
      return 0;
    }
    for (let j = 0; j < n; j++) f.flags[head + j] = f.flags[head + j]! & ~PG_REFERENCED;
    if (anon) return this.swapOut(head);
    tryToUnmap(this, head);
    this.evict(head);
    return n;
  }

  private activate(head: number, active: number): void {
    const f = this.k.frames;
    const n = 1 << f.order[head]!;
    for (let j = 0; j < n; j++) f.flags[head + j] = f.flags[head + j]! | PG_ACTIVE;
    this.lru.move(head, active, n);
    this.activated++;
  }

  /**
   * Reclaim an unreferenced anonymous folio: add_to_swap (a slot per mapped page; none free:
   * activate_locked), pageout (queued on the swap device; waiting only for a free queue slot), then try_to_unmap
   * replaces every PTE with its swap entry and the last reference frees the folio. Returns pages freed.
   */
  private swapOut(head: number): number {
    const k = this.k;
    const swap = k.swap!;
    const f = k.frames;
    const n = 1 << f.order[head]!;
    let need = 0;
    for (let j = 0; j < n; j++) if (f.mapcount[head + j]! > 0) need++;
    if (need > swap.free()) {
      this.swapFull++;
      this.activate(head, LRU_ACTIVE_ANON);
      return 0;
    }
    for (let j = 0; j < n; j++) {
      const m = f.mapcount[head + j]!;
      if (m === 0) {
        this.slots[j] = -1;
        continue;
      }
      const slot = swap.alloc();
      if (m > 1) swap.dup(slot, m - 1);
      swap.writtenAt[slot] = k.touchClock;
      this.slots[j] = slot;
    }
    const wait = swap.write(k.now(), need);
    if (wait > 0) k.charge(k.catIo, wait);
    k.stats.ioWrites++;
    this.writebacks++;
    tryToUnmap(this, head);
    return n;
  }

  /** Write back if dirty, drop from the page cache with shadow entries, free. */
  private evict(head: number): void {
    const k = this.k;
    const f = k.frames;
    const n = 1 << f.order[head]!;
    const inode = k.pageCache.files[f.owner[head]!]!;
    let dirty = false;
    for (let j = 0; j < n; j++) if ((f.flags[head + j]! & PG_DIRTY) !== 0) dirty = true;
    if (dirty && !inode.shmem) {
      // try_to_unmap_flush_dirty(): no CPU may still write the folio through a stale TLB entry
      // while it is written back.
      tryToUnmapFlush(k, this.ubc);
      // pageout(): the data goes to the file before the frame is reused.
      k.charge(k.catIo, k.costs.ioRequest + k.costs.ioPage * n);
      this.writebacks++;
      k.stats.ioWrites++;
    }
    for (let j = 0; j < n; j++) {
      if (this.readUnused[head + j] === 1) this.evictedUnused++;
      this.readUnused[head + j] = 0;
    }
    workingsetEviction(this, inode, f.index[head]!, n);
    k.pageCache.remove(inode, head);
    folioPut(k, head, n);
  }

  /** A swap-in of a slot written `writtenAt` touches ago (workingset.ts). */
  swapRefault(writtenAt: number): void {
    swapRefault(this, writtenAt);
  }

  /** workingset_refault() for file page `index` (workingset.ts). */
  refault(inode: Inode, index: number): boolean {
    return workingsetRefault(this, inode, index);
  }

  /** workingset_activation() for a refaulting folio (workingset.ts). */
  activateRefault(pfn: number): void {
    workingsetActivation(this, pfn);
  }

  addCountersTo(c: Counters): void {
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('reclaim.scanned', this.scanned);
    add('reclaim.reclaimed', this.reclaimed);
    add('reclaim.activated', this.activated);
    add('reclaim.kept', this.kept);
    add('reclaim.deactivated', this.deactivated);
    add('reclaim.writebacks', this.writebacks);
    add('reclaim.kswapd_runs', this.kswapdRuns);
    add('reclaim.direct_runs', this.directRuns);
    add('reclaim.refaults', this.refaults);
    add('reclaim.premature_evictions', this.premature);
    add('reclaim.swap_full', this.swapFull);
    add('reclaim.evicted_unused', this.evictedUnused);
    const swap = this.k.swap;
    if (swap !== null) {
      add('swap.writes', swap.writes);
      add('swap.reads', swap.reads);
    }
  }
}
