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
export const PSC_SIZES: readonly number[] = [0, 0, 32, 4, 2, 2]; // by level; level 5: PML5E

export class PagingStructureCaches {
  /** Per level 2..levels: the cached upper-page key (address >> (12 + 9·(level−1))) + 1, 0 = empty. */
  private readonly keys: Float64Array[] = [];
  private readonly pcids: Int32Array[] = [];
  hits = 0;

  constructor(readonly levels: number) {
    for (let l = 0; l <= levels; l++) {
      const n = l >= 2 ? PSC_SIZES[l]! : 0;
      this.keys.push(new Float64Array(n));
      this.pcids.push(new Int32Array(n));
    }
  }

  /**
   * How many upper levels a walk of page `vpn` under `pcid`, which stopped at level `stop` (its
   * leaf, or the level of a not-present entry), skips: the deepest cached entry above `stop`
   * names the table to start from. 0 when nothing is cached.
   */
  skipped(vpn: number, pcid: number, stop: number): number {
    for (let l = Math.max(2, stop + 1); l <= this.levels; l++) {
      const key = Math.floor(vpn / 512 ** (l - 1)) + 1;
      const keys = this.keys[l]!;
      const slot = (key + pcid * 7) % keys.length;
      if (keys[slot] === key && this.pcids[l]![slot] === pcid) {
        this.hits++;
        return this.levels - l + 1;
      }
    }
    return 0;
  }

  /** Cache the upper entries a walk of `vpn` went through (every level above `stop`). */
  fill(vpn: number, pcid: number, stop: number): void {
    for (let l = Math.max(2, stop + 1); l <= this.levels; l++) {
      const key = Math.floor(vpn / 512 ** (l - 1)) + 1;
      const keys = this.keys[l]!;
      const slot = (key + pcid * 7) % keys.length;
      keys[slot] = key;
      this.pcids[l]![slot] = pcid;
    }
  }

  /** Drop `pcid`'s entries (-1: every entry). */
  flush(pcid: number): void {
    for (let l = 2; l <= this.levels; l++) {
      const keys = this.keys[l]!;
      const p = this.pcids[l]!;
      for (let i = 0; i < keys.length; i++) if (pcid < 0 || p[i] === pcid) keys[i] = 0;
    }
  }
}
