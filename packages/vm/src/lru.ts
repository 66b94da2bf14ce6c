/** LRU list ids (enum lru_list): inactive/active × anon/file. */
export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_INACTIVE_FILE = 2;
export const LRU_ACTIVE_FILE = 3;

/**
 * The LRU lists of one node (struct lruvec), as doubly linked lists of folio head frames in two
 * Int32Arrays (8 bytes per frame, allocated only when reclaim is on). New folios go to the head;
 * reclaim takes from the tail.
 */
export class Lru {
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** List of each frame (-1: not on an LRU). */
  private readonly listOf: Int8Array;
  private readonly head = new Int32Array(4).fill(-1);
  private readonly tailOf = new Int32Array(4).fill(-1);
  /** Folios per list, and their pages. */
  readonly count = new Float64Array(4);
  readonly pages = new Float64Array(4);

  constructor(frames: number) {
    this.next = new Int32Array(frames).fill(-1);
    this.prev = new Int32Array(frames).fill(-1);
    this.listOf = new Int8Array(frames).fill(-1);
  }

  listOfFrame(pfn: number): number {
    return this.listOf[pfn]!;
  }

  /** Add folio `pfn` (2^order pages) at the head of `list` (folio_add_lru / lruvec_add_folio). */
  add(pfn: number, list: number, nrPages: number): void {
    if (this.listOf[pfn] !== -1) throw new Error(`frame 0x${pfn.toString(16)} is already on an LRU`);
    const h = this.head[list]!;
    this.next[pfn] = h;
    this.prev[pfn] = -1;
    if (h >= 0) this.prev[h] = pfn;
    else this.tailOf[list] = pfn;
    this.head[list] = pfn;
    this.listOf[pfn] = list;
    this.count[list]!++;
    this.pages[list] = this.pages[list]! + nrPages;
  }

  remove(pfn: number, nrPages: number): void {
    const list = this.listOf[pfn]!;
    if (list < 0) return;
    const n = this.next[pfn]!;
    const p = this.prev[pfn]!;
    if (p >= 0) this.next[p] = n;
    else this.head[list] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tailOf[list] = p;
    this.listOf[pfn] = -1;
    this.next[pfn] = -1;
    this.prev[pfn] = -1;
    this.count[list]!--;
    this.pages[list] = this.pages[list]! - nrPages;
  }

  /** Oldest folio of `list`, or -1. */
  tail(list: number): number {
    return this.tailOf[list]!;
  }

  /** Move a folio to the head of `list` (rotate, activate, deactivate). */
  move(pfn: number, list: number, nrPages: number): void {
    this.remove(pfn, nrPages);
    this.add(pfn, list, nrPages);
  }
}
