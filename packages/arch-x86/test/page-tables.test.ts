import { PteError } from '@pte/core';
import {
  A,
  D,
  DEFAULT_TABLE_FLAGS,
  FRAMES_1G,
  FRAMES_2M,
  G,
  LINUX_PAGE_TABLE,
  P,
  PAT_LARGE,
  PKEY_SHIFT_HI,
  PS,
  PageTables,
  PhysMem,
  RW,
  SimpleFrameSource,
  US,
  XD_HI,
  entryPfn,
} from '../src/index.js';
import { DATA_PFN, entryAt, makeSpace, map, va, thrown } from './helpers.js';

const VA = 0x7f1234567000n;
const PFN = DATA_PFN + 0x123;

function lookup(s: ReturnType<typeof makeSpace>, addr: bigint) {
  const a = va(addr);
  return s.pt.lookup(a.hi, a.lo);
}
function unmap(s: ReturnType<typeof makeSpace>, addr: bigint): boolean {
  const a = va(addr);
  return s.pt.unmap(a.hi, a.lo);
}

describe('PageTables construction', () => {
  it('allocates and zeroes a root table', () => {
    const s = makeSpace();
    expect(s.mem.isTable(s.pt.root)).toBe(true);
    expect(s.mem.tableCount).toBe(1);
    expect(s.frames.allocs).toBe(1);
    for (let i = 0; i < 512; i++) expect(s.mem.readLo(s.pt.root, i) | s.mem.readHi(s.pt.root, i)).toBe(0);
  });

  it.each([3, 6])('refuses %i levels with a config PteError', (levels) => {
    const mem = new PhysMem(64);
    const e = thrown(() => new PageTables(mem, new SimpleFrameSource(64), levels as 4));
    expect(e).toBeInstanceOf(PteError);
    expect((e as PteError).code).toBe('config');
    expect((e as PteError).message).toContain(String(levels));
  });
});

describe('PageTables.map', () => {
  it('a 4K page on 4 levels allocates PDPT, PD and PT; table entries carry DEFAULT_TABLE_FLAGS (P|RW|US, A clear)', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW | US);
    expect(s.mem.tableCount).toBe(4);
    expect(s.frames.allocs).toBe(4);
    expect(DEFAULT_TABLE_FLAGS).toBe(P | RW | US);
    let table = s.pt.root;
    for (let level = 4; level >= 2; level--) {
      const e = entryAt(s, VA, level)!;
      expect(e.table).toBe(table);
      const lo = s.mem.readLo(e.table, e.index);
      expect(lo & 0xfff).toBe(DEFAULT_TABLE_FLAGS);
      table = entryPfn(level, lo, s.mem.readHi(e.table, e.index));
      expect(s.mem.isTable(table)).toBe(true);
    }
    const leaf = entryAt(s, VA, 1)!;
    expect(leaf.table).toBe(table);
    expect(s.mem.readLo(leaf.table, leaf.index)).toBe((PFN * 4096 + (P | RW | US)) >>> 0);
    expect(s.mem.readHi(leaf.table, leaf.index)).toBe(0);
  });

  it('custom table flags (Linux _PAGE_TABLE) are used for every upper entry', () => {
    const s = makeSpace(4, LINUX_PAGE_TABLE);
    map(s, VA, PFN, P | RW | US);
    for (let level = 4; level >= 2; level--) {
      const e = entryAt(s, VA, level)!;
      expect(s.mem.readLo(e.table, e.index) & 0xfff).toBe(LINUX_PAGE_TABLE);
    }
  });

  it('a second page in the same PT allocates nothing; one in a new PD region allocates one PT', () => {
    const s = makeSpace();
    map(s, VA, PFN, P);
    map(s, VA + 0x1000n, PFN + 1, P);
    expect(s.mem.tableCount).toBe(4);
    map(s, VA + (1n << 21n), PFN + 2, P);
    expect(s.mem.tableCount).toBe(5);
    map(s, VA + (1n << 30n), PFN + 3, P);
    expect(s.mem.tableCount).toBe(7);
    map(s, VA + (1n << 39n), PFN + 4, P);
    expect(s.mem.tableCount).toBe(10);
  });

  it('5 levels: a 4K page allocates 4 tables below the root', () => {
    const s = makeSpace(5);
    map(s, 0x00ff800000000000n, PFN, P);
    expect(s.mem.tableCount).toBe(5);
    expect(lookup(s, 0x00ff800000000000n)?.level).toBe(1);
  });

  it('keeps bit 12 of the flags out of a 4K PTE (it is an address bit there)', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW | 0x1000);
    expect(lookup(s, VA)!.lo).toBe((PFN * 4096 + (P | RW)) >>> 0);
  });

  it('high flag bits (XD, pkey) and pfns above 2^20 land in the high half', () => {
    const s = makeSpace();
    const pfn = 0x123456789;
    map(s, VA, pfn, P | RW, XD_HI | (5 << PKEY_SHIFT_HI));
    const e = lookup(s, VA)!;
    expect(e.lo).toBe((0x56789 * 4096 + (P | RW)) >>> 0);
    expect(e.hi).toBe((0x1234 | XD_HI | (5 << PKEY_SHIFT_HI)) >>> 0);
    expect(entryPfn(1, e.lo, e.hi)).toBe(pfn);
  });

  it('a 2M page sets PS in the PDE and keeps PAT at bit 12; it allocates no PT', () => {
    const s = makeSpace();
    const big = 0x40200000n;
    map(s, big, DATA_PFN, P | RW | PAT_LARGE, 0, FRAMES_2M);
    expect(s.mem.tableCount).toBe(3);
    const e = lookup(s, big + 0x1234n)!;
    expect(e.level).toBe(2);
    expect(e.lo).toBe((DATA_PFN * 4096 + (P | RW | PS | PAT_LARGE)) >>> 0);
    expect(entryPfn(2, e.lo, e.hi)).toBe(DATA_PFN);
  });

  it('a 1G page sets PS in the PDPTE', () => {
    const s = makeSpace();
    map(s, 0x80000000n, 0x80000, P | RW | G, 0, FRAMES_1G);
    expect(s.mem.tableCount).toBe(2);
    const e = lookup(s, 0xbfffffffn)!;
    expect(e.level).toBe(3);
    expect(e.lo & (PS | G)).toBe(PS | G);
    expect(entryPfn(3, e.lo, e.hi)).toBe(0x80000);
    expect(lookup(s, 0xc0000000n)).toBeNull();
  });

  it('refuses a misaligned large pfn, an unknown page size and a non-canonical address', () => {
    const s = makeSpace();
    expect(() => map(s, 0x40000000n, DATA_PFN + 1, P, 0, FRAMES_2M)).toThrow(/not aligned/);
    expect(() => map(s, 0x40000000n, 0x40200, P, 0, FRAMES_1G)).toThrow(/not aligned/);
    expect(() => map(s, 0x40000000n, DATA_PFN, P, 0, 8)).toThrow(/not 4K, 2M or 1G/);
    expect(() => map(s, 0x0000800000000000n, PFN, P)).toThrow(/not canonical/);
    expect(s.mem.tableCount).toBe(1);
  });

  it('refuses a 4K mapping under a 2M leaf', () => {
    const s = makeSpace();
    map(s, 0x40000000n, DATA_PFN, P, 0, FRAMES_2M);
    expect(() => map(s, 0x40001000n, PFN, P)).toThrow(/level-2 large page/);
  });

  it('remapping overwrites the PTE in place', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW | A | D);
    map(s, VA, PFN + 7, P);
    expect(lookup(s, VA)!.lo).toBe(((PFN + 7) * 4096 + P) >>> 0);
    expect(s.mem.tableCount).toBe(4);
  });
});

describe('PageTables.lookup and tableFor', () => {
  it('lookup finds the leaf with its table and index, and returns null where nothing is mapped', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | US);
    const e = lookup(s, VA + 0xfffn)!;
    const where = entryAt(s, VA, 1)!;
    expect(e).toEqual({ level: 1, lo: (PFN * 4096 + (P | US)) >>> 0, hi: 0, table: where.table, index: 0x167 });
    expect(lookup(s, VA + 0x1000n)).toBeNull();
    expect(lookup(s, VA + (1n << 30n))).toBeNull();
    expect(lookup(s, 0n)).toBeNull();
  });

  it('tableFor without create returns -1 for a missing table and allocates nothing', () => {
    const s = makeSpace();
    const a = va(VA);
    expect(s.pt.tableFor(a.hi, a.lo, 1, false)).toBe(-1);
    expect(s.mem.tableCount).toBe(1);
    expect(s.pt.tableFor(a.hi, a.lo, 4, false)).toBe(s.pt.root);
    const pt = s.pt.tableFor(a.hi, a.lo, 1, true);
    expect(s.mem.isTable(pt)).toBe(true);
    expect(s.mem.tableCount).toBe(4);
  });
});

describe('PageTables.unmap', () => {
  it('clears a 4K PTE and keeps the tables', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW);
    map(s, VA + 0x1000n, PFN + 1, P | RW);
    expect(unmap(s, VA)).toBe(true);
    expect(lookup(s, VA)).toBeNull();
    expect(lookup(s, VA + 0x1000n)!.level).toBe(1);
    const e = entryAt(s, VA, 1)!;
    expect([s.mem.readLo(e.table, e.index), s.mem.readHi(e.table, e.index)]).toEqual([0, 0]);
    expect(s.mem.tableCount).toBe(4);
    expect(unmap(s, VA)).toBe(false);
  });

  it('returns false where no table exists', () => {
    const s = makeSpace();
    expect(unmap(s, VA)).toBe(false);
    map(s, VA, PFN, P);
    expect(unmap(s, VA + (1n << 30n))).toBe(false);
    expect(unmap(s, VA + (1n << 21n))).toBe(false);
  });

  it('clears a 2M leaf (any address inside it)', () => {
    const s = makeSpace();
    map(s, 0x40000000n, DATA_PFN, P | RW, 0, FRAMES_2M);
    expect(unmap(s, 0x40123000n)).toBe(true);
    expect(lookup(s, 0x40000000n)).toBeNull();
    expect(unmap(s, 0x40000000n)).toBe(false);
  });

  it('clears a 1G leaf', () => {
    const s = makeSpace();
    map(s, 0x40000000n, 0x40000, P | RW, 0, FRAMES_1G);
    expect(unmap(s, 0x7ffff000n)).toBe(true);
    expect(lookup(s, 0x40000000n)).toBeNull();
  });
});

describe('PageTables.destroy', () => {
  it('frees every table, root included, and skips large leaves', () => {
    const mem = new PhysMem(1 << 19);
    const s = makeSpace(4, undefined, mem);
    map(s, VA, PFN, P);
    map(s, VA + (1n << 39n), PFN, P);
    map(s, 0x40000000n, DATA_PFN, P, 0, FRAMES_2M);
    map(s, 0x80000000n, 0x40000, P, 0, FRAMES_1G);
    const other = makeSpace(4, undefined, mem, 0x8000);
    map(other, VA, PFN, P);
    const tables = mem.tableCount;
    expect(tables).toBe(1 + 3 + 3 + 2 + 4); // root, two 4K paths, PDPT+PD for 2M (the 1G leaf shares the PDPT), other space
    s.pt.destroy();
    expect(mem.tableCount).toBe(4);
    expect(s.frames.frees).toBe(s.frames.allocs);
    expect(mem.isTable(s.pt.root)).toBe(false);
    // The other address space is intact.
    expect(lookup(other, VA)!.level).toBe(1);
  });
});
