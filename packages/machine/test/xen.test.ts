/**
 * Xen PV end to end: the guest kernel (@pte/vm) on the xen-pv platform, counted through the
 * Machine's published counters (xen.*). What hypervisors.md §7.1–7.2 says the structure must be
 * (hypercalls per fault, the pin batch of fork, the unpin and native zap of exit), refusals under
 * --check, the micro/mmap-touch matrix against native, and a random-operation property test with
 * both invariant checkers after every step.
 */
import fc from 'fast-check';
import { PteError } from '@pte/core';
import { frameHi, frameLo, isLeaf, LINUX_PAGE_TABLE, P, RW, US } from '@pte/arch-x86';
import {
  checkInvariants,
  getProfile,
  populateByRead,
  populateByWrite,
  pteTableFor,
  VM_READ,
  VM_WRITE,
  type Mm,
  type Task,
  type VmPolicy,
} from '@pte/vm';
import { parsePattern, type PatternSpec } from '@pte/workloads';
import type { XenPvMmu } from '@pte/xen';
import { Machine, resolveRunCosts, type PlatformName } from '../src/index.js';
import { hypervisorOf } from '../src/platforms/xen-pv.js';
import { applyMmOp, mmOpArb, type MmOp, type MmWorld } from '@pte/test-utils';

const MiB = 2 ** 20;
const SEQ: PatternSpec = { kind: 'seq' };

function machine(
  platform: PlatformName,
  profile: string,
  overrides: Partial<VmPolicy> = {},
  memBytes = 64 * MiB,
): Machine {
  const p = getProfile(profile);
  return new Machine({
    platform,
    profile: p,
    policy: { ...p.policy, ...overrides },
    memBytes,
    seed: 1,
    costs: resolveRunCosts({}),
    check: true,
  });
}

/** The xen.* counters a test pins down, by short name. */
const XEN_KEYS = {
  hypercalls: 'xen.hypercalls',
  mmu_update: 'xen.op.mmu_update',
  update_va_mapping: 'xen.op.update_va_mapping',
  mmuext_op: 'xen.op.mmuext_op',
  multicall: 'xen.op.multicall',
  update_entries: 'xen.update_entries',
  multicall_entries: 'xen.multicall_entries',
  validated_entries: 'xen.validated_entries',
  ptwr_emulations: 'xen.ptwr_emulations',
  pf_bounces: 'xen.pf_bounces',
  pins: 'xen.pins',
  unpins: 'xen.unpins',
  pin_batches: 'xen.pin_batches',
  refused: 'xen.refused',
} as const;
type XenFigures = Record<keyof typeof XEN_KEYS, number>;

/** Counters over `fn` (startMeasurement … measuredCounters). */
function measure(m: Machine, fn: () => void): Readonly<Record<string, number>> {
  m.startMeasurement();
  fn();
  return m.measuredCounters();
}

/** The Xen figures of a counter difference, zeros included. */
function xenOf(c: Readonly<Record<string, number>>): XenFigures {
  const out = {} as XenFigures;
  for (const [short, key] of Object.entries(XEN_KEYS)) out[short as keyof XenFigures] = c[key] ?? 0;
  return out;
}

/** Zeros but for `fields`: the exact expectation. */
function xenOnly(fields: Partial<XenFigures>): XenFigures {
  const out = {} as XenFigures;
  for (const short of Object.keys(XEN_KEYS)) out[short as keyof XenFigures] = 0;
  return { ...out, ...fields };
}

/** The count of every HYPERVISOR_mmu_update the guest issues directly. */
function spyMmuUpdates(m: Machine): number[] {
  const xen = hypervisorOf(m);
  const counts: number[] = [];
  const orig = xen.mmuUpdate.bind(xen);
  xen.mmuUpdate = (q, first, count) => {
    counts.push(count);
    return orig(q, first, count);
  };
  return counts;
}

/** Entries of every multicall. */
function spyMulticalls(m: Machine): number[] {
  const xen = hypervisorOf(m);
  const sizes: number[] = [];
  const orig = xen.multicall.bind(xen);
  xen.multicall = (q) => {
    sizes.push(q.entries);
    return orig(q);
  };
  return sizes;
}

/** How __xen_mc_entry splits `entries` zero/24-byte entries of a pin batch: MC_BATCH (32) per multicall. */
function chunks(entries: number): number[] {
  const out: number[] = [];
  for (let left = entries; left > 0; left -= 32) out.push(Math.min(32, left));
  return out;
}

/** Page-table pages of `mm` by level (1..4), read from its tables as the kernel does. */
function tablesOf(m: Machine, mm: Mm): number[] {
  const k = m.kernel;
  const byLevel = [0, 0, 0, 0, 0];
  const walk = (table: number, level: number) => {
    byLevel[level]!++;
    if (level === 1) return;
    for (let i = 0; i < 512; i++) {
      const lo = k.readLo(table, i);
      if ((lo & P) === 0 || isLeaf(level, lo)) continue;
      walk(k.frameOf(level, lo, k.readHi(table, i)), level - 1);
    }
  };
  walk(mm.root, 4);
  return byLevel;
}

/** No frame typed, referenced or pinned as a page table; every guest frame back to its one writable alias. */
function xenIsClean(m: Machine): string[] {
  const x = hypervisorOf(m);
  const out: string[] = [];
  for (let f = 0; f < x.mem.frames; f++) {
    if (x.ptRefs[f] !== 0 || x.ptType[f] !== 0 || x.pinned[f] !== 0)
      out.push(`frame 0x${f.toString(16)}: type ${x.ptType[f]}, refs ${x.ptRefs[f]}, pinned ${x.pinned[f]}`);
  }
  for (let pfn = 0; pfn < x.guestFrames; pfn++) {
    if (x.directMapRW[pfn] !== 1 || x.writable[x.p2m[pfn]!] !== 1)
      out.push(`pfn ${pfn}: direct map RW ${x.directMapRW[pfn]}, writable ${x.writable[x.p2m[pfn]!]}`);
  }
  return [...out.slice(0, 5), ...x.checkInvariants()];
}

describe('one demand fault (hypervisors.md §7.1)', () => {
  /**
   * A private read-only mapping of `pages` pages of a cached file (written `chunk` pages at a
   * time); the page tables are made by a first fault at `at`, its PTEs dropped (MADV_DONTNEED
   * keeps the tables), then the same fault again is measured.
   */
  function faultOnce(m: Machine, pages: number, filePages: number, chunk: number, at: number) {
    const t = m.spawn();
    const f = m.createFile('f', filePages * 4096);
    populateByWrite(m.kernel, f, chunk, m.kernel.policy.maxFolioOrder);
    const v = m.sys.mmap(t, { pages, prot: VM_READ, shared: false, file: f });
    m.touch(t, { start: v.start + at, pages: 1 }, SEQ, 'read', 1);
    m.sys.madvise(t, v.start, pages, 'dontneed');
    const counts = spyMmuUpdates(m);
    const c = measure(m, () => m.touch(t, { start: v.start + at, pages: 1 }, SEQ, 'read', 1));
    expect(c['faults.total']).toBe(1);
    expect(c['pt.allocs']).toBe(0);
    return { c, counts, x: xenOf(c) };
  }

  it('linux-6.18, a 16-page folio, fault-around 16: set_ptes in lazy mode is ONE mmu_update of 16 entries, no multicall', () => {
    const m = machine('xen-pv', 'linux-6.18', { maxFolioOrder: 4, faultAround: 16 });
    const { c, counts, x } = faultOnce(m, 512, 512, 16, 0);
    expect(c['pte.populated']).toBe(16);
    expect(counts).toEqual([16]);
    expect(x).toEqual(xenOnly({ hypercalls: 1, mmu_update: 1, update_entries: 16, pf_bounces: 1 }));
  });

  it('linux-6.18, order-0 page cache, fault-around 16, faultAroundLazy: the whole window is ONE mmu_update of 16 entries', () => {
    const m = machine('xen-pv', 'linux-6.18', { maxFolioOrder: 0, faultAround: 16, faultAroundLazy: true });
    const { c, counts, x } = faultOnce(m, 512, 512, 16, 0);
    expect(c['pte.populated']).toBe(16);
    expect(counts).toEqual([16]);
    expect(x).toEqual(xenOnly({ hypercalls: 1, mmu_update: 1, update_entries: 16, pf_bounces: 1 }));
  });

  it('linux-6.18 as Linux is, order-0 page cache, fault-around 16: 16 folios = 16 set_ptes(nr=1) = 16 mmu_update hypercalls', () => {
    // filemap_map_pages() takes no lazy section of its own: filemap_map_order0_folio() calls
    // set_pte_range(…, 1, …) per page, and each set_ptes() enters and leaves lazy mode around one PTE.
    const m = machine('xen-pv', 'linux-6.18', { maxFolioOrder: 0, faultAround: 16 });
    const { c, counts, x } = faultOnce(m, 512, 512, 16, 0);
    expect(c['pte.populated']).toBe(16);
    expect(counts).toEqual(Array(16).fill(1));
    expect(x).toEqual(xenOnly({ hypercalls: 16, mmu_update: 16, update_entries: 16, pf_bounces: 1 }));
  });

  it('40 PTEs in one lazy set_ptes (a 64-page folio clipped by a 40-page VMA): two mmu_update hypercalls, 31 + 9', () => {
    const m = machine('xen-pv', 'linux-6.18', { maxFolioOrder: 6, faultAround: 64 });
    const { c, counts, x } = faultOnce(m, 40, 64, 64, 0);
    expect(c['pte.populated']).toBe(40);
    expect(counts).toEqual([31, 9]);
    expect(x).toEqual(xenOnly({ hypercalls: 2, mmu_update: 2, update_entries: 40, pf_bounces: 1 }));
  });

  it('the same 40 with faultAroundLazy over order-0 pages: 31 + 9 too', () => {
    const m = machine('xen-pv', 'linux-6.18', { maxFolioOrder: 0, faultAround: 64, faultAroundLazy: true });
    const { counts, x } = faultOnce(m, 40, 64, 64, 0);
    expect(counts).toEqual([31, 9]);
    expect(x).toEqual(xenOnly({ hypercalls: 2, mmu_update: 2, update_entries: 40, pf_bounces: 1 }));
  });

  it('linux-3.15 (set_pte_at per page, no lazy set_ptes): 16 prefaulted PTEs are 16 mmu_update hypercalls', () => {
    const m = machine('xen-pv', 'linux-3.15');
    const { c, counts, x } = faultOnce(m, 512, 512, 16, 0);
    expect(c['pte.populated']).toBe(16);
    expect(counts).toEqual(Array(16).fill(1));
    expect(x).toEqual(xenOnly({ hypercalls: 16, mmu_update: 16, update_entries: 16, pf_bounces: 1 }));
  });
});

describe('linux-2.6.27: one update_va_mapping per demand fault (hypervisors.md §2.2, §7.1)', () => {
  it('counts update_va_mapping during a file read workload against faults, with and without table allocation', () => {
    const m = machine('xen-pv', 'linux-2.6.27');
    expect(m.kernel.policy.faultAround).toBe(1);
    const t = m.spawn();
    const f = m.createFile('lib', 1024 * 4096);
    populateByWrite(m.kernel, f, 256, 0);
    const v = m.sys.mmap(t, { pages: 1024, prot: VM_READ, shared: false, file: f }); // 2 MiB-aligned: 2 PTE pages
    const first = measure(m, () => m.touch(t, v, SEQ, 'read', 1));
    const faults = first['faults.total']!;
    expect(faults).toBe(1024);
    expect(first['pte.populated']).toBe(1024);
    // The first touches also build the tables: L3, L2 and two PTE pages.
    const [, l1, l2, l3] = tablesOf(m, t.mm);
    expect([l1, l2, l3]).toEqual([2, 1, 1]);
    const newTables = first['pt.allocs']!;
    expect(newTables).toBe(4);
    // update_va_mapping = one per fault + one per new table: xen_alloc_ptpage makes the table's
    // direct-map alias read-only (for an upper table a lone update_va_mapping hypercall, for a PTE
    // page an entry of a multicall with its MMUEXT_PIN_L1_TABLE). Each new table is hooked into its
    // pinned parent with one mmu_update; the first switch to the mm is MMUEXT_NEW_BASEPTR.
    expect(xenOf(first)).toEqual(
      xenOnly({
        update_va_mapping: faults + newTables,
        hypercalls:
          faults +
          2 /* lone uvm: L3, L2 */ +
          2 /* multicalls: PTE pages */ +
          newTables /* mmu_update */ +
          1 /* NEW_BASEPTR */,
        multicall: 2,
        multicall_entries: 4,
        mmu_update: newTables,
        mmuext_op: 2 /* PIN_L1 */ + 1 /* NEW_BASEPTR */,
        update_entries: faults + newTables + newTables,
        pins: 2,
        pf_bounces: faults,
        validated_entries: 0, // each table was empty when pinned or hooked
      }),
    );
    // Once the tables exist: exactly one update_va_mapping hypercall per fault and nothing else.
    m.sys.madvise(t, v.start, v.pages, 'dontneed');
    const again = measure(m, () => m.touch(t, v, parsePattern('random:0.5'), 'read', 1));
    expect(again['pt.allocs']).toBe(0);
    const n = again['faults.total']!;
    expect(n).toBe(512);
    expect(xenOf(again)).toEqual(xenOnly({ hypercalls: n, update_va_mapping: n, update_entries: n, pf_bounces: n }));
  });
});

describe('fork: one pin batch (hypervisors.md §2.4, §7.2)', () => {
  it.each([[4], [20]])('a parent with %i PTE pages of written anonymous memory', (k1) => {
    const m = machine('xen-pv', 'linux-3.15');
    const t = m.spawn();
    const pages = k1 * 512;
    const v = m.sys.mmap(t, { pages, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    const sizes = spyMulticalls(m);
    let child: Task | null = null;
    const c = measure(m, () => {
      m.kernel.switchMm(t.mm);
      child = m.sys.fork(t);
    });
    const byLevel = tablesOf(m, child!.mm);
    const K1 = byLevel[1]!;
    const K = byLevel[1]! + byLevel[2]! + byLevel[3]! + byLevel[4]!;
    expect([K1, K]).toEqual([k1, k1 + 3]);
    expect(K).toBe(child!.mm.ptPages + 1);
    // The code's formula: a direct-map RO update per table page, a PIN_L1 per PTE page, one PIN_L4.
    const entries = K + K1 + 1;
    expect(sizes).toEqual(chunks(entries));
    expect(c['pte.copied']).toBe(pages);
    expect(xenOf(c)).toEqual(
      xenOnly({
        pin_batches: 1,
        multicall: sizes.length,
        multicall_entries: entries,
        // the pin multicalls, and the parent's flush_tlb_mm after write-protecting (TLB_FLUSH_LOCAL)
        hypercalls: sizes.length + 1,
        update_va_mapping: K,
        update_entries: K,
        mmuext_op: K1 + 1 + 1,
        pins: K1 + 1,
        // PIN_L1 validates each copied PTE once, PIN_L4 the K1 + 2 upper entries
        validated_entries: pages + K1 + 2,
        // the child's copies are plain stores into its unpinned tables; the parent's COW
        // write-protects (ptep_set_wrprotect = clear_bit) trap on its pinned tables
        ptwr_emulations: pages,
      }),
    );
    // hypervisors.md §2.4/§7.2: "≈ (#PT pages + 2) multicall entries" (PIN_L4 of the kernel and of
    // the user pgd). The model pins every PTE page as well (split ptlocks, xen_pin_page) and has no
    // user pgd: K1 − 1 entries more.
    expect(entries - (K + 2)).toBe(K1 - 1);
    expect(hypervisorOf(m).pinned[m.pv.mfn(child!.mm.root)]).toBe(1);
    expect(hypervisorOf(m).checkInvariants()).toEqual([]);
  });
});

describe('exit: unpin, then a native zap (hypervisors.md §2.4, §7.2)', () => {
  it.each([
    [8, 'seq'],
    [8, 'stride:512'],
    [20, 'seq'],
    [20, 'stride:512'],
  ])('%i PTE pages, touched %s: hypercalls depend on the tables, not on the PTEs', (k1, pattern) => {
    const m = machine('xen-pv', 'linux-3.15');
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: k1 * 512, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, parsePattern(pattern), 'write', 1);
    const n = pattern === 'seq' ? k1 * 512 : k1;
    const [, l1, l2, l3, l4] = tablesOf(m, t.mm);
    const K = l1! + l2! + l3! + l4!;
    expect([l1, K]).toEqual([k1, k1 + 3]);
    const sizes = spyMulticalls(m);
    const c = measure(m, () => m.sys.exit(t));
    expect(c['pte.zapped']).toBe(n);
    // xen_pgd_unpin: UNPIN of the pgd, per table a direct-map RW, per PTE page an UNPIN.
    const entries = 1 + K + k1;
    expect(sizes).toEqual(chunks(entries));
    expect(xenOf(c)).toEqual(
      xenOnly({
        hypercalls: sizes.length + 1, // + the full-mm TLB flush (MMUEXT_TLB_FLUSH_LOCAL)
        multicall: sizes.length,
        multicall_entries: entries,
        update_va_mapping: K,
        update_entries: K,
        mmuext_op: k1 + 1 + 1,
        unpins: k1 + 1,
      }),
    );
    expect(c['pte.writes']).toBeGreaterThanOrEqual(n);
    expect(xenIsClean(m)).toEqual([]);
  });

  it('for contrast, the same zap while pinned (MADV_DONTNEED) is batched mmu_update: ⌈512/31⌉ = 17 per full PTE page', () => {
    const m = machine('xen-pv', 'linux-3.15');
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 8 * 512, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    const counts = spyMmuUpdates(m);
    const c = measure(m, () => m.sys.madvise(t, v.start, v.pages, 'dontneed'));
    expect(c['pte.zapped']).toBe(8 * 512);
    expect(counts).toEqual(Array.from({ length: 8 }, () => [...Array(16).fill(31), 16]).flat());
    expect(xenOf(c)).toEqual(
      xenOnly({ hypercalls: 8 * 17 + 1, mmu_update: 8 * 17, update_entries: 8 * 512, mmuext_op: 1 }),
    );
    m.sys.exit(t);
    expect(xenIsClean(m)).toEqual([]);
  });
});

describe('refusals through the machine (check: Xen strict)', () => {
  it('a writable mapping of a page-table frame is refused with a model PteError, by mmu_update and by update_va_mapping of the direct map', () => {
    const m = machine('xen-pv', 'linux-6.18');
    expect(hypervisorOf(m).strict).toBe(true);
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 16, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    const pt = pteTableFor(m.kernel, t.mm, v.start, false);
    const rootM = m.pv.mfn(t.mm.root);
    const lo = (frameLo(rootM) + (P | RW | US)) >>> 0;
    const hi = frameHi(rootM);
    const errors: PteError[] = [];
    for (const fn of [
      () => m.pv.setPte(pt, 100, lo, hi),
      () => hypervisorOf(m).updateVaMapping(-1 - pt, 0, RW, 0, 0, 0, 0),
      () => hypervisorOf(m).updateVaMapping(-1 - t.mm.root, 0, RW, 0, 0, 0, 0),
    ]) {
      try {
        fn();
      } catch (e) {
        errors.push(e as PteError);
      }
    }
    expect(errors.map((e) => [e instanceof PteError, e.code])).toEqual([
      [true, 'model'],
      [true, 'model'],
      [true, 'model'],
    ]);
    expect(hypervisorOf(m).refused).toBe(3);
    expect(m.kernel.readLo(pt, 100)).toBe(0);
    // The same entry read-only is fine (how the guest maps its own tables).
    m.pv.setPte(pt, 100, (lo & ~RW) >>> 0, hi);
    m.pv.setPte(pt, 100, 0, 0);
    expect(() => m.verify('after the refusals')).not.toThrow();
    m.sys.exit(t);
    expect(xenIsClean(m)).toEqual([]);
  });

  it('a page table hooked while its direct map is writable is refused (no pin of a frame with a writable mapping)', () => {
    const m = machine('xen-pv', 'linux-6.18');
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 16, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    // A frame the guest made a table behind the backend's back (no xen_alloc_ptpage: its
    // direct-map alias is still writable), hooked into the pgd's empty slot 5 as a PUD page.
    const pfn = m.kernel.frames.allocOrFail(0);
    const mf = m.pv.mfn(pfn);
    m.mem.makeTable(mf);
    expect(m.kernel.readLo(t.mm.root, 5)).toBe(0);
    expect(() => m.pv.setUpper(4, t.mm.root, 5, (frameLo(mf) + LINUX_PAGE_TABLE) >>> 0, frameHi(mf))).toThrow(
      /still has 1 writable mapping/,
    );
    expect(m.kernel.readLo(t.mm.root, 5)).toBe(0);
    expect(hypervisorOf(m).refused).toBe(1);
    // A strict refusal ends a run; this test goes on, so drop the refused request the throw left in
    // the guest's multicall buffer.
    (m.pv as XenPvMmu).q.reset();
    m.mem.releaseTable(mf);
    m.kernel.frames.free(pfn, 0);
    m.sys.exit(t);
    expect(xenIsClean(m)).toEqual([]);
  });
});

describe("micro/mmap-touch on xen-pv: Xen changes the costs, not the guest's decisions", () => {
  const PATTERNS = ['seq', 'reverse', 'stride:17', 'random:0.25', 'sparse:0.25', 'hotset:0.1:3', 'per2m'];
  const COMBOS: [backing: 'file' | 'anon', access: 'read' | 'write', share: 'shared' | 'private'][] = [];
  for (const backing of ['file', 'anon'] as const)
    for (const access of ['read', 'write'] as const)
      for (const share of ['shared', 'private'] as const) COMBOS.push([backing, access, share]);

  /** apps/pte-lab micro/mmap-touch's run(), 8 MiB, cache=written with 1 MiB writes, check on. */
  function run(
    platform: PlatformName,
    profile: string,
    pattern: string,
    backing: 'file' | 'anon',
    access: 'read' | 'write',
    share: 'shared' | 'private',
  ) {
    // Native may PMD-map PMD-sized file folios; a PV guest cannot (no machine-contiguous 2 MiB), so
    // compare with native without it (1 MiB writes make no PMD-sized folio anyway).
    const m = machine(platform, profile, { pmdMapFileFolios: false });
    const k = m.kernel;
    const task = m.spawn();
    const pages = 2048;
    const file = backing === 'file' ? m.createFile('data', pages * 4096) : null;
    if (file !== null) populateByWrite(k, file, 256, k.policy.maxFolioOrder);
    const write = access === 'write';
    const vma = m.sys.mmap(task, {
      pages,
      prot: VM_READ | (write || backing === 'anon' ? VM_WRITE : 0),
      shared: share === 'shared',
      file,
    });
    m.verify('after setup');
    m.startMeasurement();
    m.touch(task, vma, parsePattern(pattern), access, 1);
    m.sys.exit(task);
    m.verify('after exit');
    return { m, c: m.measuredCounters() };
  }

  describe.each(['linux-2.6.27', 'linux-3.15', 'linux-6.18'])('%s', (profile) => {
    it.each(PATTERNS)('pattern %s: file/anon × read/write × shared/private', (pattern) => {
      for (const [backing, access, share] of COMBOS) {
        const what = `${profile} ${pattern} ${backing} ${access} ${share}`;
        const native = run('native', profile, pattern, backing, access, share);
        const xen = run('xen-pv', profile, pattern, backing, access, share);
        const x = xen.c;
        expect([what, x['xen.refused'] ?? 0]).toEqual([what, 0]);
        expect([what, xenIsClean(xen.m)]).toEqual([what, []]);
        // Every guest-side counter is the native one (faults, populated, prefaulted, zapped, TLB, IO, ...).
        const guest = (c: Readonly<Record<string, number>>) =>
          Object.fromEntries(Object.entries(c).filter(([key]) => !key.startsWith('xen.')));
        expect([what, guest(x)]).toEqual([what, guest(native.c)]);
        expect(x['faults.total']).toBeGreaterThan(0);
        // Each #PF went through Xen. Every PTE page was pinned when allocated (the pgd at spawn, before
        // the measurement) and exit unpinned them all, the pgd included.
        expect([what, x['xen.pf_bounces'], x['xen.unpins']]).toEqual([
          what,
          x['faults.total'],
          1 + (x['xen.pins'] ?? 0),
        ]);
        expect([what, x['xen.pin_batches'] ?? 0]).toEqual([what, 0]);
        expect(xen.m.ledger.total()).toBeGreaterThan(native.m.ledger.total());
      }
    });
  });
});

// -------------------------------------------------------------------------------------------------
// Property test: random operations over 1–3 tasks on xen-pv with --check.

const policyArb: fc.Arbitrary<{ profile: string; over: Partial<VmPolicy> }> = fc.record({
  profile: fc.constantFrom('linux-2.6.27', 'linux-3.15', 'linux-6.18'),
  over: fc.record({ faultAround: fc.constantFrom(1, 16, 64), faultAroundLazy: fc.boolean() }),
});

/**
 * The shared random operations, without MADV_HUGEPAGE: a PV guest gets no THP while native would,
 * and the test compares the guest's decisions on both.
 */
const xenOpArb = mmOpArb({ advice: ['normal', 'random', 'sequential', 'willneed', 'nohugepage'] });

/** Run `ops` on a machine of `platform`; return its guest counters (xen.* left out). */
function runOps(
  platform: PlatformName,
  policy: { profile: string; over: Partial<VmPolicy> },
  ops: MmOp[],
): { m: Machine; c: Record<string, number> } {
  const m = machine(platform, policy.profile, policy.over);
  const k = m.kernel;
  const files = [m.createFile('f0', 700 * 4096 + 123), m.createFile('f1', 1100 * 4096)];
  populateByWrite(k, files[0]!, 64, k.policy.maxFolioOrder);
  populateByRead(k, files[1]!, 64);
  m.startMeasurement();
  const tasks: Task[] = [m.spawn()];
  const world: MmWorld = {
    sys: m.sys,
    files,
    tasks,
    touch: (task, first, last, write) =>
      m.touch(task, { start: first, pages: last - first }, SEQ, write ? 'write' : 'read', 1),
    switchTo: (task) => k.switchMm(task.mm), // as Machine.runProgram forks
  };
  ops.forEach((op, step) => {
    applyMmOp(world, op);
    // Both checkers: the vm's invariants and Xen's (Machine.verify with check on).
    m.verify(`step ${step} ${JSON.stringify(op)}`);
  });
  for (const t of tasks) m.sys.exit(t);
  m.verify('after every exit');
  const c = m.measuredCounters();
  return {
    m,
    c: Object.fromEntries(Object.entries(c).filter(([key]) => !key.startsWith('xen.') && key !== 'pte.writes')),
  };
}

describe('random operations on xen-pv keep both invariant checkers green', () => {
  const covered: Record<string, number> = {};

  test('the shared random operations (mmap / touch / munmap / mprotect / madvise / fork / exec / exit over 1-3 tasks), against native', () => {
    fc.assert(
      fc.property(policyArb, fc.array(xenOpArb, { minLength: 5, maxLength: 40 }), (policy, ops) => {
        const xen = runOps('xen-pv', policy, ops);
        const x = xen.m.measuredCounters();
        expect(x['xen.refused'] ?? 0).toBe(0);
        expect(checkInvariants(xen.m.kernel)).toEqual([]);
        expect(xen.m.kernel.mms.size).toBe(0);
        expect(xen.m.mem.tableCount).toBe(0);
        // No frame is still typed as a page table, pinned, or referenced; the direct map is whole.
        expect(xenIsClean(xen.m)).toEqual([]);
        // The guest took the same decisions as on native hardware.
        const native = runOps('native', policy, ops);
        expect(xen.c).toEqual(native.c);
        for (const key of [
          'xen.pin_batches',
          'xen.unpins',
          'xen.ptwr_emulations',
          'xen.op.mmu_update',
          'xen.op.multicall',
          'xen.op.update_va_mapping',
        ]) {
          covered[key] = (covered[key] ?? 0) + (x[key] ?? 0);
        }
        for (const key of ['faults.cow', 'pte.copied', 'pte.zapped', 'pt.frees', 'proc.forks', 'proc.execs'])
          covered[key] = (covered[key] ?? 0) + (x[key] ?? 0);
      }),
      { numRuns: 150, seed: 20251122 },
    );
    // The sequences reach every Xen path the checks guard.
    for (const [key, n] of Object.entries(covered)) expect([key, n > 0]).toEqual([key, true]);
  });
});

describe('free_pgtables under Xen PV', () => {
  // free_pgtables() clears a PMD (PUD) entry before it releases the table below it, as Linux's
  // free_pte_range() (pmd_clear, then pte_free_tlb) and free_pmd_range() do: on a pinned mm Xen
  // holds the upper table's type reference on each lower table until that entry is gone.
  test('munmap of the only mapping of a pinned mm frees its PMD and PUD pages without a refusal', () => {
    const m = machine('xen-pv', 'linux-6.18');
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 64, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    m.sys.munmap(t, v.start, v.pages);
    expect(hypervisorOf(m).refused).toBe(0);
    m.sys.exit(t);
    expect(xenIsClean(m)).toEqual([]);
  });
});
