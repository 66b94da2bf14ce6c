import { configError } from '@pte/core';

/** One set-associative structure: total entries and ways (entries / ways must be a power of two). */
export interface TlbGeometry {
  readonly entries: number;
  readonly ways: number;
}

/**
 * TLB configuration: first-level TLBs per page size and a shared second-level TLB (STLB) for 4K
 * and 2M pages (and 1G when `stlbHolds1G`). Defaults follow a Skylake-class core: 64-entry 4-way
 * L1 for 4K, 32-entry 4-way for 2M, 4 entries for 1G, 1536-entry 12-way STLB.
 */
export interface TlbConfig {
  readonly l1_4k: TlbGeometry;
  readonly l1_2m: TlbGeometry;
  readonly l1_1g: TlbGeometry;
  readonly stlb: TlbGeometry;
  readonly stlbHolds1G: boolean;
}

export const DEFAULT_TLB: TlbConfig = {
  l1_4k: { entries: 64, ways: 4 },
  l1_2m: { entries: 32, ways: 4 },
  l1_1g: { entries: 4, ways: 4 },
  stlb: { entries: 1536, ways: 12 },
  stlbHolds1G: false,
};

// Entry metadata bits.
const M_VALID = 1;
/** Same positions as the entry: RW = bit 1, US = bit 2. */
export const TLB_RW = 1 << 1;
export const TLB_US = 1 << 2;
export const TLB_XD = 1 << 3;
export const TLB_DIRTY = 1 << 4;
export const TLB_GLOBAL = 1 << 5;
const M_LEVEL_SHIFT = 6; // 2 bits: page level 1..3
const M_PKEY_SHIFT = 8; // 4 bits
const M_PCID_SHIFT = 12; // 12 bits

/**
 * One set-associative TLB array in struct-of-arrays form. Tags are the virtual page number at the
 * page size of the entry, split into halves, with the level folded into the high half so a shared
 * array can hold several sizes.
 *
 * Replacement is bit-PLRU (one MRU bit per way, per set): a hit or fill sets the way's bit, and
 * when every bit is set the others are cleared; the victim is the lowest invalid way, else the
 * lowest way whose bit is clear. Intel does not document its TLB policies; this PLRU family is
 * the usual model, deterministic and cheap (no per-way comparisons on a fill).
 */
export class TlbArray {
  readonly sets: number;
  readonly ways: number;
  private readonly setMask: number;
  private readonly full: number;
  /** Tags as signed 32-bit values (so they stay small integers in V8 and never box on a call). */
  readonly tagLo: Int32Array;
  readonly tagHi: Int32Array;
  readonly meta: Uint32Array;
  readonly pfn: Uint32Array;
  /** Per set: bit w set when way w is valid. */
  private readonly validMask: Uint16Array;
  /** Per set: bit w set when way w was used recently (PLRU). */
  private readonly mruMask: Uint16Array;
  /** Valid entries per page level (index 1..3), so lookups skip sizes the array does not hold. */
  readonly validByLevel = new Int32Array(4);

  constructor(
    readonly name: string,
    g: TlbGeometry,
  ) {
    const sets = g.entries / g.ways;
    if (
      !Number.isInteger(g.entries) ||
      !Number.isInteger(g.ways) ||
      g.entries <= 0 ||
      g.ways <= 0 ||
      !Number.isInteger(sets) ||
      (sets & (sets - 1)) !== 0
    ) {
      throw configError(`TLB ${name}: ${g.entries} entries / ${g.ways} ways must give a power-of-two number of sets`);
    }
    if (g.ways > 16) throw configError(`TLB ${name}: at most 16 ways, got ${g.ways}`);
    this.sets = sets;
    this.ways = g.ways;
    this.setMask = sets - 1;
    this.full = g.ways === 16 ? 0xffff : (1 << g.ways) - 1;
    this.tagLo = new Int32Array(g.entries);
    this.tagHi = new Int32Array(g.entries);
    this.meta = new Uint32Array(g.entries);
    this.pfn = new Uint32Array(g.entries);
    this.validMask = new Uint16Array(sets);
    this.mruMask = new Uint16Array(sets);
  }

  /** Slot holding (tag, pcid) or a global entry for the tag; -1 if absent. Marks it recently used. */
  find(tagLo: number, tagHi: number, pcid: number): number {
    const ways = this.ways;
    const set = tagLo & this.setMask;
    const base = set * ways;
    const meta = this.meta;
    const tl = this.tagLo;
    for (let i = base; i < base + ways; i++) {
      if (tl[i] !== tagLo) continue;
      const m = meta[i]!;
      if ((m & M_VALID) !== 0 && this.tagHi[i] === tagHi && (m >>> M_PCID_SHIFT === pcid || (m & TLB_GLOBAL) !== 0)) {
        this.touch(set, i - base);
        return i;
      }
    }
    return -1;
  }

  private touch(set: number, way: number): void {
    let m = this.mruMask[set]! | (1 << way);
    if (m === this.full) m = 1 << way;
    this.mruMask[set] = m;
  }

  /**
   * Insert after a miss (callers never insert a tag and PCID already present): into the lowest
   * invalid way, else the PLRU victim.
   */
  insert(tagLo: number, tagHi: number, pcid: number, level: number, pfn: number, flags: number, pkey: number): void {
    const set = tagLo & this.setMask;
    const valid = this.validMask[set]!;
    const free = ~valid & this.full;
    // With one way the MRU bit is always set (touch() resets a full mask to the way itself), so
    // there is no clear bit: the only way is the victim.
    const plru = ~this.mruMask[set]! & this.full;
    const way = free !== 0 ? ctz(free) : plru !== 0 ? ctz(plru) : 0;
    const i = set * this.ways + way;
    if (free === 0) this.validByLevel[(this.meta[i]! >>> M_LEVEL_SHIFT) & 3]--;
    this.validByLevel[level]++;
    this.validMask[set] = valid | (1 << way);
    this.tagLo[i] = tagLo;
    this.tagHi[i] = tagHi;
    this.meta[i] =
      (M_VALID |
        (flags & (TLB_RW | TLB_US | TLB_XD | TLB_DIRTY | TLB_GLOBAL)) |
        (level << M_LEVEL_SHIFT) |
        (pkey << M_PKEY_SHIFT) |
        (pcid << M_PCID_SHIFT)) >>>
      0;
    this.pfn[i] = pfn;
    this.touch(set, way);
  }

  invalidateSlot(i: number): void {
    const m = this.meta[i]!;
    if ((m & M_VALID) === 0) return;
    this.validByLevel[(m >>> M_LEVEL_SHIFT) & 3]--;
    this.meta[i] = 0;
    const set = (i / this.ways) | 0;
    const bit = 1 << (i - set * this.ways);
    this.validMask[set] = this.validMask[set]! & ~bit;
    this.mruMask[set] = this.mruMask[set]! & ~bit;
  }

  /** Drop entries for the tag: of `pcid` and global ones (INVLPG), or of every PCID if pcid < 0. */
  invalidateTag(tagLo: number, tagHi: number, pcid: number, includeGlobal: boolean): void {
    const base = (tagLo & this.setMask) * this.ways;
    for (let i = base; i < base + this.ways; i++) {
      const m = this.meta[i]!;
      if ((m & M_VALID) === 0 || this.tagLo[i] !== tagLo || this.tagHi[i] !== tagHi) continue;
      const global = (m & TLB_GLOBAL) !== 0;
      if (global ? includeGlobal : pcid < 0 || m >>> M_PCID_SHIFT === pcid) this.invalidateSlot(i);
    }
  }

  /** Drop non-global entries of one PCID (pcid ≥ 0) or of all PCIDs (pcid < 0); globals too if asked. */
  flush(pcid: number, includeGlobal: boolean): void {
    const meta = this.meta;
    for (let i = 0; i < meta.length; i++) {
      const m = meta[i]!;
      if ((m & M_VALID) === 0) continue;
      if ((m & TLB_GLOBAL) !== 0 ? includeGlobal : pcid < 0 || m >>> M_PCID_SHIFT === pcid) this.invalidateSlot(i);
    }
  }

  countValid(): number {
    return this.validByLevel[1]! + this.validByLevel[2]! + this.validByLevel[3]!;
  }
}

/** Index of the lowest set bit of a non-zero 32-bit value. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Level of the page an entry maps, from its metadata. */
export function tlbEntryLevel(meta: number): number {
  return (meta >>> M_LEVEL_SHIFT) & 3;
}
export function tlbEntryPkey(meta: number): number {
  return (meta >>> M_PKEY_SHIFT) & 0xf;
}

/** Tag of an address at a page level: vpn >> (9 * (level - 1)), halves, level folded into hi. */
function tagLoOf(hi: number, lo: number, level: number): number {
  const shift = 12 + 9 * (level - 1); // 12, 21, 30
  return (lo >>> shift) | (hi << (32 - shift));
}
function tagHiOf(hi: number, level: number): number {
  const shift = 12 + 9 * (level - 1);
  return (hi >>> shift) | (level << 28);
}

/**
 * The TLB hierarchy of one CPU with PCID tags (SDM Vol. 3A §4.10). Lookup probes the L1 array of
 * each page size, then the STLB; an STLB hit refills L1. Invalidation follows §4.10.4: INVLPG drops
 * the page's entries for the current PCID and global ones; a CR3 write drops the non-global
 * entries of the new PCID unless bit 63 (no-flush) is set with CR4.PCIDE.
 */
export class Tlb {
  readonly l1: readonly [TlbArray, TlbArray, TlbArray];
  readonly stlb: TlbArray;
  private readonly stlbMaxLevel: number;
  /** Current PCID (0 when CR4.PCIDE = 0). */
  pcid = 0;

  // Result of the last successful lookup.
  hitMeta = 0;
  hitPfn = 0;
  hitLevel = 0;
  /** Array and slot of the last hit, to invalidate it if its rights deny the access. */
  private hitArray: TlbArray | null = null;
  private hitSlot = -1;

  // Statistics.
  l1Hits = 0;
  stlbHits = 0;
  misses = 0;

  constructor(cfg: TlbConfig = DEFAULT_TLB) {
    this.l1 = [new TlbArray('l1_4k', cfg.l1_4k), new TlbArray('l1_2m', cfg.l1_2m), new TlbArray('l1_1g', cfg.l1_1g)];
    this.stlb = new TlbArray('stlb', cfg.stlb);
    this.stlbMaxLevel = cfg.stlbHolds1G ? 3 : 2;
  }

  /** Look the address up; true on a hit (hitPfn is the accessed 4K frame). */
  lookup(hi: number, lo: number): boolean {
    const pcid = this.pcid;
    for (let level = 1; level <= 3; level++) {
      const arr = this.l1[level - 1]!;
      if (arr.validByLevel[level] === 0) continue;
      const slot = arr.find(tagLoOf(hi, lo, level), tagHiOf(hi, level), pcid);
      if (slot >= 0) {
        this.l1Hits++;
        return this.hit(arr, slot, level, lo);
      }
    }
    const stlb = this.stlb;
    for (let level = 1; level <= this.stlbMaxLevel; level++) {
      if (stlb.validByLevel[level] === 0) continue;
      const tl = tagLoOf(hi, lo, level);
      const th = tagHiOf(hi, level);
      const slot = this.stlb.find(tl, th, pcid);
      if (slot >= 0) {
        this.stlbHits++;
        const m = this.stlb.meta[slot]!;
        this.l1[level - 1]!.insert(tl, th, m >>> M_PCID_SHIFT, level, this.stlb.pfn[slot]!, m, tlbEntryPkey(m));
        return this.hit(this.stlb, slot, level, lo);
      }
    }
    this.misses++;
    return false;
  }

  private hit(arr: TlbArray, slot: number, level: number, lo: number): true {
    const m = arr.meta[slot]!;
    this.hitMeta = m;
    this.hitLevel = level;
    const base = arr.pfn[slot]!;
    this.hitPfn = level === 1 ? base : base + ((lo >>> 12) & (level === 2 ? 0x1ff : 0x3ffff));
    this.hitArray = arr;
    this.hitSlot = slot;
    return true;
  }

  /**
   * Every valid entry, L1 arrays then the STLB (a checker's cold path): the first virtual page
   * it maps, its page level, its first 4K frame and its metadata (TLB_RW, TLB_GLOBAL, ...).
   */
  forEachEntry(fn: (vpn: number, level: number, pfn: number, meta: number) => void): void {
    for (const arr of [...this.l1, this.stlb]) {
      for (let i = 0; i < arr.meta.length; i++) {
        const m = arr.meta[i]!;
        if ((m & M_VALID) === 0) continue;
        const level = tlbEntryLevel(m);
        const pages = ((arr.tagHi[i]! & 0x0fffffff) * 4294967296 + (arr.tagLo[i]! >>> 0)) * 512 ** (level - 1);
        fn(pages, level, arr.pfn[i]!, m);
      }
    }
  }

  /** Drop the entry of the last hit everywhere (its rights were stale or insufficient). */
  dropLastHit(hi: number, lo: number): void {
    if (this.hitArray === null) return;
    this.hitArray.invalidateSlot(this.hitSlot);
    this.invalidatePage(hi, lo, -1, true);
    this.hitArray = null;
  }

  /** Fill after a successful walk: into the L1 of the page size and the STLB. */
  fill(hi: number, lo: number, level: number, basePfn: number, flags: number, pkey: number): void {
    const tl = tagLoOf(hi, lo, level);
    const th = tagHiOf(hi, level);
    this.l1[level - 1]!.insert(tl, th, this.pcid, level, basePfn, flags, pkey);
    if (level <= this.stlbMaxLevel) this.stlb.insert(tl, th, this.pcid, level, basePfn, flags, pkey);
  }

  /** Invalidate the page at the address in every array, for `pcid` (< 0: all) and optionally globals. */
  invalidatePage(hi: number, lo: number, pcid: number, includeGlobal: boolean): void {
    for (let level = 1; level <= 3; level++) {
      const tl = tagLoOf(hi, lo, level);
      const th = tagHiOf(hi, level);
      const l1 = this.l1[level - 1]!;
      if (l1.validByLevel[level] !== 0) l1.invalidateTag(tl, th, pcid, includeGlobal);
      if (this.stlb.validByLevel[level] !== 0) this.stlb.invalidateTag(tl, th, pcid, includeGlobal);
    }
  }

  /** INVLPG: the current PCID's entries for the page and global entries for it. */
  invlpg(hi: number, lo: number): void {
    this.invalidatePage(hi, lo, this.pcid, true);
  }

  /** Non-global entries of one PCID (< 0: all PCIDs), and globals if asked. */
  flush(pcid: number, includeGlobal: boolean): void {
    for (const a of this.l1) a.flush(pcid, includeGlobal);
    this.stlb.flush(pcid, includeGlobal);
  }

  /** Valid entries in all arrays (for tests and reports). */
  countValid(): number {
    return this.l1[0].countValid() + this.l1[1].countValid() + this.l1[2].countValid() + this.stlb.countValid();
  }
}
