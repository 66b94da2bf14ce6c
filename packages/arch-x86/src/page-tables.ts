import { configError } from '@pte/core';
import { isCanonical, tableIndex } from './address.js';
import { entryPfn, frameHi, frameLo, isLeaf } from './pte-codec.js';
import type { FrameSource, PhysMem } from './phys-mem.js';
import { FRAMES_1G, FRAMES_2M, P, PS, RW, US } from './pte-bits.js';

/** Flags of entries that point to a lower table, when the caller does not choose: P|RW|US, A clear. */
export const DEFAULT_TABLE_FLAGS = P | RW | US;

/**
 * One address space's 4- or 5-level paging structures in `PhysMem`: the software side of paging
 * (what the kernel's pgd/p4d/pud/pmd/pte_alloc helpers do). The hardware side is `Walker`.
 */
export class PageTables {
  readonly root: number;

  constructor(
    readonly mem: PhysMem,
    private readonly frames: FrameSource,
    readonly levels: 4 | 5 = 4,
    private readonly tableFlags: number = DEFAULT_TABLE_FLAGS,
  ) {
    if (levels !== 4 && levels !== 5) throw configError(`paging levels must be 4 or 5, got ${levels}`);
    this.root = frames.allocFrame();
    mem.makeTable(this.root);
  }

  /**
   * The frame of the table holding the level-`level` entry for the address (level 1 = the PTE
   * page), allocating missing tables on the way if `create`; -1 if absent. Throws if a large leaf
   * covers the address above `level`.
   */
  tableFor(hi: number, lo: number, level: number, create: boolean): number {
    if (!isCanonical(hi, this.levels)) throw new Error(`address is not canonical for ${this.levels}-level paging`);
    const mem = this.mem;
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const idx = tableIndex(l, hi, lo);
      const e = mem.entryIndex(table, idx);
      const elo = mem.ent[2 * e]!;
      if ((elo & P) === 0) {
        if (!create) return -1;
        const t = this.frames.allocFrame();
        mem.makeTable(t);
        mem.write(table, idx, frameLo(t) + this.tableFlags, frameHi(t));
        table = t;
        continue;
      }
      if (isLeaf(l, elo)) throw new Error(`a level-${l} large page maps this address`);
      table = entryPfn(l, elo, mem.ent[2 * e + 1]!);
    }
    return table;
  }

  /**
   * Map the page at the address to frame `pfn` with the given flag halves. `frames` is the page
   * size in 4 KiB frames: 1, 512 (2 MiB, PS in the PDE) or 262144 (1 GiB, PS in the PDPTE).
   */
  map(hi: number, lo: number, pfn: number, flagsLo: number, flagsHi = 0, frames = 1): void {
    const level = frames === 1 ? 1 : frames === FRAMES_2M ? 2 : frames === FRAMES_1G ? 3 : 0;
    if (level === 0) throw new Error(`page of ${frames} frames is not 4K, 2M or 1G`);
    if (pfn % frames !== 0) throw new Error(`frame 0x${pfn.toString(16)} is not aligned to the page size`);
    const table = this.tableFor(hi, lo, level, true);
    // Bit 12 is an address bit in a PTE but the PAT bit in a large leaf (pfn aligned: address bit 12 is 0).
    const flags = level === 1 ? flagsLo & 0xfff : (flagsLo | PS) & 0x1fff;
    this.mem.write(table, tableIndex(level, hi, lo), frameLo(pfn) + flags, (frameHi(pfn) | flagsHi) >>> 0);
  }

  /**
   * Clear the leaf (4K PTE, 2M PDE or 1G PDPTE) mapping the address; returns false if none was
   * present. Walks top-down, as lookup() does, so a large leaf is cleared rather than refused.
   */
  unmap(hi: number, lo: number): boolean {
    if (!isCanonical(hi, this.levels)) throw new Error(`address is not canonical for ${this.levels}-level paging`);
    const leaf = this.lookup(hi, lo);
    if (leaf === null) return false;
    this.mem.write(leaf.table, leaf.index, 0, 0);
    return true;
  }

  /**
   * Software lookup without side effects (no A/D): the leaf entry mapping the address (4K, 2M or
   * 1G) with the table and index holding it, or null.
   */
  lookup(hi: number, lo: number): { level: number; lo: number; hi: number; table: number; index: number } | null {
    const mem = this.mem;
    let table = this.root;
    for (let l = this.levels; l >= 1; l--) {
      const idx = tableIndex(l, hi, lo);
      const e = mem.entryIndex(table, idx);
      const elo = mem.ent[2 * e]!;
      const ehi = mem.ent[2 * e + 1]!;
      if ((elo & P) === 0) return null;
      if (isLeaf(l, elo)) return { level: l, lo: elo, hi: ehi, table, index: idx };
      table = entryPfn(l, elo, ehi);
    }
    return null;
  }

  /** Free every table below the root and the root itself (free_pgtables + pgd_free). */
  destroy(): void {
    this.freeTree(this.root, this.levels);
  }

  private freeTree(table: number, level: number): void {
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        const lo = this.mem.readLo(table, i);
        if ((lo & P) !== 0 && !isLeaf(level, lo))
          this.freeTree(entryPfn(level, lo, this.mem.readHi(table, i)), level - 1);
      }
    }
    this.mem.releaseTable(table);
    this.frames.freeFrame(table);
  }
}
