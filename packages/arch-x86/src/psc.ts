/**
 * Paging-structure caches (Intel SDM Vol. 3A §4.10.3): besides the TLBs a CPU caches the upper
 * entries that point at page tables — a PDE cache (by address bits 47:21), a PDPTE cache (47:30),
 * a PML4E cache (47:39) — so a TLB miss whose PDE is cached reads only the PTE. Why it matters
 * here: without them every TLB miss costs a full walk, which makes a nested (2D) walk look 6× a
 * native one where the published figures are 1.5–2×.
 *
 * The model's walker still reads every level (translations stay exact whatever is cached); these
 * caches only decide how many of those reads a walk is charged. Entries are tagged with the PCID;
 * a CR3 write without no-flush drops that PCID's entries, INVLPG drops all of the current PCID's
 * (§4.10.4.1: "all entries in all paging-structure caches associated with the current PCID,
 * regardless of the linear addresses"), a global flush drops all. Each cache is direct-mapped
 * (real ones are small and associative; the sizes are an estimate: 32 PDE, 4 PDPTE, 2 PML4E).
 */
export const PSC_SIZES: readonly number[] = [0, 0, 32, 4, 2, 2]; // by level; level 5: PML5E (walk() masks with these)

export class PagingStructureCaches {
  // One direct-mapped cache per level (2..5): key + 1 (0 = empty) and PCID, by slot.
  private readonly k2: Float64Array;
  private readonly p2: Int32Array;
  private readonly k3: Float64Array;
  private readonly p3: Int32Array;
  private readonly k4: Float64Array;
  private readonly p4: Int32Array;
  private readonly k5: Float64Array;
  private readonly p5: Int32Array;
  hits = 0;

  constructor(readonly levels: number) {
    this.k2 = new Float64Array(PSC_SIZES[2]!);
    this.p2 = new Int32Array(PSC_SIZES[2]!);
    this.k3 = new Float64Array(PSC_SIZES[3]!);
    this.p3 = new Int32Array(PSC_SIZES[3]!);
    this.k4 = new Float64Array(PSC_SIZES[4]!);
    this.p4 = new Int32Array(PSC_SIZES[4]!);
    this.k5 = new Float64Array(levels === 5 ? PSC_SIZES[5]! : 0);
    this.p5 = new Int32Array(levels === 5 ? PSC_SIZES[5]! : 0);
  }

  /**
   * The key of a level is the address bits above the ones its entry's table resolves (47:21 for a
   * PDE, 47:30 for a PDPTE, 47:39 for a PML4E, 56:48 for a PML5E) plus 1 (0 marks an empty slot).
   * A walk of address (hi, lo) under `pcid` that stopped at level `stop` (its leaf, or the level of
   * a not-present entry): how many upper reads it skips — the deepest cached entry above `stop`
   * names the table to start from — and the entries it went through are cached. 0 when nothing
   * was cached.
   */
  walk(hi: number, lo: number, pcid: number, stop: number): number {
    // Straight-line per level (the hot path of every TLB miss). Sizes are powers of two, so a
    // slot is the key's low bits (ToInt32 keeps them) mixed with the PCID.
    if (stop < 2) {
      const key = hi * 2048 + (lo >>> 21) + 1;
      const slot = ((key | 0) + pcid * 7) & 31;
      if (this.k2[slot] === key && this.p2[slot] === pcid) return this.hit(2);
      this.k2[slot] = key;
      this.p2[slot] = pcid;
    }
    if (stop < 3) {
      const key = hi * 4 + (lo >>> 30) + 1;
      const slot = ((key | 0) + pcid * 7) & 3;
      if (this.k3[slot] === key && this.p3[slot] === pcid) return this.hit(3);
      this.k3[slot] = key;
      this.p3[slot] = pcid;
    }
    if (stop < 4) {
      const key = (hi >>> 7) + 1;
      const slot = (key + pcid * 7) & 1;
      if (this.k4[slot] === key && this.p4[slot] === pcid) return this.hit(4);
      this.k4[slot] = key;
      this.p4[slot] = pcid;
    }
    if (this.levels === 5 && stop < 5) {
      const key = (hi >>> 16) + 1;
      const slot = (key + pcid * 7) & 1;
      if (this.k5[slot] === key && this.p5[slot] === pcid) return this.hit(5);
      this.k5[slot] = key;
      this.p5[slot] = pcid;
    }
    return 0;
  }

  /** A hit at `level`: the reads of that level and the ones above it are skipped. */
  private hit(level: number): number {
    this.hits++;
    return this.levels - level + 1;
  }

  /** Drop `pcid`'s entries (-1: every entry). */
  flush(pcid: number): void {
    for (const [keys, pcids] of [
      [this.k2, this.p2],
      [this.k3, this.p3],
      [this.k4, this.p4],
      [this.k5, this.p5],
    ] as const)
      for (let i = 0; i < keys.length; i++) if (pcid < 0 || pcids[i] === pcid) keys[i] = 0;
  }
}
