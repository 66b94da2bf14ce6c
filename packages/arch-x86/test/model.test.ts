/**
 * Property test: random map / unmap / translate sequences against a Map-based reference model.
 * The kernel's discipline is followed: INVLPG after every unmap and every remap of a present page,
 * none after mapping a page that was not present (a faulting translation is never cached).
 */
import fc from 'fast-check';
import {
  A,
  ACCESS_USER,
  ACCESS_WRITE,
  D,
  DEFAULT_TLB,
  Mmu,
  P,
  PF_P,
  PF_U,
  PF_W,
  RW,
  TRANSLATE_PF,
  US,
  tableIndex,
  type TlbConfig,
} from '../src/index.js';
import { DATA_PFN, makeSpace, va } from './helpers.js';

/** Candidate pages: runs that cross a PT boundary (2M), a PD boundary (1G), and a PML4 boundary (512G). */
const PAGES: bigint[] = [];
for (const [start, n] of [
  [0x400000n, 6],
  [0x7f12345fc000n, 8],
  [0x40000000n - 0x3000n, 6],
  [0x8000000000n - 0x2000n, 4],
  [0xffff888000000000n, 4],
] as Array<[bigint, number]>) {
  for (let i = 0; i < n; i++) PAGES.push(start + BigInt(i) * 0x1000n);
}

type Op =
  | { k: 'map'; page: number; pfn: number; rw: boolean; us: boolean }
  | { k: 'unmap'; page: number }
  | { k: 'tr'; page: number; write: boolean; user: boolean; offset: number };

const pageArb = fc.integer({ min: 0, max: PAGES.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('map' as const),
      page: pageArb,
      pfn: fc.integer({ min: 0, max: 63 }),
      rw: fc.boolean(),
      us: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unmap' as const), page: pageArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('tr' as const),
      page: pageArb,
      write: fc.boolean(),
      user: fc.boolean(),
      offset: fc.integer({ min: 0, max: 4095 }),
    }),
  },
);

const TINY: TlbConfig = {
  l1_4k: { entries: 4, ways: 4 },
  l1_2m: { entries: 2, ways: 2 },
  l1_1g: { entries: 1, ways: 1 },
  stlb: { entries: 8, ways: 2 },
  stlbHolds1G: false,
};

/** Paging structures the reference expects: the root plus one PDPT, PD and PT per distinct prefix ever mapped. */
function expectedTables(mapped: Set<number>): number {
  const pdpt = new Set<string>();
  const pd = new Set<string>();
  const pt = new Set<string>();
  for (const p of mapped) {
    const { hi, lo } = va(PAGES[p]!);
    const i4 = tableIndex(4, hi, lo);
    const i3 = tableIndex(3, hi, lo);
    const i2 = tableIndex(2, hi, lo);
    pdpt.add(`${i4}`);
    pd.add(`${i4}/${i3}`);
    pt.add(`${i4}/${i3}/${i2}`);
  }
  return 1 + pdpt.size + pd.size + pt.size;
}

describe('map / unmap / translate against a reference model', () => {
  it('translate always agrees with the model (frame or #PF error code), and tables are counted exactly', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(opArb, { minLength: 1, maxLength: 120 }), (tiny, ops) => {
        const s = makeSpace();
        const mmu = new Mmu(s.mem, { tlb: tiny ? TINY : DEFAULT_TLB });
        mmu.writeCr3(s.pt.root);
        const ref = new Map<number, { pfn: number; rw: boolean; us: boolean }>();
        const everMapped = new Set<number>();
        for (const op of ops) {
          const { hi, lo } = va(PAGES[op.page]!);
          if (op.k === 'map') {
            const pfn = DATA_PFN + op.pfn;
            s.pt.map(hi, lo, pfn, P | (op.rw ? RW : 0) | (op.us ? US : 0));
            if (ref.has(op.page)) mmu.invlpg(hi, lo);
            ref.set(op.page, { pfn, rw: op.rw, us: op.us });
            everMapped.add(op.page);
          } else if (op.k === 'unmap') {
            expect(s.pt.unmap(hi, lo)).toBe(ref.has(op.page));
            if (ref.delete(op.page)) mmu.invlpg(hi, lo);
          } else {
            const access = (op.write ? ACCESS_WRITE : 0) | (op.user ? ACCESS_USER : 0);
            const got = mmu.translate(hi, (lo + op.offset) >>> 0, access);
            const m = ref.get(op.page);
            const accessCode = (op.write ? PF_W : 0) | (op.user ? PF_U : 0);
            if (m === undefined) {
              expect(got).toBe(TRANSLATE_PF);
              expect(mmu.faultCode).toBe(accessCode);
            } else if ((op.user && !m.us) || (op.write && !m.rw)) {
              expect(got).toBe(TRANSLATE_PF);
              expect(mmu.faultCode).toBe(PF_P | accessCode);
            } else {
              expect(got).toBe(m.pfn);
              // The hardware set A (and D for a write) in the PTE in memory.
              const pte = s.pt.lookup(hi, lo)!;
              expect(pte.lo & (A | D)).toBe(op.write ? A | D : pte.lo & D ? A | D : A);
            }
          }
          // Software view agrees too.
          for (const [page, m] of ref) {
            const a = va(PAGES[page]!);
            const e = s.pt.lookup(a.hi, a.lo);
            expect(e === null ? -1 : Math.floor(e.lo / 4096) + e.hi * 1048576).toBe(m.pfn);
          }
          expect(s.mem.tableCount).toBe(s.frames.allocs - s.frames.frees);
          expect(s.mem.tableCount).toBe(expectedTables(everMapped));
        }
        // Destroying the address space returns every table.
        s.pt.destroy();
        expect(s.mem.tableCount).toBe(0);
        expect(s.frames.frees).toBe(s.frames.allocs);
      }),
      { numRuns: 300 },
    );
  });

  it('without INVLPG after a remap the model and the MMU disagree (the property above is not vacuous)', () => {
    const s = makeSpace();
    const mmu = new Mmu(s.mem);
    mmu.writeCr3(s.pt.root);
    const { hi, lo } = va(PAGES[0]!);
    s.pt.map(hi, lo, DATA_PFN, P | RW | US);
    expect(mmu.translate(hi, lo, 0)).toBe(DATA_PFN);
    s.pt.map(hi, lo, DATA_PFN + 1, P | RW | US);
    expect(mmu.translate(hi, lo, 0)).toBe(DATA_PFN);
    mmu.invlpg(hi, lo);
    expect(mmu.translate(hi, lo, 0)).toBe(DATA_PFN + 1);
  });
});
