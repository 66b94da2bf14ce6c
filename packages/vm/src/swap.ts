import { frameHi, frameLo, P } from '@pte/arch-x86';
import { BlockDevice } from './block-device.js';

/**
 * Swap entries in PTEs (include/linux/swapops.h, x86 pgtable_64.h): a non-present entry that is
 * not none. The model keeps the slot in the frame field and marks the entry with bit 1 (which a
 * non-present entry leaves to software), so none (all zero), swap and present never mix.
 */
export const SWP_MARK = 1 << 1;

export function isSwapPte(lo: number): boolean {
  return (lo & P) === 0 && (lo & SWP_MARK) !== 0;
}

export function swpLo(slot: number): number {
  return (frameLo(slot) + SWP_MARK) >>> 0;
}

export function swpHi(slot: number): number {
  return frameHi(slot);
}

export function swpSlot(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & 0xfffff) * 1048576;
}

/**
 * The swap device (mm/swapfile.c): slots with a use count per slot (swap_map), each PTE that
 * refers to a slot holding one count (fork duplicates them, swap_duplicate). The slots sit on
 * their own block device with the file device's request and per-page costs. No swap cache is
 * modelled: a slot's data is read back by each mapping that faults on it.
 */
export class SwapDevice {
  private readonly count: Uint16Array;
  /** Touch clock when the slot's page was written (for the reclaim-precision horizon). */
  readonly writtenAt: Float64Array;
  private readonly freeSlots: number[] = [];
  private next = 0;
  readonly dev: BlockDevice;
  used = 0;
  /** Pages written out (swap_writepage) and read back (swap_read_folio). */
  writes = 0;
  reads = 0;

  constructor(
    readonly slots: number,
    requestCycles: number,
    pageCycles: number,
  ) {
    if (!Number.isInteger(slots) || slots < 1 || slots > 0x7fffffff)
      throw new RangeError(`swap slots must be a positive integer, got ${slots}`);
    this.count = new Uint16Array(slots);
    this.writtenAt = new Float64Array(slots);
    this.dev = new BlockDevice(requestCycles, pageCycles);
  }

  /** Free slots left. */
  free(): number {
    return this.slots - this.used;
  }

  /** get_swap_page(): a free slot with one use, or -1 when swap is full. */
  alloc(): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      if (this.next >= this.slots) return -1;
      slot = this.next++;
    }
    this.count[slot] = 1;
    this.used++;
    return slot;
  }

  /** swap_duplicate(): one more PTE refers to the slot. */
  dup(slot: number, n = 1): void {
    const c = this.count[slot]! + n;
    if (c > 0xffff) throw new Error(`swap slot ${slot}: more than 65535 references`);
    this.count[slot] = c;
  }

  /**
   * swap_writepage(): queue a write of `pages` pages at time `now`. Writeback is asynchronous, so
   * reclaim only waits when every queue slot is busy; returns those cycles.
   */
  write(now: number, pages: number): number {
    this.writes += pages;
    const start = this.dev.submit(now, pages) - this.dev.cycles(pages);
    return Math.max(0, start - now);
  }

  /** swap_read_folio() of one page, synchronously: returns the cycles until it is in. */
  read(now: number): number {
    this.reads++;
    return this.dev.submit(now, 1) - now;
  }

  /** swap_free(): one PTE dropped the slot; the last frees it. */
  put(slot: number): void {
    const c = this.count[slot]!;
    if (c === 0) throw new Error(`swap slot ${slot} freed twice`);
    this.count[slot] = c - 1;
    if (c === 1) {
      this.freeSlots.push(slot);
      this.used--;
    }
  }

  uses(slot: number): number {
    return this.count[slot]!;
  }
}
