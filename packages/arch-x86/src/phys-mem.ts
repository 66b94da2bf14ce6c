import { configError } from '@pte/core';
import { ENTRIES_PER_TABLE } from './pte-bits.js';

/**
 * Observer of writes to write-protected frames: the page-track hooks a hypervisor uses
 * (KVM's kvm_page_track_write notifier; Xen's ptwr emulation). Called after the store.
 */
export interface PageTrackListener {
  onTrackedWrite(pfn: number, index: number, oldLo: number, oldHi: number, newLo: number, newHi: number): void;
}

/**
 * Guest-physical memory of 4 KiB frames. Data frames have no contents (nothing in the model reads
 * data); frames used as paging structures hold 512 entries each in a pooled Uint32Array, an entry's
 * lo and hi halves side by side (`ent[2e]`, `ent[2e + 1]`) so a walk touches one cache line per
 * level. `slotOf[pfn]` maps a frame to its pool slot (-1: not a paging structure).
 * Cost: 4 bytes per frame + 4 KiB per table.
 */
export class PhysMem {
  readonly frames: number;
  /** Pool slot of each frame's table, or -1. */
  readonly slotOf: Int32Array;
  /** Entries of all tables: entry i of slot s is e = s * 512 + i, halves at ent[2e] and ent[2e + 1]. */
  ent: Uint32Array;
  /**
   * One byte per entry that the simulator uses to observe, never read by the modelled hardware's
   * rules: the guest kernel marks PTEs it prefaulted, the walker clears the mark on the first
   * successful walk through the entry (how `pte.prefaulted_unused` is measured).
   */
  mark: Uint8Array;
  /** Entries currently marked (the walker skips the mark check when there are none). */
  marked = 0;
  /** Called when a mark is taken (a use seen), e.g. to carry it to the entry a shadow mirrors. */
  markTaken: ((e: number) => void) | null = null;
  /** Frame whose table occupies each pool slot (for mapping an entry number back to its table). */
  frameOfSlot: Int32Array;
  /** Write-protection count per frame (page-track), allocated when a hypervisor first tracks a frame. */
  private trackCount: Uint16Array | null = null;
  private listener: PageTrackListener | null = null;
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private tables = 0;
  /** Writes that hit a tracked frame (each one a trap on real hardware). */
  trackedWrites = 0;

  constructor(frames: number) {
    if (!Number.isSafeInteger(frames) || frames <= 0 || frames > 2 ** 32) {
      throw configError(`physical memory of ${frames} frames is not in 1..2^32`);
    }
    this.frames = frames;
    this.slotOf = new Int32Array(frames).fill(-1);
    this.ent = new Uint32Array(64 * ENTRIES_PER_TABLE * 2);
    this.mark = new Uint8Array(64 * ENTRIES_PER_TABLE);
    this.frameOfSlot = new Int32Array(64).fill(-1);
  }

  /** Number of frames currently used as paging structures. */
  get tableCount(): number {
    return this.tables;
  }

  isTable(pfn: number): boolean {
    return this.slotOf[pfn]! >= 0;
  }

  /** Make frame `pfn` a zeroed paging structure (its 512 entries all not-present). */
  makeTable(pfn: number): void {
    this.checkPfn(pfn);
    if (this.slotOf[pfn]! >= 0) throw new Error(`frame 0x${pfn.toString(16)} is already a page table`);
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if ((slot + 1) * ENTRIES_PER_TABLE * 2 > this.ent.length) this.grow();
    }
    const base = slot * ENTRIES_PER_TABLE * 2;
    this.ent.fill(0, base, base + ENTRIES_PER_TABLE * 2);
    for (let i = slot * ENTRIES_PER_TABLE; i < (slot + 1) * ENTRIES_PER_TABLE; i++) {
      if (this.mark[i] !== 0) {
        this.mark[i] = 0;
        this.marked--;
      }
    }
    this.slotOf[pfn] = slot;
    this.frameOfSlot[slot] = pfn;
    this.tables++;
  }

  /** Return a table frame to plain data use (pte_free / free_pgtables). */
  releaseTable(pfn: number): void {
    this.checkPfn(pfn);
    const slot = this.slotOf[pfn]!;
    if (slot < 0) throw new Error(`frame 0x${pfn.toString(16)} is not a page table`);
    this.slotOf[pfn] = -1;
    this.freeSlots.push(slot);
    this.tables--;
  }

  /**
   * Entry number e of entry `index` of table `pfn` (halves at ent[2e], ent[2e+1]); throws if the
   * frame is not a table or the index is not 0..511 (it would reach into the next pooled table).
   */
  entryIndex(pfn: number, index: number): number {
    const slot = this.slotOf[pfn]!;
    // The errors are built out of line, so that this hot check stays small enough to inline.
    if (slot < 0 || slot === undefined || (index & (ENTRIES_PER_TABLE - 1)) !== index)
      entryIndexError(slot, pfn, index);
    return slot * ENTRIES_PER_TABLE + index;
  }

  readLo(pfn: number, index: number): number {
    return this.ent[2 * this.entryIndex(pfn, index)]!;
  }

  readHi(pfn: number, index: number): number {
    return this.ent[2 * this.entryIndex(pfn, index) + 1]!;
  }

  /**
   * A guest store to a paging-structure entry. If the frame is write-protected by page-track the
   * listener sees the write after it lands (KVM emulates the instruction, then notifies).
   * Returns true when the write was tracked; it is counted in trackedWrites whether or not a
   * listener is set (the store traps either way).
   */
  write(pfn: number, index: number, lo: number, hi: number): boolean {
    const e = 2 * this.entryIndex(pfn, index);
    const ent = this.ent;
    const oldLo = ent[e]!;
    const oldHi = ent[e + 1]!;
    ent[e] = lo;
    ent[e + 1] = hi;
    const tc = this.trackCount;
    if (tc !== null && tc[pfn] !== 0) {
      this.trackedWrites++;
      if (this.listener !== null) this.listener.onTrackedWrite(pfn, index, oldLo, oldHi, lo >>> 0, hi >>> 0);
      return true;
    }
    return false;
  }

  /** Write-protect a frame for page-track (kvm_write_track_add_gfn); counts nest. */
  trackWrites(pfn: number): void {
    this.checkPfn(pfn);
    const tc = (this.trackCount ??= new Uint16Array(this.frames));
    if (tc[pfn] === 0xffff) throw new Error(`page-track count overflow on frame 0x${pfn.toString(16)}`);
    tc[pfn]!++;
  }

  untrackWrites(pfn: number): void {
    this.checkPfn(pfn);
    const tc = this.trackCount;
    if (tc === null || tc[pfn] === 0) throw new Error(`frame 0x${pfn.toString(16)} is not write-tracked`);
    tc[pfn]!--;
  }

  isTracked(pfn: number): boolean {
    return this.trackCount !== null && this.trackCount[pfn] !== 0;
  }

  setTrackListener(listener: PageTrackListener | null): void {
    this.listener = listener;
  }

  /** Mark entry number `e` (see `mark`). */
  setMark(e: number): void {
    if (this.mark[e] === 0) {
      this.mark[e] = 1;
      this.marked++;
    }
  }

  /** Clear the mark of entry `e` as a use; returns whether it was set. */
  takeMark(e: number): boolean {
    if (this.mark[e] === 0) return false;
    this.mark[e] = 0;
    this.marked--;
    if (this.markTaken !== null) this.markTaken(e);
    return true;
  }

  /** Clear the mark of entry `e` without counting a use (the entry is being overwritten). */
  dropMark(e: number): void {
    if (this.mark[e] === 0) return;
    this.mark[e] = 0;
    this.marked--;
  }

  /** Host bytes held by this memory (for the bytes-per-mapped-page figure). */
  hostBytes(): number {
    return this.slotOf.byteLength + (this.trackCount?.byteLength ?? 0) + this.ent.byteLength + this.mark.byteLength;
  }

  private checkPfn(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.frames) {
      throw new Error(`frame 0x${pfn.toString(16)} is outside physical memory (${this.frames} frames)`);
    }
  }

  /** Grow the pool by a quarter (at least 64 tables): amortised O(1), at most ~25 % unused. */
  private grow(): void {
    const slots = this.mark.length / ENTRIES_PER_TABLE;
    const next = (slots + Math.max(64, slots >> 2)) * ENTRIES_PER_TABLE;
    const ent = new Uint32Array(next * 2);
    ent.set(this.ent);
    this.ent = ent;
    const mark = new Uint8Array(next);
    mark.set(this.mark);
    this.mark = mark;
    const fos = new Int32Array(next / ENTRIES_PER_TABLE).fill(-1);
    fos.set(this.frameOfSlot);
    this.frameOfSlot = fos;
  }
}

/** Where page-table frames come from: the guest kernel's allocator, or a simple one in tests. */
export interface FrameSource {
  allocFrame(): number;
  freeFrame(pfn: number): void;
}

/** A bump allocator with a free list, for tests and benchmarks of this layer alone. */
export class SimpleFrameSource implements FrameSource {
  private next: number;
  private readonly free: number[] = [];
  constructor(
    private readonly limit: number,
    first = 1,
  ) {
    this.next = first;
  }
  allocFrame(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.next >= this.limit) throw new Error(`out of frames (${this.limit})`);
    return this.next++;
  }
  freeFrame(pfn: number): void {
    this.free.push(pfn);
  }
}

/** PhysMem.entryIndex()'s refusal: frame `pfn` (pool slot `slot`) is not a table, or `index` is not 0..511. */
function entryIndexError(slot: number | undefined, pfn: number, index: number): never {
  if (slot === undefined || slot < 0) throw new Error(`frame 0x${pfn.toString(16)} is not a page table`);
  throw new Error(`entry ${index} of frame 0x${pfn.toString(16)} is not 0..511`);
}
