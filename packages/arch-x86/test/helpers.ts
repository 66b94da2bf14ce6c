/** Shared fixtures for the @pte/arch-x86 tests (not a test file itself). */
import {
  DEFAULT_MODE,
  PageTables,
  PhysMem,
  SimpleFrameSource,
  splitAddress,
  tableIndex,
  Walker,
  type FrameSource,
  type PagingMode,
} from '../src/index.js';

/** Frames of the physical memory used by the fixtures: enough for a 1 GiB-aligned data pfn (0x40000). */
export const MEM_FRAMES = 1 << 19;

/** Data frames are taken from here up, far from the page-table frames the allocator hands out from 1. */
export const DATA_PFN = 0x10000;

/** Split a 64-bit address given as bigint. */
export function va(v: bigint): { hi: number; lo: number } {
  return splitAddress(v);
}

/** A frame source that counts what it hands out and takes back. */
export class CountingFrames implements FrameSource {
  allocs = 0;
  frees = 0;
  constructor(private readonly inner: FrameSource) {}
  allocFrame(): number {
    this.allocs++;
    return this.inner.allocFrame();
  }
  freeFrame(pfn: number): void {
    this.frees++;
    this.inner.freeFrame(pfn);
  }
}

export interface Space {
  mem: PhysMem;
  frames: CountingFrames;
  pt: PageTables;
}

/** One address space in a fresh physical memory. */
export function makeSpace(
  levels: 4 | 5 = 4,
  tableFlags?: number,
  mem = new PhysMem(MEM_FRAMES),
  firstFrame = 1,
): Space {
  const frames = new CountingFrames(new SimpleFrameSource(DATA_PFN, firstFrame));
  const pt =
    tableFlags === undefined ? new PageTables(mem, frames, levels) : new PageTables(mem, frames, levels, tableFlags);
  return { mem, frames, pt };
}

export function walkerFor(s: Space, mode: Partial<PagingMode> = {}): Walker {
  return new Walker(s.mem, { ...DEFAULT_MODE, levels: s.pt.levels, ...mode });
}

/** Map `addr` (bigint) to `pfn` with the given flag halves and page size in frames. */
export function map(s: Space, addr: bigint, pfn: number, flagsLo: number, flagsHi = 0, frames = 1): void {
  const a = va(addr);
  s.pt.map(a.hi, a.lo, pfn, flagsLo, flagsHi, frames);
}

/** Where the level-`level` entry for the address lives (table frame and index), or null if that table is absent. */
export function entryAt(s: Space, addr: bigint, level: number): { table: number; index: number } | null {
  const a = va(addr);
  const table = s.pt.tableFor(a.hi, a.lo, level, false);
  if (table < 0) return null;
  return { table, index: tableIndex(level, a.hi, a.lo) };
}

/** The level-`level` entry for the address as { lo, hi } (it must exist). */
export function readEntry(s: Space, addr: bigint, level: number): { lo: number; hi: number } {
  const e = entryAt(s, addr, level);
  if (e === null) throw new Error(`no level-${level} table for 0x${addr.toString(16)}`);
  return { lo: s.mem.readLo(e.table, e.index), hi: s.mem.readHi(e.table, e.index) };
}

/** Overwrite the level-`level` entry for the address: lo' = (lo & ~clearLo) | setLo, likewise hi. */
export function patchEntry(
  s: Space,
  addr: bigint,
  level: number,
  setLo: number,
  clearLo = 0,
  setHi = 0,
  clearHi = 0,
): void {
  const e = entryAt(s, addr, level);
  if (e === null) throw new Error(`no level-${level} table for 0x${addr.toString(16)}`);
  const lo = s.mem.readLo(e.table, e.index);
  const hi = s.mem.readHi(e.table, e.index);
  s.mem.write(e.table, e.index, ((lo & ~clearLo) | setLo) >>> 0, ((hi & ~clearHi) | setHi) >>> 0);
}

/** Call `fn` and return what it threw (fails the test if it did not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw');
}
