import fc from 'fast-check';
import {
  A,
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_USER,
  ACCESS_WRITE,
  D,
  DEFAULT_MODE,
  FRAMES_1G,
  FRAMES_2M,
  G,
  LINUX_PAGE_TABLE,
  P,
  PAT_LARGE,
  PF_I,
  PF_P,
  PF_PK,
  PF_RSVD,
  PF_U,
  PF_W,
  PKEY_SHIFT_HI,
  PS,
  RW,
  US,
  Walker,
  XD_HI,
  PhysMem,
} from '../src/index.js';
import { DATA_PFN, entryAt, makeSpace, map, patchEntry, readEntry, va, walkerFor, type Space } from './helpers.js';

const VA = 0x7f1234567000n;
const PFN = DATA_PFN + 0x123;
const USER_RW = P | RW | US;

const R = ACCESS_READ;
const W = ACCESS_WRITE;
const U = ACCESS_USER;
const I = ACCESS_FETCH;

/** The six kinds of access: read, write, fetch, each supervisor or user. */
const ACCESSES: Array<[string, number]> = [
  ['supervisor read', R],
  ['supervisor write', W],
  ['supervisor fetch', I],
  ['user read', U | R],
  ['user write', U | W],
  ['user fetch', U | I],
];

function walk(s: Space, w: Walker, addr: bigint, access: number): boolean {
  const a = va(addr);
  return w.walk(s.pt.root, a.hi, a.lo, access);
}

/** Each level's entry for the address, top-down, as lo halves (null where the table is absent). */
function entriesLo(s: Space, addr: bigint, leafLevel = 1): Array<number | null> {
  const out: Array<number | null> = [];
  for (let l = s.pt.levels; l >= leafLevel; l--) {
    const e = entryAt(s, addr, l);
    out.push(e === null ? null : s.mem.readLo(e.table, e.index));
  }
  return out;
}

describe('#PF error code: not present (P = 0), SDM §4.7', () => {
  const cases: Array<[string, bigint, number, number]> = [
    ['PML4E missing', 0x7f0000000000n - 0x8000000000n, 4, 1],
    ['PDPTE missing', VA + (1n << 30n), 3, 2],
    ['PDE missing', VA + (1n << 21n), 2, 3],
    ['PTE missing', VA + 0x1000n, 1, 4],
  ];
  for (const [what, addr, level, refs] of cases) {
    describe(what, () => {
      it.each(ACCESSES)('%s: error code mirrors the access, P clear', (_n, access) => {
        const s = makeSpace();
        map(s, VA, PFN, USER_RW);
        const w = walkerFor(s);
        expect(walk(s, w, addr, access)).toBe(false);
        expect(w.errorCode).toBe(access); // W = bit 1, U = bit 2, I = bit 4, P = 0
        expect(w.errorCode & PF_P).toBe(0);
        expect(w.level).toBe(level);
        expect(w.refs).toBe(refs);
        expect(w.adWrites).toBe(0);
      });
    });
  }

  it('PML5E missing with 5-level paging stops after one reference', () => {
    const s = makeSpace(5);
    const w = walkerFor(s);
    expect(walk(s, w, 0x00ff800000000000n, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_W | PF_U);
    expect([w.level, w.refs]).toEqual([5, 1]);
  });

  it('I/D is not reported when NXE = 0 and SMEP = 0, and is with SMEP alone', () => {
    const s = makeSpace();
    const plain = walkerFor(s, { nxe: false, smep: false });
    expect(walk(s, plain, VA, U | I)).toBe(false);
    expect(plain.errorCode).toBe(PF_U);
    expect(walk(s, plain, VA, I)).toBe(false);
    expect(plain.errorCode).toBe(0);
    const smep = walkerFor(s, { nxe: false, smep: true });
    expect(walk(s, smep, VA, U | I)).toBe(false);
    expect(smep.errorCode).toBe(PF_U | PF_I);
  });
});

describe('#PF error code: protection violations (SDM §4.6, §4.7)', () => {
  it('write to a read-only user page: user faults with P|W|U; supervisor faults with P|W when CR0.WP = 1', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | US);
    const w = walkerFor(s, { wp: true });
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U);
    expect(w.level).toBe(1);
    expect(w.refs).toBe(4);
    expect(walk(s, w, VA, W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W);
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect(w.pfn).toBe(PFN);
    expect(w.rights).toBe(US);
  });

  it('CR0.WP = 0 lets a supervisor write a read-only page (and sets D), users still fault', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | US);
    const w = walkerFor(s, { wp: false });
    expect(walk(s, w, VA, W)).toBe(true);
    expect(w.pfn).toBe(PFN);
    expect(readEntry(s, VA, 1).lo & D).toBe(D);
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U);
  });

  it('user access to a supervisor page: P|U, plus W for writes and I for fetches', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U);
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U);
    expect(walk(s, w, VA, U | I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_I);
    for (const access of [R, W, I]) expect(walk(s, w, VA, access)).toBe(true);
  });

  it('instruction fetch from an XD page with NXE: P|I (supervisor), P|U|I (user); data access allowed', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW, XD_HI);
    const w = walkerFor(s, { nxe: true });
    expect(walk(s, w, VA, I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_I);
    expect(walk(s, w, VA, U | I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_I);
    expect(walk(s, w, VA, U | W)).toBe(true);
    expect(w.xd).toBe(true);
  });

  it('without XD a fetch succeeds and walker.xd is false', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | I)).toBe(true);
    expect(w.xd).toBe(false);
  });

  it('with NXE = 0 the XD bit is reserved: P|RSVD, without I unless SMEP', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW, XD_HI);
    const w = walkerFor(s, { nxe: false, smep: false });
    expect(walk(s, w, VA, U | I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_RSVD);
    expect(walk(s, w, VA, U | R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_RSVD);
  });

  it('NXE = 0, SMEP = 0: a user fetch from a supervisor page is P|U without I', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW);
    const w = walkerFor(s, { nxe: false, smep: false });
    expect(walk(s, w, VA, U | I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U);
  });

  it('SMEP: a supervisor fetch from a user page faults with P|I; supervisor data access and user fetch are allowed', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    const w = walkerFor(s, { smep: true });
    expect(walk(s, w, VA, I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_I);
    expect(walk(s, w, VA, R)).toBe(true);
    expect(walk(s, w, VA, W)).toBe(true);
    expect(walk(s, w, VA, U | I)).toBe(true);
    const noSmep = walkerFor(s, { smep: false });
    expect(walk(s, noSmep, VA, I)).toBe(true);
    // A supervisor page is fetchable by the supervisor with SMEP.
    map(s, VA + 0x1000n, PFN + 1, P | RW);
    expect(walk(s, w, VA + 0x1000n, I)).toBe(true);
  });

  it('SMEP applies when U/S is set at every level, not when a PDE clears it', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, 2, 0, US);
    const w = walkerFor(s, { smep: true });
    expect(walk(s, w, VA, I)).toBe(true);
  });
});

describe('reserved bits stop the walk with P|RSVD', () => {
  it('bit 51 in a PTE (MAXPHYADDR 46): P|RSVD at level 1 after 4 references, access bits kept', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW, 1 << 19);
    const w = walkerFor(s);
    expect(walk(s, w, VA, R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_RSVD);
    expect([w.level, w.refs]).toEqual([1, 4]);
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U | PF_RSVD);
    // The same bit is an address bit with MAXPHYADDR 52.
    const wide = walkerFor(s, { maxPhyAddr: 52 });
    expect(walk(s, wide, VA, R)).toBe(true);
    expect(wide.pfn).toBe(PFN + 2 ** 39);
  });

  it('PS in a PML4E: the walk stops at level 4 after one reference and sets no A bit', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, 4, PS);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_RSVD);
    expect([w.level, w.refs]).toEqual([4, 1]);
    expect(entriesLo(s, VA).map((e) => (e! & A) !== 0)).toEqual([false, false, false, false]);
  });

  it('PS in a PML5E is reserved with 5-level paging', () => {
    const s = makeSpace(5);
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, 5, PS);
    const w = walkerFor(s);
    expect(walk(s, w, VA, R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_RSVD);
    expect([w.level, w.refs]).toEqual([5, 1]);
  });

  it('a reserved bit in a PML4E wins over a missing PTE below it', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, 4, 0, 0, 1 << 18); // bit 50
    const w = walkerFor(s);
    expect(walk(s, w, VA + 0x1000n, R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_RSVD);
    expect(w.level).toBe(4);
  });

  it('bit 13 of a 2M PDE leaf: P|RSVD at level 2; bit 12 (PAT) is fine', () => {
    const s = makeSpace();
    const big = 0x40000000n;
    map(s, big, DATA_PFN, USER_RW | PAT_LARGE, 0, FRAMES_2M);
    const w = walkerFor(s);
    expect(walk(s, w, big, R)).toBe(true);
    patchEntry(s, big, 2, 1 << 13);
    expect(walk(s, w, big, R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_RSVD);
    expect([w.level, w.refs]).toEqual([2, 3]);
  });

  it('bits 13..29 of a 1G PDPTE leaf; a 1G leaf without page1G support', () => {
    const s = makeSpace();
    const big = 0x40000000n;
    map(s, big, 0x40000, USER_RW, 0, FRAMES_1G);
    expect(walk(s, walkerFor(s), big, R)).toBe(true);
    expect(walk(s, walkerFor(s, { page1G: false }), big, R)).toBe(false);
    patchEntry(s, big, 3, 1 << 29);
    const w = walkerFor(s);
    expect(walk(s, w, big, R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_RSVD);
    expect([w.level, w.refs]).toEqual([3, 2]);
  });
});

describe('protection keys (CR4.PKE, PKRU; SDM §4.6.2)', () => {
  const KEY = 3;
  const AD = 1 << (2 * KEY);
  const WD = 1 << (2 * KEY + 1);
  function pkSpace(flags = USER_RW): Space {
    const s = makeSpace();
    map(s, VA, PFN, flags, KEY << PKEY_SHIFT_HI);
    return s;
  }

  it('AD: every data access to the user page faults with PK (user and supervisor); fetches do not', () => {
    const s = pkSpace();
    const w = walkerFor(s, { pke: true });
    w.pkru = AD;
    expect(walk(s, w, VA, U | R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_PK);
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U | PF_PK);
    expect(walk(s, w, VA, R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_PK);
    expect(walk(s, w, VA, U | I)).toBe(true);
    expect(w.pkey).toBe(KEY);
  });

  it('WD: reads allowed, user writes fault with PK; supervisor writes only with CR0.WP', () => {
    const s = pkSpace();
    const w = walkerFor(s, { pke: true, wp: true });
    w.pkru = WD;
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect(walk(s, w, VA, R)).toBe(true);
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U | PF_PK);
    expect(walk(s, w, VA, W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_PK);
    const noWp = walkerFor(s, { pke: true, wp: false });
    noWp.pkru = WD;
    expect(walk(s, noWp, VA, W)).toBe(true);
    expect(walk(s, noWp, VA, U | W)).toBe(false);
    expect(noWp.errorCode).toBe(PF_P | PF_W | PF_U | PF_PK);
  });

  it('only the page key counts; without PKE the PKRU is ignored; supervisor pages have no key', () => {
    const s = pkSpace();
    const w = walkerFor(s, { pke: true });
    w.pkru = ~(AD | WD) >>> 0; // every other key denied
    expect(walk(s, w, VA, U | W)).toBe(true);
    const off = walkerFor(s, { pke: false });
    off.pkru = AD | WD;
    expect(walk(s, off, VA, U | W)).toBe(true);
    const sup = pkSpace(P | RW);
    const ws = walkerFor(sup, { pke: true });
    ws.pkru = AD | WD;
    expect(walk(sup, ws, VA, W)).toBe(true);
  });

  it('a PK violation together with a R/W violation reports both', () => {
    const s = pkSpace(P | US);
    const w = walkerFor(s, { pke: true });
    w.pkru = WD;
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U | PF_PK);
  });

  it('a PK fault sets no A/D bits', () => {
    const s = pkSpace();
    const w = walkerFor(s, { pke: true });
    w.pkru = AD;
    expect(walk(s, w, VA, U | R)).toBe(false);
    expect(w.adWrites).toBe(0);
    expect(entriesLo(s, VA).every((e) => (e! & A) === 0)).toBe(true);
  });
});

describe('effective rights: R/W and U/S ANDed over the levels, XD ORed (SDM §4.6)', () => {
  it.each([2, 3, 4])('a level-%i entry without U/S makes a U/S PTE supervisor-only', (level) => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, level, 0, US);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | R)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U);
    expect(walk(s, w, VA, W)).toBe(true);
    expect(w.rights).toBe(RW);
  });

  it.each([2, 3, 4])('a level-%i entry without R/W makes an R/W PTE read-only', (level) => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, level, 0, RW);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | W)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_W | PF_U);
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect(w.rights).toBe(US);
  });

  it.each([2, 3, 4])('XD in a level-%i entry makes the page non-executable', (level) => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    patchEntry(s, VA, level, 0, 0, XD_HI);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | I)).toBe(false);
    expect(w.errorCode).toBe(PF_P | PF_U | PF_I);
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect(w.xd).toBe(true);
  });

  it('a leaf without U/S under user tables is supervisor-only; full rights need every level', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW);
    const w = walkerFor(s);
    expect(walk(s, w, VA, R)).toBe(true);
    expect(w.rights).toBe(RW);
    map(s, VA, PFN, USER_RW);
    expect(walk(s, w, VA, R)).toBe(true);
    expect(w.rights).toBe(RW | US);
  });
});

describe('accessed and dirty bits (SDM §4.8)', () => {
  it('first read on fresh tables sets A in all four entries (4 writes), no D; a second read writes nothing', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    expect(entriesLo(s, VA).map((e) => e! & (A | D))).toEqual([0, 0, 0, 0]);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect(w.adWrites).toBe(4);
    expect(w.refs).toBe(4);
    expect(w.dirty).toBe(false);
    expect(entriesLo(s, VA).map((e) => e! & (A | D))).toEqual([A, A, A, A]);
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect(w.adWrites).toBe(0);
  });

  it('a later write sets D on the leaf only (1 write); a second write none', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    const w = walkerFor(s);
    walk(s, w, VA, U | R);
    expect(walk(s, w, VA, U | W)).toBe(true);
    expect(w.adWrites).toBe(1);
    expect(w.dirty).toBe(true);
    expect(entriesLo(s, VA).map((e) => e! & (A | D))).toEqual([A, A, A, A | D]);
    expect(walk(s, w, VA, U | W)).toBe(true);
    expect(w.adWrites).toBe(0);
  });

  it('a first write sets four A bits and D: 5 writes', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    const w = walkerFor(s);
    expect(walk(s, w, VA, W)).toBe(true);
    expect(w.adWrites).toBe(5);
    expect(entriesLo(s, VA).map((e) => e! & (A | D))).toEqual([A, A, A, A | D]);
  });

  it('bits already set are not rewritten: Linux _PAGE_TABLE tables and a young dirty PTE cost 0 writes', () => {
    const s = makeSpace(4, LINUX_PAGE_TABLE);
    map(s, VA, PFN, USER_RW | A | D);
    const w = walkerFor(s);
    expect(walk(s, w, VA, U | W)).toBe(true);
    expect(w.adWrites).toBe(0);
    expect(w.dirty).toBe(true);
  });

  it('only the entries used are touched: a neighbouring PTE in the same table keeps A clear', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    map(s, VA + 0x1000n, PFN + 1, USER_RW);
    const w = walkerFor(s);
    walk(s, w, VA, R);
    expect(readEntry(s, VA + 0x1000n, 1).lo & A).toBe(0);
    walk(s, w, VA + 0x1000n, R);
    expect(w.adWrites).toBe(1);
  });

  it.each([
    ['not present below', VA + 0x1000n, U | R],
    ['user access to supervisor page', VA, U | R],
    ['write to read-only page', VA, U | W],
  ])('a faulting walk (%s) sets no A/D bit', (_what, addr, access) => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW);
    patchEntry(s, VA, 1, 0, RW | US); // supervisor read-only
    const w = walkerFor(s);
    const before = entriesLo(s, VA);
    expect(walk(s, w, addr, access)).toBe(false);
    expect(w.adWrites).toBe(0);
    expect(entriesLo(s, VA)).toEqual(before);
  });

  it('reports G and the leaf level', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW | G);
    const w = walkerFor(s);
    walk(s, w, VA, R);
    expect(w.global).toBe(true);
    expect(w.level).toBe(1);
    expect(w.basePfn).toBe(PFN);
  });

  it('G in a non-leaf entry does not make the translation global', () => {
    const s = makeSpace();
    map(s, VA, PFN, P | RW);
    patchEntry(s, VA, 2, G);
    const w = walkerFor(s);
    walk(s, w, VA, R);
    expect(w.global).toBe(false);
  });
});

describe('2M and 1G leaves', () => {
  const BIG = 0x7f0040000000n; // 1 GiB aligned

  it('2M: pfn = base + offset within the page, 3 references, A on 3 entries, D on the PDE', () => {
    const s = makeSpace();
    const base = DATA_PFN + 0x200 * 3;
    map(s, BIG, base, USER_RW, 0, FRAMES_2M);
    const w = walkerFor(s);
    expect(walk(s, w, BIG + 0x12345n, U | W)).toBe(true);
    expect(w.level).toBe(2);
    expect(w.refs).toBe(3);
    expect(w.basePfn).toBe(base);
    expect(w.pfn).toBe(base + 0x12);
    expect(w.adWrites).toBe(4);
    expect(entriesLo(s, BIG, 2).map((e) => e! & (A | D))).toEqual([A, A, A | D]);
    expect(walk(s, w, BIG + 0x1ff000n, R)).toBe(true);
    expect(w.pfn).toBe(base + 0x1ff);
    expect(w.adWrites).toBe(0);
  });

  it('1G: pfn = base + offset within the page, 2 references', () => {
    const s = makeSpace();
    const base = 0x40000;
    map(s, BIG, base, USER_RW, 0, FRAMES_1G);
    const w = walkerFor(s);
    expect(walk(s, w, BIG + 0x12345678n, U | R)).toBe(true);
    expect(w.level).toBe(3);
    expect(w.refs).toBe(2);
    expect(w.adWrites).toBe(2);
    expect(w.basePfn).toBe(base);
    expect(w.pfn).toBe(base + 0x12345);
  });

  it('property: the accessed frame is base + (offset >> 12) for any offset in a 2M or 1G page', () => {
    const s = makeSpace();
    const base2m = DATA_PFN + 0x400;
    const base1g = 0x80000;
    map(s, BIG, base1g, USER_RW, 0, FRAMES_1G);
    map(s, BIG + (1n << 30n), base2m, USER_RW, 0, FRAMES_2M);
    const w = walkerFor(s);
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 30n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 21n) - 1n }),
        (o1, o2) => {
          expect(walk(s, w, BIG + o1, U | R)).toBe(true);
          expect(w.pfn).toBe(base1g + Number(o1 >> 12n));
          expect(walk(s, w, BIG + (1n << 30n) + o2, U | W)).toBe(true);
          expect(w.pfn).toBe(base2m + Number(o2 >> 12n));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('5-level paging', () => {
  it('a 4K page costs 5 references and 5 A writes; index bits 56:48 select the PML5E', () => {
    const s = makeSpace(5);
    const hiAddr = 0x00ab_8000_1234_5000n;
    map(s, hiAddr, PFN, USER_RW);
    map(s, VA, PFN + 1, USER_RW);
    const w = walkerFor(s);
    expect(walk(s, w, hiAddr, U | R)).toBe(true);
    expect([w.refs, w.adWrites, w.pfn]).toEqual([5, 5, PFN]);
    // A different PML5E (index 0): five fresh entries again.
    expect(walk(s, w, VA, U | R)).toBe(true);
    expect([w.refs, w.adWrites, w.pfn]).toEqual([5, 5, PFN + 1]);
    // The next page shares the PML5E, PML4E, PDPTE and PDE: only the new PTE gets A.
    map(s, hiAddr + 0x1000n, PFN + 2, USER_RW);
    expect(walk(s, w, hiAddr + 0x1000n, U | R)).toBe(true);
    expect([w.refs, w.adWrites, w.pfn]).toEqual([5, 1, PFN + 2]);
    expect(entryAt(s, hiAddr, 5)!.index).toBe(0xab);
    expect(entryAt(s, VA, 5)!.index).toBe(0);
  });

  it('2M and 1G leaves under 5 levels cost 4 and 3 references', () => {
    const s = makeSpace(5);
    map(s, 0x0100_0000_0000_0000n - 0x40000000n, 0x40000, USER_RW, 0, FRAMES_1G);
    map(s, 0x00f0_0000_0020_0000n, DATA_PFN, USER_RW, 0, FRAMES_2M);
    const w = walkerFor(s);
    expect(walk(s, w, 0x0100_0000_0000_0000n - 0x40000000n + 0x5000n, R)).toBe(true);
    expect([w.refs, w.pfn]).toEqual([3, 0x40005]);
    expect(walk(s, w, 0x00f0_0000_0020_3000n, R)).toBe(true);
    expect([w.refs, w.pfn]).toEqual([4, DATA_PFN + 3]);
  });
});

describe('walker robustness', () => {
  it('a table entry that points at a data frame is a model error, not a fault', () => {
    const s = makeSpace();
    map(s, VA, PFN, USER_RW);
    const e = entryAt(s, VA, 2)!;
    const lo = s.mem.readLo(e.table, e.index);
    s.mem.write(e.table, e.index, ((lo & 0xfff) | (DATA_PFN * 4096)) >>> 0, 0);
    expect(() => walk(s, walkerFor(s), VA, R)).toThrow(/not a page table/);
  });

  it('a root or table pointer beyond physical memory is a model error, not a not-present fault', () => {
    const mem = new PhysMem(64);
    const s = makeSpace(4, undefined, mem);
    const w = new Walker(mem, DEFAULT_MODE);
    expect(() => w.walk(1000, 0, 0x1000, R)).toThrow(/not a page table/);
    s.mem.write(s.pt.root, 0, (5000 * 4096 + (P | RW | US)) >>> 0, 0);
    expect(() => w.walk(s.pt.root, 0, 0x1000, R)).toThrow(/not a page table/);
  });
});
