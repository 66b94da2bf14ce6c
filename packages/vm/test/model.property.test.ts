/**
 * Property test of the whole guest mm: random sequences of mmap (file or anonymous, shared or
 * private, random sizes, placed top-down or MAP_FIXED at unaligned addresses and file offsets),
 * touches (reads and writes), munmap, mprotect (read-only, read-write, read-exec), madvise
 * (DONTNEED, WILLNEED and the hints), fork, exec and exit over 1-3 tasks,
 * under random kernel policies. After every step checkInvariants() must find nothing (RSS =
 * present PTEs, refcounts and mapcounts consistent, no frame leaked, page-table pages counted),
 * every access must reach the frame the page tables name (no stale TLB entry survives a change),
 * and after everything exits no page-table frame is left and only the page cache and the zero page
 * remain allocated.
 */
import fc from 'fast-check';
import { entryPfn, isLeaf, P, RW } from '@pte/arch-x86';
import {
  checkInvariants,
  getProfile,
  PG_ALLOCATED,
  populateByRead,
  populateByWrite,
  ptePfn,
  type Inode,
  type Task,
  type VmPolicy,
} from '../src/index.js';
import { entryAt, makeHarness, pageCacheFrames, touch, TOUCH_SIGNAL, type Harness } from './helpers.js';
import { anonPrefaultArb, applyMmOp, mmFilesArb, mmOpArb, type MmOp, type MmWorld } from '@pte/test-utils';

const policyArb: fc.Arbitrary<VmPolicy> = fc
  .record({
    profile: fc.constantFrom('linux-2.6.27', 'linux-3.15', 'linux-6.18', 'linux-6.18'),
    faultAround: fc.constantFrom(1, 16, 64),
    anonPrefault: anonPrefaultArb,
    prefaultOld: fc.boolean(),
  })
  .map(({ profile, ...o }) => ({ ...getProfile(profile).policy, ...o }));

/** linux-6.18 with PMD-sized folios in file 0 (at least 1024 pages, written in 2 MiB chunks). */
const pmdPolicyArb: fc.Arbitrary<VmPolicy> = fc
  .record({ faultAround: fc.constantFrom(1, 16, 64), anonPrefault: anonPrefaultArb })
  .map((o) => ({ ...getProfile('linux-6.18').policy, ...o }));
const pmdFilesArb = fc.tuple(
  fc.integer({ min: 1024 * 4096, max: 1600 * 4096 }),
  fc.integer({ min: 1, max: 1500 * 4096 }),
  fc.integer({ min: 1, max: 300 * 4096 }),
  fc.constant(512),
);

/** After a successful access: the frame reached is the one the page tables map, with the rights used. */
function checkTranslation(h: Harness, task: Task, vpn: number, pfn: number, write: boolean): string | null {
  const pmd = entryAt(h, task.mm, vpn, 2);
  if (pmd === null) return `page ${vpn}: reached frame ${pfn} without a PMD entry`;
  if ((pmd.lo & P) !== 0 && isLeaf(2, pmd.lo)) {
    const want = entryPfn(2, pmd.lo, pmd.hi) + (vpn % 512);
    if (want !== pfn) return `page ${vpn}: reached frame ${pfn}, PMD leaf maps ${want}`;
    if (write && (pmd.lo & RW) === 0) return `page ${vpn}: written through a read-only PMD leaf`;
    return null;
  }
  const pte = entryAt(h, task.mm, vpn, 1);
  if (pte === null || (pte.lo & P) === 0) return `page ${vpn}: reached frame ${pfn} but no PTE is present (stale TLB)`;
  const want = ptePfn(pte.lo, pte.hi);
  if (want !== pfn) return `page ${vpn}: reached frame ${pfn}, PTE maps ${want} (stale TLB)`;
  if (write && (pte.lo & RW) === 0) return `page ${vpn}: written through a read-only PTE (stale TLB)`;
  if (!h.k.frames.isAllocated(pfn)) return `page ${vpn}: reached free frame ${pfn}`;
  return null;
}

/** Invariants beyond checkInvariants: PhysMem's table count and the allocator's counter. */
function extraChecks(h: Harness): string[] {
  const out: string[] = [];
  let tables = 0;
  for (const mm of h.k.mms) tables += mm.ptPages + 1;
  if (h.mem.tableCount !== tables) out.push(`PhysMem holds ${h.mem.tableCount} tables, the mms count ${tables}`);
  const f = h.k.frames;
  let allocated = 0;
  for (let pfn = 1; pfn < f.frames; pfn++) if ((f.flags[pfn]! & PG_ALLOCATED) !== 0) allocated++;
  if (allocated !== f.allocated) out.push(`${allocated} frames flagged allocated, the allocator counts ${f.allocated}`);
  if (f.allocated + f.freeCount + 1 !== f.frames)
    out.push(`allocated ${f.allocated} + free ${f.freeCount} + 1 reserved != ${f.frames}`);
  return out;
}

/** Kernel counters summed over the runs of the current test: what the random sequences exercised. */
const covered: Record<string, number> = {};
function resetCoverage(): void {
  for (const key of Object.keys(covered)) delete covered[key];
}

/** A touch reached a frame the page tables do not name. */
class StaleTranslation extends Error {}

function run(
  policy: VmPolicy,
  files: readonly [number, number, number, number],
  ops: MmOp[],
  pressure = false,
  swapSlots = 0,
  frames = 1 << 11,
): void {
  // Under pressure: a small guest with page reclaim on (without swap anonymous memory is not
  // reclaimable, so a sequence may run out of memory; it then stops there and the invariants are
  // checked as usual).
  const h = makeHarness(policy, pressure ? frames : 1 << 16, pressure, swapSlots);
  const k = h.k;
  const [s0, s1, s2, chunk] = files;
  const inodes: Inode[] = [
    k.pageCache.createFile('f0', s0),
    k.pageCache.createFile('f1', s1),
    k.pageCache.createFile('f2', s2),
  ];
  populateByWrite(k, inodes[0]!, chunk, policy.maxFolioOrder); // written: folios by write() chunks
  populateByRead(k, inodes[1]!, chunk); // read back through readahead
  // inodes[2] stays cold: faults read it page by page.
  const tasks: Task[] = [h.sys.spawn()];
  // Every access must reach the frame the page tables name (no stale TLB entry survives a change).
  const world: MmWorld = {
    sys: h.sys,
    files: inodes,
    tasks,
    touch(task, first, last, write) {
      for (let vpn = first; vpn < last; vpn++) {
        const pfn = touch(h, task, vpn, write);
        if (pfn === TOUCH_SIGNAL) continue;
        const bad = checkTranslation(h, task, vpn, pfn, write);
        if (bad !== null) throw new StaleTranslation(bad);
      }
    },
  };
  const fail = (step: number, op: MmOp, what: string[]) => {
    throw new Error(`step ${step} ${JSON.stringify(op)}: ${what.slice(0, 4).join('; ')}`);
  };

  let oom = false;
  ops.forEach((op, step) => {
    if (oom) return;
    try {
      runOp(op);
    } catch (e) {
      if (e instanceof StaleTranslation) fail(step, op, [e.message]);
      if (pressure && e instanceof Error && /guest out of memory/.test(e.message)) {
        oom = true;
        covered.oom = (covered.oom ?? 0) + 1;
        return;
      }
      throw e;
    }
    const bad = [...checkInvariants(k), ...extraChecks(h)];
    if (bad.length > 0) fail(step, op, bad);
  });
  function runOp(op: MmOp): void {
    applyMmOp(world, op);
  }

  for (const t of tasks) h.sys.exit(t);
  covered.reclaimed = (covered.reclaimed ?? 0) + (k.reclaim?.reclaimed ?? 0);
  covered.refaults = (covered.refaults ?? 0) + (k.reclaim?.refaults ?? 0);
  covered.swapWrites = (covered.swapWrites ?? 0) + (k.swap?.writes ?? 0);
  if (k.swap !== null && k.swap.used !== 0)
    throw new Error(`${k.swap.used} swap slots still used after every mm exited`);
  covered.runs = (covered.runs ?? 0) + 1;
  const st = k.stats as unknown as Record<string, number>;
  for (const key of Object.keys(st)) covered[key] = (covered[key] ?? 0) + st[key]!;
  const bad = [...checkInvariants(k), ...extraChecks(h)];
  if (bad.length > 0) throw new Error(`after exit: ${bad.slice(0, 4).join('; ')}`);
  if (h.mem.tableCount !== 0) throw new Error(`${h.mem.tableCount} page-table frames left after every mm exited`);
  if (k.stats.ptAllocs !== k.stats.ptFrees)
    throw new Error(`pt.allocs ${k.stats.ptAllocs} != pt.frees ${k.stats.ptFrees}`);
  const cache = pageCacheFrames(h);
  // Frame 0 is reserved (never handed out, so not in `allocated`); the zero page is.
  if (k.frames.allocated !== cache + 1)
    throw new Error(
      `${k.frames.allocated} frames allocated after exit, expected ${cache} page-cache frames + the zero page`,
    );
  if (k.frames.frames - k.frames.freeCount !== cache + 2)
    throw new Error(`${k.frames.frames - k.frames.freeCount} frames not free after exit, expected ${cache + 2}`);
  for (let pfn = 0; pfn < k.frames.frames; pfn++) {
    if (k.frames.mapcount[pfn] !== 0) throw new Error(`frame ${pfn} still has mapcount ${k.frames.mapcount[pfn]}`);
  }
}

describe('random mm operations keep the invariants', () => {
  test('mmap / touch / munmap / mprotect / dontneed / fork / exit over 1-3 tasks', () => {
    resetCoverage();
    fc.assert(
      fc.property(
        policyArb,
        mmFilesArb,
        fc.array(mmOpArb(), { minLength: 5, maxLength: 40, size: 'max' }),
        (policy, files, ops) => {
          run(policy, files, ops);
        },
      ),
      { numRuns: 120, seed: 20240611 },
    );
    // The sequences reach every path the invariants guard.
    for (const key of [
      'faultsMinor',
      'faultsMajor',
      'faultsCow',
      'faultsWpReuse',
      'faultsWpShared',
      'faultsSharedWrite',
      'faultsSegv',
      'zeroPageMaps',
      'ptePrefaulted',
      'ptePrefaultedUnused',
      'pteCopied',
      'pteZapped',
      'forks',
      'tlbFlushPages',
      'tlbFlushFull',
    ]) {
      expect([key, covered[key]! > 0]).toEqual([key, true]);
    }
  });

  test('the same with PMD-mapped file folios (linux-6.18, 2 MiB folios, aligned mappings)', () => {
    resetCoverage();
    fc.assert(
      fc.property(
        pmdPolicyArb,
        pmdFilesArb,
        fc.array(mmOpArb({ pmd: true }), { minLength: 5, maxLength: 40, size: 'max' }),
        (policy, files, ops) => {
          run(policy, files, ops);
        },
      ),
      { numRuns: 100, seed: 7 },
    );
    expect(covered.pmdMapped).toBeGreaterThan(0);
    expect(covered.faultsCow).toBeGreaterThan(0);
    expect(covered.execs).toBeGreaterThan(0);
  });

  test('under memory pressure: a small guest with page reclaim on', () => {
    resetCoverage();
    fc.assert(
      fc.property(
        policyArb,
        mmFilesArb,
        fc.array(mmOpArb(), { minLength: 5, maxLength: 40, size: 'max' }),
        (policy, files, ops) => {
          run(policy, files, ops, true);
        },
      ),
      { numRuns: 80, seed: 4242 },
    );
    // Reclaim ran and pages came back, and most sequences did not end out of memory.
    expect(covered.reclaimed).toBeGreaterThan(0);
    expect(covered.refaults).toBeGreaterThan(0);
    expect(covered.oom ?? 0).toBeLessThan(40);
  });

  test('under memory pressure with a swap device: anonymous pages are swapped out and back in', () => {
    resetCoverage();
    fc.assert(
      fc.property(
        policyArb,
        mmFilesArb,
        fc.array(mmOpArb(), { minLength: 5, maxLength: 40, size: 'max' }),
        (policy, files, ops) => {
          run(policy, files, ops, true, 4096, 1 << 10);
        },
      ),
      { numRuns: 80, seed: 4243 },
    );
    expect(covered.swapWrites).toBeGreaterThan(0);
    expect(covered.faultsSwap).toBeGreaterThan(0);
    expect(covered.oom ?? 0).toBeLessThan(20);
  });

  test('a fixed long sequence on every profile', () => {
    for (const profile of ['linux-2.6.27', 'linux-3.15', 'linux-6.18']) {
      const ops = fc.sample(fc.array(mmOpArb(), { minLength: 150, maxLength: 150 }), { numRuns: 1, seed: 99 })[0]!;
      run(getProfile(profile).policy, [700 * 4096 + 123, 1100 * 4096, 200 * 4096, 64], ops);
    }
  });
});
