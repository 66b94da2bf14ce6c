import { PteError } from '@pte/core';
import { PG_ALLOCATED } from './page-flags.js';

/** Marker in `owner` for frames without an owning file. */
export const NO_OWNER = 0xffff;

/** In `order`: the head of a free buddy block (its order in the low bits). Never set on an allocated frame. */
const FREE = 0x80;

/**
 * Frame metadata in struct-of-arrays form, the model's `struct page`/`struct folio`: reference
 * and map counts, flags, folio order, owning file and page-cache index. 15 bytes per frame
 * (Linux spends 64 on struct page).
 *
 * Frames come from a binary buddy allocator (mm/page_alloc.c __rmqueue_smallest / __free_one_page):
 * free blocks of 2^order frames, naturally aligned, split on allocation and merged with their buddy
 * on free. Free lists are stacks with lazy deletion (an entry is live only if the head's `order`
 * byte still says FREE | order, as PageBuddy + buddy_order do), so the allocator needs no byte of
 * its own per frame.
 */
export class FrameTable {
  readonly frames: number;
  readonly refcount: Int32Array;
  /**
   * Mappings of the page (PTEs, or a PMD for each of its 512 pages). 16 bits: 65535 mappings of
   * one page is beyond any run of the model; the invariant checker would see a wrap.
   */
  readonly mapcount: Uint16Array;
  readonly flags: Uint16Array;
  /** log2 of the folio's frames, on every frame of an allocated folio; FREE | order on a free block's head. */
  readonly order: Uint8Array;
  /** Owning file id (page cache), or NO_OWNER. */
  readonly owner: Uint16Array;
  /** Page-cache index (file page offset) of the frame. */
  readonly index: Int32Array;
  private readonly freeLists: Int32Array[] = [];
  private readonly freeTop: Int32Array;
  readonly maxOrder: number;
  private freeFrames = 0;
  /**
   * Memory pressure (set when reclaim is on): `balance` runs before an allocation that would leave
   * fewer free frames than the low watermark (kswapd, run inline), `direct` after one that failed
   * (direct reclaim); it returns false when nothing more can be freed.
   */
  pressure: { readonly low: number; balance(): void; direct(order: number): boolean } | null = null;
  /** Frames handed out and not yet returned. */
  allocated = 0;
  peakAllocated = 0;

  constructor(frames: number, reserved = 1, maxOrder = 10) {
    this.frames = frames;
    this.maxOrder = maxOrder;
    this.refcount = new Int32Array(frames);
    this.mapcount = new Uint16Array(frames);
    this.flags = new Uint16Array(frames);
    this.order = new Uint8Array(frames);
    this.owner = new Uint16Array(frames).fill(NO_OWNER);
    this.index = new Int32Array(frames);
    this.freeTop = new Int32Array(maxOrder + 1);
    for (let o = 0; o <= maxOrder; o++) this.freeLists.push(new Int32Array(64));
    // Frames below `reserved` are the firmware/kernel image: never handed out.
    for (let p = 0; p < reserved; p++) this.flags[p] = PG_ALLOCATED;
    let pfn = reserved;
    while (pfn < frames) {
      let o = maxOrder;
      while (o > 0 && (pfn % (1 << o) !== 0 || pfn + (1 << o) > frames)) o--;
      this.pushFree(pfn, o);
      pfn += 1 << o;
    }
  }

  get freeCount(): number {
    return this.freeFrames;
  }

  /** alloc_pages(order): a naturally aligned block of 2^order frames, or -1 when none is free. */
  alloc(order: number): number {
    let pfn = this.allocLarge(order);
    const pr = this.pressure;
    while (pfn < 0 && pr !== null && pr.direct(order)) pfn = this.take(order);
    return pfn;
  }

  private take(order: number): number {
    let o = order;
    let pfn = -1;
    for (; o <= this.maxOrder; o++) {
      pfn = this.popFree(o);
      if (pfn >= 0) break;
    }
    if (pfn < 0) return -1;
    // Split: return the upper halves (expand()).
    while (o > order) {
      o--;
      this.pushFree(pfn + (1 << o), o);
    }
    const n = 1 << order;
    for (let i = 0; i < n; i++) {
      this.flags[pfn + i] = PG_ALLOCATED;
      this.order[pfn + i] = order;
      this.refcount[pfn + i] = 0;
      this.mapcount[pfn + i] = 0;
      this.owner[pfn + i] = NO_OWNER;
    }
    this.allocated += n;
    if (this.allocated > this.peakAllocated) this.peakAllocated = this.allocated;
    return pfn;
  }

  /**
   * A large folio for a THP or mTHP fault (GFP_TRANSHUGE / __GFP_NORETRY): kswapd is woken below
   * the watermark, but there is no direct reclaim and no out-of-memory error — the fault falls
   * back to smaller pages (THP_FAULT_FALLBACK). -1 when no block of the order is free.
   */
  allocLarge(order: number): number {
    const pr = this.pressure;
    if (pr !== null && this.freeFrames - (1 << order) < pr.low) pr.balance();
    return this.take(order);
  }

  /** alloc, or a model error naming the shortage (reclaim arrives with the memory-pressure issue). */
  allocOrFail(order: number): number {
    const pfn = this.alloc(order);
    if (pfn < 0) {
      throw new PteError(
        'model',
        `guest out of memory: no free block of order ${order} (${this.freeFrames} frames free)`,
        'give the guest more memory (--set mem=...)',
      );
    }
    return pfn;
  }

  /** __free_pages(pfn, order): return a block, merging with free buddies. */
  free(pfn: number, order: number): void {
    const n = 1 << order;
    for (let i = 0; i < n; i++) {
      if ((this.flags[pfn + i]! & PG_ALLOCATED) === 0)
        throw new Error(`double free of frame 0x${(pfn + i).toString(16)}`);
      this.flags[pfn + i] = 0;
      this.owner[pfn + i] = NO_OWNER;
      this.order[pfn + i] = 0;
    }
    this.allocated -= n;
    let o = order;
    let p = pfn;
    while (o < this.maxOrder) {
      const buddy = p ^ (1 << o);
      if (buddy >= this.frames || this.order[buddy] !== (FREE | o)) break;
      this.order[buddy] = 0; // lazily removed from its stack
      this.freeFrames -= 1 << o;
      p = Math.min(p, buddy);
      o++;
    }
    this.pushFree(p, o);
  }

  isAllocated(pfn: number): boolean {
    return (this.flags[pfn]! & PG_ALLOCATED) !== 0;
  }

  /** Host bytes of this table (for the bytes-per-mapped-page figure). */
  hostBytes(): number {
    let lists = 0;
    for (const l of this.freeLists) lists += l.byteLength;
    return (
      this.refcount.byteLength +
      this.mapcount.byteLength +
      this.flags.byteLength +
      this.order.byteLength +
      this.owner.byteLength +
      this.index.byteLength +
      lists
    );
  }

  private pushFree(pfn: number, order: number): void {
    let list = this.freeLists[order]!;
    let top = this.freeTop[order]!;
    if (top === list.length) {
      // Drop stale entries first; grow only if the live ones fill more than half the stack.
      let live = 0;
      for (let i = 0; i < top; i++) {
        const f = list[i]!;
        if (this.order[f] === (FREE | order)) list[live++] = f;
      }
      top = live;
      if (top * 2 > list.length) {
        const grown = new Int32Array(list.length * 2);
        grown.set(list.subarray(0, top));
        this.freeLists[order] = list = grown;
      }
    }
    list[top] = pfn;
    this.freeTop[order] = top + 1;
    this.order[pfn] = FREE | order;
    this.freeFrames += 1 << order;
  }

  private popFree(order: number): number {
    const list = this.freeLists[order]!;
    let top = this.freeTop[order]!;
    while (top > 0) {
      const pfn = list[--top]!;
      if (this.order[pfn] === (FREE | order)) {
        this.freeTop[order] = top;
        this.order[pfn] = 0;
        this.freeFrames -= 1 << order;
        return pfn;
      }
    }
    this.freeTop[order] = 0;
    return -1;
  }
}
