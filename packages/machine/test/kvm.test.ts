/**
 * KVM end to end: the guest kernel (@pte/vm) on kvm-shadow and kvm-tdp, counted through the
 * Machine's published counters (kvm.*). What hypervisors.md §3.5, §3.8, §3.9 and §7.3–7.4 say
 * the structure must be (exits per fault with and without prefetch, the accessed-bit rule, unsync
 * and sync, TDP's EPT violations and 2D walk), the guest's TLB flushes as the sync points, a
 * random-operation property test with the vm invariants and the shadow MMU's consistency check
 * after every step, and the micro/mmap-touch matrix against native.
 */
import fc from 'fast-check';
import { A, ACCESS_USER, ACCESS_WRITE, D, entryPfn, isLeaf, P, RW, TRANSLATE_PF } from '@pte/arch-x86';
import {
  getProfile,
  populateByRead,
  populateByWrite,
  vpnHi,
  vpnIndex,
  vpnLo,
  VM_READ,
  VM_WRITE,
  type AnonPrefault,
  type Inode,
  type Mm,
  type Task,
  type VmPolicy,
} from '@pte/vm';
import { parsePattern, type PatternSpec } from '@pte/workloads';
import { Machine, resolveRunCosts, type PlatformName } from '../src/index.js';
import { KvmShadowPlatform, shadowOf } from '../src/platforms/kvm-shadow.js';
import { anonPrefaultArb, applyMmOp, mmOpArb, type MmOp, type MmWorld } from '@pte/test-utils';

const MiB = 2 ** 20;
const SEQ: PatternSpec = { kind: 'seq' };

function machine(
  platform: PlatformName,
  profile: string,
  overrides: Partial<VmPolicy> = {},
  memBytes = 64 * MiB,
  seed = 1,
  hostHuge = false,
): Machine {
  const p = getProfile(profile);
  return new Machine({
    platform,
    profile: p,
    policy: { ...p.policy, ...overrides },
    memBytes,
    seed,
    costs: resolveRunCosts({}),
    check: true,
    hostBacked: false, // a fresh guest: the EPT violation tests count first touches
    ...(hostHuge ? { hostHuge } : {}),
  });
}

/** Counters over `fn` (startMeasurement … measuredCounters). */
function measure(m: Machine, fn: () => void): Readonly<Record<string, number>> {
  m.startMeasurement();
  fn();
  return m.measuredCounters();
}

/** A counter, 0 when absent. */
function n(c: Readonly<Record<string, number>>, key: string): number {
  return c[key] ?? 0;
}

/** Every kvm-shadow exit has exactly one cause. */
function exitCauses(c: Readonly<Record<string, number>>): number {
  return (
    n(c, 'kvm.injected_pf') +
    n(c, 'kvm.shadow_faults') +
    n(c, 'kvm.emulated_writes') +
    n(c, 'kvm.unsyncs') +
    n(c, 'kvm.invlpg_exits') +
    n(c, 'kvm.cr3_exits') +
    n(c, 'kvm.ad_syncs') +
    n(c, 'kvm.io_kicks')
  );
}

/** A private read-only mapping of a cached `pages`-page file (order-0 page cache), not yet touched. */
function cachedFile(m: Machine, pages: number): { t: Task; start: number } {
  const t = m.spawn();
  const f = m.createFile('data', pages * 4096);
  populateByWrite(m.kernel, f, 256, 0);
  const v = m.sys.mmap(t, { pages, prot: VM_READ, shared: false, file: f });
  return { t, start: v.start };
}

/** The leaf entry of `vpn` in `mm`'s guest tables, or null. */
function gpte(m: Machine, mm: Mm, vpn: number): { lo: number; hi: number; table: number; level: number } | null {
  const k = m.kernel;
  let table = mm.root;
  for (let l: number = k.levels; l >= 1; l--) {
    const idx = vpnIndex(vpn, l);
    const lo = k.readLo(table, idx);
    const hi = k.readHi(table, idx);
    if ((lo & P) === 0) return null;
    if (l === 1 || isLeaf(l, lo)) return { lo, hi, table, level: l };
    table = k.frameOf(l, lo, hi);
  }
  return null;
}

/** The leaf spte of `vpn` in the shadow tables the CPU has loaded, or null when no shadow PTE page is reached. */
function spte(m: Machine, vpn: number): { lo: number; hi: number } | null {
  const s = shadowOf(m).smem;
  let t = m.mmu.root;
  for (let l = 4; l >= 2; l--) {
    const idx = vpnIndex(vpn, l);
    const lo = s.readLo(t, idx);
    if ((lo & P) === 0) return null;
    t = entryPfn(l, lo, s.readHi(t, idx));
  }
  return { lo: s.readLo(t, vpn % 512), hi: s.readHi(t, vpn % 512) };
}

/**
 * What the CPU reaches for `vpn` now, KVM fixing its shadow tables on the way (the hardware path of
 * Machine.touch without the guest kernel): the frame, or -1 when the #PF belongs to the guest.
 */
function reach(m: Machine, vpn: number, write: boolean): number {
  const hi = vpnHi(vpn);
  const lo = vpnLo(vpn);
  const access = ACCESS_USER | (write ? ACCESS_WRITE : 0);
  let pfn = m.mmu.translate(hi, lo, access);
  for (let tries = 0; pfn === TRANSLATE_PF; tries++) {
    if (!(m.platform instanceof KvmShadowPlatform) || tries > 4 || !m.platform.shadow.handlePageFault(hi, lo, access))
      return -1;
    pfn = m.mmu.translate(hi, lo, access);
  }
  return pfn;
}

/** The frame the guest's tables give `vpn` for the access, or -1 when they do not allow it. */
function guestFrame(m: Machine, mm: Mm, vpn: number, write: boolean): number {
  const k = m.kernel;
  let table = mm.root;
  for (let l: number = k.levels; l >= 1; l--) {
    const idx = vpnIndex(vpn, l);
    const lo = k.readLo(table, idx);
    const hi = k.readHi(table, idx);
    if ((lo & P) === 0 || (write && (lo & RW) === 0)) return -1;
    if (l === 1 || isLeaf(l, lo)) return entryPfn(l, lo, hi) + (vpn % 512 ** (l - 1));
    table = k.frameOf(l, lo, hi);
  }
  return -1;
}

/** The guest frames a walk of `vpn` uses: its tables and the page. */
function walkFrames(m: Machine, mm: Mm, vpn: number): number[] {
  const k = m.kernel;
  const out = [mm.root];
  let table = mm.root;
  for (let l = k.levels; l >= 2; l--) {
    table = k.frameOf(l, k.readLo(table, vpnIndex(vpn, l)), k.readHi(table, vpnIndex(vpn, l)));
    out.push(table);
  }
  out.push(guestFrame(m, mm, vpn, false));
  return out;
}

/** null if the CPU reaches what the guest's tables say for `vpn` (the frame, or a fault), else what differs. */
function checkReach(m: Machine, task: Task, vpn: number, write: boolean): string | null {
  m.kernel.switchMm(task.mm);
  const want = guestFrame(m, task.mm, vpn, write);
  const got = reach(m, vpn, write);
  return got === want
    ? null
    : `page 0x${vpn.toString(16)} (${write ? 'write' : 'read'}): the CPU reaches ${got}, the guest tables say ${want}`;
}

describe('sequential first touch of a cached file, linux-3.15: order-0 page cache, fault-around 16 (§7.3)', () => {
  /** P pages, 512-aligned (mmap of ≥ 2 MiB): P/512 PTE pages. */
  it.each([512, 1024, 2048])(
    'young prefaulted PTEs, P = %i: P/16 injected, P/8 shadow faults, 7P/8 prefetched',
    (P) => {
      const m = machine('kvm-shadow', 'linux-3.15');
      expect(shadowOf(m).era).toBe('modern');
      const { t, start } = cachedFile(m, P);
      expect(start % 512).toBe(0);
      const c = measure(m, () => m.touch(t, { start, pages: P }, SEQ, 'read', 1));
      expect(n(c, 'faults.minor')).toBe(P / 16);
      expect(n(c, 'kvm.injected_pf')).toBe(P / 16);
      expect(n(c, 'kvm.shadow_faults')).toBe(P / 8);
      expect(n(c, 'kvm.prefetched')).toBe((7 * P) / 8);
      // The rest of the exits, exactly: the first CR3 load; the PGD store hooking the PUD page and
      // one PMD store per later PTE page (emulated: upper levels stay write-protected); each PTE
      // page goes unsync on the fault-around stores of its second 16-page window (its first window
      // was stored before KVM shadowed it).
      const tables = P / 512;
      expect(n(c, 'kvm.cr3_exits')).toBe(1);
      expect(n(c, 'kvm.emulated_writes')).toBe(1 + (tables - 1));
      expect(n(c, 'kvm.unsyncs')).toBe(tables);
      expect(n(c, 'kvm.exits')).toBe(1 + P / 16 + P / 8 + 2 * tables);
      expect(exitCauses(c)).toBe(n(c, 'kvm.exits'));
      // Every page reached through a shadow fault or a prefetched spte.
      expect(n(c, 'kvm.shadow_faults') + n(c, 'kvm.prefetched')).toBe(P);
    },
  );

  it('old prefaulted PTEs (prefaultOld): nothing can be prefetched, every touched page costs an exit — 1093 exits for 1024 pages', () => {
    const P = 1024;
    const m = machine('kvm-shadow', 'linux-3.15', { prefaultOld: true });
    const { t, start } = cachedFile(m, P);
    const c = measure(m, () => m.touch(t, { start, pages: P }, SEQ, 'read', 1));
    expect(n(c, 'faults.minor')).toBe(P / 16);
    expect(n(c, 'kvm.injected_pf')).toBe(P / 16);
    expect(n(c, 'kvm.shadow_faults')).toBe(P);
    expect(n(c, 'kvm.prefetched')).toBe(0);
    // 1 CR3 + 64 injected + 1024 shadow faults + 2 emulated + 2 unsyncs.
    expect(n(c, 'kvm.exits')).toBe(1093);
    expect(n(c, 'kvm.exits')).toBeGreaterThanOrEqual(P);
    expect(exitCauses(c)).toBe(n(c, 'kvm.exits'));
  });

  it('the prefetch fill is what keeps the exits down: young vs old, same guest work', () => {
    const run = (old: boolean) => {
      const m = machine('kvm-shadow', 'linux-3.15', { prefaultOld: old });
      const { t, start } = cachedFile(m, 1024);
      return measure(m, () => m.touch(t, { start, pages: 1024 }, SEQ, 'read', 1));
    };
    const young = run(false);
    const old = run(true);
    for (const k of ['faults.minor', 'faults.total', 'pte.populated', 'pte.writes'])
      expect([k, old[k]]).toEqual([k, young[k]]);
    expect(n(old, 'kvm.exits') - n(young, 'kvm.exits')).toBe(1024 - 128);
  });

  it('2008 (linux-2.6.27, no fault-around, no prefetch, bypass_guest_pf): the not-present #PF skips KVM, the PTE store exits and update_pte maps it — one exit per page', () => {
    const P = 1024;
    const m = machine('kvm-shadow', 'linux-2.6.27');
    expect(shadowOf(m).era).toBe('2008');
    const { t, start } = cachedFile(m, P);
    const c = measure(m, () => m.touch(t, { start, pages: P }, SEQ, 'read', 1));
    expect(n(c, 'faults.minor')).toBe(P);
    expect(n(c, 'kvm.bypassed_pf')).toBe(P);
    expect(n(c, 'kvm.injected_pf')).toBe(0);
    expect(n(c, 'kvm.prefetched')).toBe(0);
    // Each PTE page: its first PTE is stored before KVM shadows it, so that page needs a shadow
    // fault; every other PTE store is emulated and maps the page (no shadow fault).
    const tables = P / 512;
    expect(n(c, 'kvm.shadow_faults')).toBe(tables);
    expect(n(c, 'kvm.emulated_writes')).toBe(P - tables + 1 + (tables - 1));
    expect(n(c, 'kvm.exits')).toBe(1 + tables + (P - tables) + tables);
    expect(exitCauses(c)).toBe(n(c, 'kvm.exits'));
  });
});

describe('TDP (§3.8): the native sequence plus one EPT violation per first-touched guest-physical page', () => {
  it('a host-backed guest (the default): the EPT maps all its memory already, so the same run takes no exit', () => {
    const P = 1024;
    const p = getProfile('linux-3.15');
    const backed = new Machine({
      platform: 'kvm-tdp',
      profile: p,
      policy: p.policy,
      memBytes: 64 * MiB,
      seed: 1,
      costs: resolveRunCosts({}),
      check: true,
    });
    const fresh = machine('kvm-tdp', 'linux-3.15');
    const run = (m: Machine) => {
      const t = m.spawn();
      const vma = m.mmap(t, { pages: P, prot: VM_READ | VM_WRITE, shared: false, file: null });
      return measure(m, () => m.touch(t, vma, SEQ, 'write', 1));
    };
    const [b, f] = [run(backed), run(fresh)];
    expect(n(b, 'kvm.exits')).toBe(0);
    expect(n(f, 'kvm.ept_violations')).toBeGreaterThanOrEqual(P); // each new anonymous page, and the tables
    expect(n(b, 'faults.total')).toBe(n(f, 'faults.total'));
  });

  it('a cached file read with fault-around: the only exits are the EPT violations of the page-table pages the faults allocate', () => {
    const P = 1024;
    const m = machine('kvm-tdp', 'linux-3.15');
    const { t, start } = cachedFile(m, P); // write() copied into every page of the file: EPT-mapped then
    const c = measure(m, () => m.touch(t, { start, pages: P }, SEQ, 'read', 1));
    const frames = new Set<number>();
    for (let vpn = start; vpn < start + P; vpn++) for (const f of walkFrames(m, t.mm, vpn)) frames.add(f);
    expect(frames.size).toBe(P + 5); // root, PUD, PMD, 2 PTE pages, P pages
    // PUD, PMD and the 2 PTE pages, cleared by the guest kernel as it allocates them (the root came with the mm).
    expect(n(c, 'kvm.ept_violations')).toBe(4);
    expect(n(c, 'kvm.exits')).toBe(4);
    expect(n(c, 'faults.minor')).toBe(P / 16);
  });

  it('frames the guest kernel never touched (a file read from disk by DMA) take their EPT violation at the first user access', () => {
    const P = 1024;
    const m = machine('kvm-tdp', 'linux-3.15');
    const t = m.spawn();
    const f = m.createFile('cold', P * 4096);
    const v = m.sys.mmap(t, { pages: P, prot: VM_READ, shared: false, file: f });
    const c = measure(m, () => m.touch(t, { start: v.start, pages: P }, SEQ, 'read', 1));
    // Every page of the file is walked to once; each is a first access for the EPT, plus the 4 tables.
    expect(n(c, 'kvm.ept_violations')).toBe(P + 4);
  });

  it('a TLB miss walks the guest tables through the EPT: with the paging-structure caches warm a 2D walk costs 1.5–3× a native one (published 1.5–2×), not the 6× of a cold (4+1)(4+1)−1', () => {
    const P = 1024;
    const m = machine('kvm-tdp', 'linux-3.15');
    const { t, start } = cachedFile(m, P);
    const before = m.ledger.snapshot();
    const c = measure(m, () => m.touch(t, { start, pages: P }, SEQ, 'read', 1));
    expect(n(c, 'faults.hw_pf')).toBe(P / 16);
    expect(m.ledger.get('tlb.walk') - (before['tlb.walk'] ?? 0)).toBe(
      20 * (n(c, 'tlb.walk_refs') + n(c, 'tlb.ad_writes')),
    );
    // Native walks the same path (the same walks); nearly every one after the first starts from
    // the cached PDE: one reference, the first walk and the first of the second PTE page more.
    const nat = machine('native', 'linux-3.15');
    const f = cachedFile(nat, P);
    const cn = measure(nat, () => nat.touch(f.t, { start: f.start, pages: P }, SEQ, 'read', 1));
    expect(n(cn, 'tlb.walks')).toBe(n(c, 'tlb.walks'));
    expect(n(cn, 'tlb.psc_hits')).toBeGreaterThan(0.95 * n(cn, 'tlb.walks'));
    expect(n(cn, 'tlb.walk_refs')).toBeLessThan(1.1 * n(cn, 'tlb.walks'));
    const ratio = n(c, 'tlb.walk_refs') / n(cn, 'tlb.walk_refs');
    expect(ratio).toBeGreaterThanOrEqual(1.5);
    expect(ratio).toBeLessThanOrEqual(3);
  });

  it('guest page-table writes (mprotect twice, COW reuse faults) cost no exit once every frame is mapped', () => {
    const m = machine('kvm-tdp', 'linux-3.15');
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 512, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    const c = measure(m, () => {
      m.sys.mprotect(t, v.start, 512, VM_READ);
      m.sys.mprotect(t, v.start, 512, VM_READ | VM_WRITE);
      m.touch(t, v, SEQ, 'write', 1);
    });
    expect(n(c, 'faults.wp_reuse')).toBe(512);
    expect(n(c, 'pte.writes')).toBeGreaterThanOrEqual(3 * 512);
    expect(n(c, 'kvm.exits')).toBe(0);
    expect(n(c, 'kvm.ept_violations')).toBe(0);
  });
});

describe("sync semantics (§3.4): the guest's TLB flushes resync KVM", () => {
  it('a guest CR3 write syncs every unsync leaf under the root it loads (kvm_mmu_sync_roots, kvm.syncs)', () => {
    const m = machine('kvm-shadow', 'linux-3.15');
    const a = cachedFile(m, 2048);
    const c1 = measure(m, () => m.touch(a.t, { start: a.start, pages: 2048 }, SEQ, 'read', 1));
    expect(n(c1, 'kvm.unsyncs')).toBe(4); // each of the 4 PTE pages, on its second fault-around window
    expect(n(c1, 'kvm.syncs')).toBe(0);
    // flush_tlb_local(): a CR3 reload of the same root syncs all four.
    const c2 = measure(m, () => m.pv.flushTlbAll());
    expect(n(c2, 'kvm.exits')).toBe(1);
    expect(n(c2, 'kvm.cr3_exits')).toBe(1);
    expect(n(c2, 'kvm.syncs')).toBe(4);
    expect(shadowOf(m).checkInvariants()).toEqual([]);
    for (let i = 0; i < 4; i++) expect(m.mem.isTracked(gpteTableAt(m, a.t.mm, a.start + 512 * i, 1))).toBe(true);
    // The stores of a second file's fault-around make its leaves unsync; another address space
    // running in between does not sync them (they are out of its root's reach), loading a's again does.
    const f2 = m.createFile('more', 1024 * 4096);
    populateByWrite(m.kernel, f2, 256, 0);
    const v2 = m.sys.mmap(a.t, { pages: 1024, prot: VM_READ, shared: false, file: f2 });
    const c3 = measure(m, () => m.touch(a.t, v2, SEQ, 'read', 1));
    expect(n(c3, 'kvm.unsyncs')).toBe(2);
    const b = m.spawn();
    const bv = m.sys.mmap(b, { pages: 1, prot: VM_READ | VM_WRITE, shared: false, file: null });
    const c4 = measure(m, () => m.touch(b, bv, SEQ, 'write', 1));
    expect(n(c4, 'kvm.cr3_exits')).toBe(1);
    expect(n(c4, 'kvm.syncs')).toBe(0);
    expect(shadowOf(m).checkInvariants()).toEqual([]);
    const c5 = measure(m, () => m.touch(a.t, { start: v2.start, pages: 1 }, SEQ, 'read', 1));
    expect(n(c5, 'kvm.cr3_exits')).toBe(1);
    expect(n(c5, 'kvm.syncs')).toBe(2);
    expect(n(c5, 'kvm.exits')).toBe(1);
    // Nothing is unsync now; a's leaves are write-protected again, so unmapping 16 pages costs one
    // exit to unsync the leaf, then the 16 INVLPGs of the flush.
    const c6 = measure(m, () => m.sys.munmap(a.t, a.start + 16, 16));
    expect(n(c6, 'kvm.syncs')).toBe(0);
    expect(n(c6, 'kvm.unsyncs')).toBe(1);
    expect(n(c6, 'kvm.invlpg_exits')).toBe(16);
    expect(n(c6, 'kvm.exits')).toBe(1 + 16);
  });

  it.each(['linux-3.15', 'linux-2.6.27'])(
    "%s: a munmapped gpte is not reachable through a stale spte after the guest's flush (INVLPG range and full flush)",
    (profile) => {
      for (const len of [16, 48]) {
        const m = machine('kvm-shadow', profile);
        const t = m.spawn();
        const v = m.sys.mmap(t, { pages: 64, prot: VM_READ | VM_WRITE, shared: false, file: null });
        m.touch(t, v, SEQ, 'write', 1);
        for (let i = 0; i < 64; i++) expect(spte(m, v.start + i)!.lo & P).toBe(P);
        const c = measure(m, () => m.sys.munmap(t, v.start, len));
        // ≤ 33 pages: one INVLPG per page; more: a full flush (CR3 reload).
        if (profile === 'linux-3.15') {
          expect(n(c, len <= 33 ? 'kvm.invlpg_exits' : 'kvm.cr3_exits')).toBe(len <= 33 ? len : 1);
        }
        for (let i = 0; i < 64; i++) {
          const s = spte(m, v.start + i);
          const present = s !== null && (s.lo & P) !== 0;
          // Modern: the resync keeps the others; 2008: the fork detector unshadowed the whole page.
          expect([i, present]).toEqual([i, i < len || profile === 'linux-2.6.27' ? false : true]);
        }
        const c2 = measure(m, () => m.touch(t, { start: v.start, pages: len }, SEQ, 'read', 1));
        expect(n(c2, 'workload.segv')).toBe(len);
        expect(shadowOf(m).checkInvariants()).toEqual([]);
        for (let i = len; i < 64; i++) expect(checkReach(m, t, v.start + i, true)).toBeNull();
      }
    },
  );

  it('a guest THP (one 2 MiB gpte) is shadowed by a direct shadow page of 4 KiB sptes: one shadow fault per 8 pages, the rest prefetched; the guest zap takes it away', () => {
    const m = machine('kvm-shadow', 'linux-6.18', {}, 64 * MiB);
    const s = shadowOf(m);
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 2048, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.sys.madvise(t, v.start, 2048, 'hugepage');
    const c = measure(m, () => m.touch(t, v, SEQ, 'write', 1));
    // The guest: 4 THP faults (do_huge_pmd_anonymous_page), 4 PMD leaves.
    expect([n(c, 'faults.total'), n(c, 'pmd.mapped')]).toEqual([4, 4]);
    // KVM: each 4 KiB piece is mapped on its own, 8 at a time (__direct_pte_prefetch).
    expect([n(c, 'kvm.shadow_faults'), n(c, 'kvm.prefetched')]).toEqual([256, 1792]);
    const direct = () => {
      let count = 0;
      for (let f = 0; f < s.spDirect.length; f++) if (s.spDirect[f] === 1) count++;
      return count;
    };
    expect(direct()).toBe(4);
    const sp = spte(m, v.start + 700)!;
    // The spte maps the 4 KiB frame the guest's 2 MiB entry covers at that offset, writable (the gpte is dirty).
    const pmd = gpteTableAt(m, t.mm, v.start, 2);
    const glo = m.mem.readLo(pmd, vpnIndex(v.start + 512, 2));
    expect(isLeaf(2, glo)).toBe(true);
    expect(entryPfn(1, sp.lo, sp.hi)).toBe(entryPfn(2, glo, m.mem.readHi(pmd, vpnIndex(v.start + 512, 2))) + 700 - 512);
    expect(sp.lo & RW).toBe(RW);
    expect(s.checkInvariants()).toEqual([]);
    // A second pass: every piece is mapped, no exit.
    expect(
      n(
        measure(m, () => m.touch(t, v, SEQ, 'read', 1)),
        'kvm.exits',
      ),
    ).toBe(0);
    // munmap clears the PMD entries (emulated writes to the shadowed PMD page): the direct pages go.
    m.sys.munmap(t, v.start, 2048);
    expect(direct()).toBe(0);
    expect(s.checkInvariants()).toEqual([]);
  });

  it('host_huge: the host backs guest memory with 2 MiB pages, so each guest 2 MiB gpte is one 2 MiB spte (one shadow fault per 2 MiB), read-only while the gpte is clean; munmap zaps them', () => {
    const m = machine('kvm-shadow', 'linux-6.18', {}, 64 * MiB, 1, true);
    const s = shadowOf(m);
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 2048, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.sys.madvise(t, v.start, 2048, 'hugepage');
    // Reads: the huge zero page, 4 clean 2 MiB gptes, 4 read-only 2 MiB sptes.
    const r = measure(m, () => m.touch(t, { start: v.start, pages: 1024 }, SEQ, 'read', 1));
    expect([n(r, 'faults.total'), n(r, 'kvm.shadow_faults'), n(r, 'kvm.huge_sptes'), n(r, 'kvm.prefetched')]).toEqual([
      2, 2, 2, 0,
    ]);
    // Writes to the other 2 MiB: THPs, dirty gptes, writable 2 MiB sptes.
    const w = measure(m, () => m.touch(t, { start: v.start + 1024, pages: 1024 }, SEQ, 'write', 1));
    expect([n(w, 'faults.total'), n(w, 'kvm.shadow_faults'), n(w, 'kvm.huge_sptes')]).toEqual([2, 2, 2]);
    expect(s.checkInvariants()).toEqual([]);
    for (const i of [1024, 1031, 2047]) expect(checkReach(m, t, v.start + i, true)).toBeNull();
    m.sys.munmap(t, v.start, 2048);
    expect(s.checkInvariants()).toEqual([]);
    // Nothing stale: the CPU reaches what the guest tables say (nothing: the guest's #PF).
    for (const i of [0, 1024, 2047]) expect(checkReach(m, t, v.start + i, false)).toBeNull();
  });

  it('a clean 2 MiB gpte (the huge zero page, read) gives read-only pieces; the write that splits it goes through the guest', () => {
    const m = machine('kvm-shadow', 'linux-6.18', {}, 64 * MiB);
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 512, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.sys.madvise(t, v.start, 512, 'hugepage');
    const c = measure(m, () => m.touch(t, v, SEQ, 'read', 1));
    expect([n(c, 'faults.total'), n(c, 'kvm.shadow_faults')]).toEqual([1, 64]);
    expect(spte(m, v.start + 5)!.lo & RW).toBe(0);
    const w = measure(m, () => m.touch(t, { start: v.start + 5, pages: 1 }, SEQ, 'write', 1));
    expect(n(w, 'faults.total')).toBe(1); // do_huge_pmd_wp_page on the guest's read-only PMD
    expect(shadowOf(m).checkInvariants()).toEqual([]);
    expect(checkReach(m, t, v.start + 5, true)).toBeNull();
  });

  it('MADV_DONTNEED: the PTE page stays, its zapped gptes are unreachable after the flush and refault as new zero-filled pages', () => {
    const m = machine('kvm-shadow', 'linux-6.18');
    const t = m.spawn();
    const v = m.sys.mmap(t, { pages: 64, prot: VM_READ | VM_WRITE, shared: false, file: null });
    m.touch(t, v, SEQ, 'write', 1);
    const old = gpte(m, t.mm, v.start + 3)!;
    m.sys.madvise(t, v.start, 64, 'dontneed');
    expect(spte(m, v.start + 3)!.lo & P).toBe(0);
    const c = measure(m, () => m.touch(t, v, SEQ, 'read', 1));
    expect(n(c, 'pte.zero_page')).toBe(64);
    expect(entryPfn(1, gpte(m, t.mm, v.start + 3)!.lo, 0)).not.toBe(entryPfn(1, old.lo, old.hi));
    for (let i = 0; i < 64; i++) expect(checkReach(m, t, v.start + i, false)).toBeNull();
  });

  it("write flooding: munmap of four 2 MiB regions clears four PMD entries; the third zaps the PMD's shadow page", () => {
    const m = machine('kvm-shadow', 'linux-3.15');
    const t = m.spawn();
    const small = m.sys.mmap(t, { pages: 1, prot: VM_READ | VM_WRITE, shared: false, file: null });
    const big = m.sys.mmap(t, { pages: 2048, prot: VM_READ | VM_WRITE, shared: false, file: null });
    expect(Math.floor(small.start / 512 ** 2)).toBe(Math.floor(big.start / 512 ** 2)); // one PMD page for both
    m.touch(t, small, SEQ, 'write', 1);
    for (let i = 0; i < 4; i++) m.touch(t, { start: big.start + 512 * i, pages: 1 }, SEQ, 'write', 1);
    const pmd = gpteTableAt(m, t.mm, big.start, 2);
    expect(m.mem.isTracked(pmd)).toBe(true);
    const c = measure(m, () => m.sys.munmap(t, big.start, 2048));
    // Four PTE clears in four in-sync leaves (each goes unsync), then the PMD stores: two emulated
    // (each zapping a leaf's shadow page), the third floods: the PMD's shadow page goes with the two
    // leaves of `big` still under it and the leaf of `small`.
    expect(n(c, 'kvm.unsyncs')).toBe(4);
    expect(n(c, 'kvm.emulated_writes')).toBe(3);
    expect(n(c, 'kvm.zapped_pages')).toBe(2 + 1 + 2 + 1);
    expect(m.mem.isTracked(pmd)).toBe(false);
    // `small` still works, through a rebuilt shadow path.
    const c2 = measure(m, () => m.touch(t, small, SEQ, 'write', 1));
    expect(n(c2, 'kvm.shadow_faults')).toBe(1);
    expect(n(c2, 'faults.total')).toBe(0);
    expect(m.mem.isTracked(pmd)).toBe(true);
  });

  it.each(['linux-3.15', 'linux-2.6.27'])(
    "%s: fork write-protects the parent's PTEs; after the flush no spte is writable over a write-protected gpte",
    (profile) => {
      const m = machine('kvm-shadow', profile);
      const parent = m.spawn();
      const v = m.sys.mmap(parent, { pages: 256, prot: VM_READ | VM_WRITE, shared: false, file: null });
      m.touch(parent, v, SEQ, 'write', 1);
      let writable = 0;
      for (let i = 0; i < 256; i++) if ((spte(m, v.start + i)!.lo & RW) !== 0) writable++;
      expect(writable).toBeGreaterThan(0);
      m.kernel.switchMm(parent.mm);
      const c = measure(m, () => m.sys.fork(parent));
      expect(n(c, 'pte.copied')).toBe(256);
      for (let i = 0; i < 256; i++) {
        expect(gpte(m, parent.mm, v.start + i)!.lo & RW).toBe(0);
        const s = spte(m, v.start + i);
        expect([i, s !== null && (s.lo & RW) !== 0]).toEqual([i, false]);
      }
      expect(shadowOf(m).checkInvariants()).toEqual([]);
      // The parent's next write is the guest's COW fault, not a silent write to the shared page.
      const c2 = measure(m, () => m.touch(parent, { start: v.start, pages: 1 }, SEQ, 'write', 1));
      expect(n(c2, 'faults.cow')).toBe(1);
      expect(checkReach(m, parent, v.start, true)).toBeNull();
    },
  );
});

describe('page-table frames reused as data', () => {
  it.each(['linux-3.15', 'linux-2.6.27'])(
    '%s: the root of an mm that exited while loaded becomes an anonymous page of another task; its writes do not fault forever',
    (profile) => {
      const m = machine('kvm-shadow', profile);
      const a = m.spawn();
      const b = m.spawn();
      const vb = m.sys.mmap(b, { pages: 64, prot: VM_READ | VM_WRITE, shared: false, file: null });
      m.touch(b, { start: vb.start, pages: 1 }, SEQ, 'write', 1); // b's tables exist
      const va = m.sys.mmap(a, { pages: 4, prot: VM_READ | VM_WRITE, shared: false, file: null });
      m.touch(a, va, SEQ, 'write', 1);
      const rootA = a.mm.root;
      m.sys.exit(a); // a's tables go while its CR3 is loaded: KVM's shadow of the root stays
      expect(m.mem.isTracked(rootA)).toBe(true);
      const c = measure(m, () => m.touch(b, vb, SEQ, 'write', 1));
      const frames = new Set<number>();
      for (let i = 0; i < 64; i++) frames.add(guestFrame(m, b.mm, vb.start + i, true));
      expect(frames.has(rootA)).toBe(true); // the allocator handed the old root out as data
      expect(m.mem.isTracked(rootA)).toBe(false);
      expect(n(c, 'kvm.zapped_pages')).toBe(1);
      for (let i = 0; i < 64; i++) expect(checkReach(m, b, vb.start + i, true)).toBeNull();
    },
  );
});

/**
 * kvm-shadow, between guest operations: every present leaf spte the CPU can reach from the loaded
 * shadow root agrees with the running mm's gpte — present and accessed, the same frame, writable
 * only if the gpte is writable and dirty — unsync pages included, because the guest flushes what it
 * changes (a stale spte here is a translation the guest believes gone). null when all agree.
 */
function shadowCoherent(m: Machine): string | null {
  const mm = m.kernel.cpu.mm;
  if (mm === null || !(m.platform instanceof KvmShadowPlatform) || m.platform.shadow.root !== mm.root) return null;
  const s = m.platform.shadow.smem;
  const walk = (t: number, level: number, base: number): string | null => {
    for (let i = 0; i < 512; i++) {
      const lo = s.readLo(t, i);
      if ((lo & P) === 0) continue;
      const hi = s.readHi(t, i);
      const vpn = base + i * 512 ** (level - 1);
      if (level > 1 && !isLeaf(level, lo)) {
        const bad = walk(entryPfn(level, lo, hi), level - 1, vpn);
        if (bad !== null) return bad;
        continue;
      }
      const g = gpte(m, mm, vpn);
      const where = `spte of page 0x${vpn.toString(16)}`;
      if (g === null) return `${where} is present, the gpte is not`;
      if ((g.lo & A) === 0) return `${where} is present, the gpte is old`;
      // A 4 KiB spte under a 2 MiB gpte maps its piece; a 2 MiB spte (host_huge) the whole of it.
      const gFrame =
        g.level === 2 && level === 1 ? entryPfn(2, g.lo, g.hi) + (vpn % 512) : entryPfn(g.level, g.lo, g.hi);
      if (level !== 1 && g.level !== level) return `${where} is a ${level}-level leaf, the gpte a ${g.level}-level one`;
      if (gFrame !== entryPfn(level, lo, hi))
        return `${where} maps frame ${entryPfn(level, lo, hi)}, the gpte ${gFrame}`;
      if ((lo & RW) !== 0 && (g.lo & (RW | D)) !== (RW | D))
        return `${where} is writable, the gpte is not writable and dirty`;
    }
    return null;
  };
  return walk(m.mmu.root, 4, 0);
}

/** The guest table at `level` (2 = the PMD page) on the path to `vpn`. */
function gpteTableAt(m: Machine, mm: Mm, vpn: number, level: number): number {
  const k = m.kernel;
  let table = mm.root;
  for (let l = k.levels; l > level; l--)
    table = k.frameOf(l, k.readLo(table, vpnIndex(vpn, l)), k.readHi(table, vpnIndex(vpn, l)));
  return table;
}

// --- the random-operation property test (as packages/vm/test/model.property.test.ts drives Syscalls) ---

const setupArb: fc.Arbitrary<Setup> = fc.record({
  profile: fc.constantFrom('linux-2.6.27', 'linux-3.15', 'linux-6.18'),
  faultAround: fc.constantFrom(1, 16, 64),
  anonPrefault: anonPrefaultArb,
  prefaultOld: fc.boolean(),
  files: fc.tuple(
    fc.integer({ min: 1, max: 1500 * 4096 }),
    fc.integer({ min: 1, max: 1500 * 4096 }),
    fc.integer({ min: 1, max: 300 * 4096 }),
    fc.constantFrom(16, 64, 512, 512),
  ),
  hostHuge: fc.boolean(), // kvm-shadow: 2 MiB sptes for guest 2 MiB mappings (ignored elsewhere)
});

/** Counters summed over the runs of a property: what the random sequences exercised. */
const covered: Record<string, number> = {};

interface Setup {
  readonly profile: string;
  readonly faultAround: number;
  readonly anonPrefault: AnonPrefault;
  readonly prefaultOld: boolean;
  readonly files: readonly [number, number, number, number];
  /** kvm-shadow: 2 MiB host pages (host_huge). */
  readonly hostHuge?: boolean;
}

function runOps(platform: PlatformName, setup: Setup, ops: MmOp[]): void {
  const { profile, files, hostHuge, ...policy } = setup;
  const m = machine(platform, profile, policy, 128 * MiB, 1, hostHuge ?? false);
  const k = m.kernel;
  const [s0, s1, s2, chunk] = files;
  const inodes: Inode[] = [m.createFile('f0', s0), m.createFile('f1', s1), m.createFile('f2', s2)];
  populateByWrite(k, inodes[0]!, chunk, k.policy.maxFolioOrder);
  populateByRead(k, inodes[1]!, chunk);
  const tasks: Task[] = [m.spawn()];
  m.startMeasurement();
  const fail = (step: number, op: MmOp, what: string) => {
    throw new Error(`${platform} ${profile} step ${step} ${JSON.stringify(op)}: ${what}`);
  };
  const world: MmWorld = {
    sys: m.sys,
    files: inodes,
    tasks,
    touch(task, first, last, write) {
      m.touch(task, { start: first, pages: last - first }, SEQ, write ? 'write' : 'read', 1);
      // The CPU reaches what the guest tables say, for every page just touched.
      for (let vpn = first; vpn < last; vpn++) {
        const bad = checkReach(m, task, vpn, write);
        if (bad !== null) throw new Error(bad);
      }
    },
    switchTo: (task) => k.switchMm(task.mm), // as Machine.runProgram forks
  };
  ops.forEach((op, step) => {
    const where = `after step ${step} (${op.op})`;
    try {
      applyMmOp(world, op);
      m.verify(where);
      const stale = shadowCoherent(m);
      if (stale !== null) fail(step, op, stale);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(platform)) throw e;
      fail(step, op, (e as Error).message);
    }
  });
  for (const t of tasks) m.sys.exit(t);
  m.verify('after every exit');
  if (m.mem.tableCount !== 0) throw new Error(`${m.mem.tableCount} guest page-table frames left after every mm exited`);
  const c = m.measuredCounters();
  for (const [key, v] of Object.entries(c)) covered[key] = (covered[key] ?? 0) + v;
  if (platform === 'kvm-shadow') {
    if (exitCauses(c) !== n(c, 'kvm.exits'))
      throw new Error(`kvm.exits ${n(c, 'kvm.exits')} but the causes sum to ${exitCauses(c)}`);
    // Only the shadow of the last CR3 may outlive the guest's tables (KVM keeps the loaded root).
    // What may outlive the guest's tables: the shadows of roots freed while loaded (the last CR3
    // and any not reused since), each write-protecting its one frame; page-track leaks nothing.
    const kv = shadowOf(m);
    let tracked = 0;
    for (let f = 0; f < m.mem.frames; f++) if (m.mem.isTracked(f)) tracked++;
    if (tracked !== kv.smem.tableCount)
      throw new Error(`after every exit: ${tracked} guest frames write-tracked but ${kv.smem.tableCount} shadow pages`);
  } else if (n(c, 'kvm.exits') !== n(c, 'kvm.ept_violations') + n(c, 'kvm.io_kicks')) {
    throw new Error('TDP: an exit that is neither an EPT violation nor a block-request kick');
  }
}

describe('random mm operations keep the vm invariants and the shadow MMU consistent (Machine, check: true)', () => {
  for (const [platform, runs] of [
    ['kvm-shadow', 400],
    ['kvm-tdp', 150],
  ] as const) {
    it(`${platform}: mmap / touch (read, write) / munmap / mprotect / madvise / fork / exec / exit over 1-3 tasks`, () => {
      for (const key of Object.keys(covered)) delete covered[key];
      fc.assert(
        fc.property(setupArb, fc.array(mmOpArb(), { minLength: 5, maxLength: 40, size: 'max' }), (setup, ops) =>
          runOps(platform, setup, ops),
        ),
        { numRuns: runs, seed: 20260521 },
      );
      const want = [
        'faults.cow',
        'faults.wp_reuse',
        'faults.segv',
        'pte.zapped',
        'pte.copied',
        'tlb.flush_pages',
        'tlb.flushes_full',
        'proc.forks',
      ];
      if (platform === 'kvm-shadow') {
        want.push(
          'kvm.injected_pf',
          'kvm.bypassed_pf',
          'kvm.shadow_faults',
          'kvm.prefetched',
          'kvm.unsyncs',
          'kvm.syncs',
          'kvm.invlpg_exits',
          'kvm.emulated_writes',
          'kvm.zapped_pages',
        );
      } else {
        want.push('kvm.ept_violations');
      }
      for (const key of want) expect([key, (covered[key] ?? 0) > 0]).toEqual([key, true]);
    });
  }
});

describe('a fixed long random sequence on every profile', () => {
  for (const platform of ['kvm-shadow', 'kvm-tdp'] as const) {
    it(`${platform}: 150 operations, linux-2.6.27 / 3.15 / 6.18`, () => {
      const ops = fc.sample(fc.array(mmOpArb(), { minLength: 150, maxLength: 150 }), { numRuns: 1, seed: 99 })[0]!;
      for (const profile of ['linux-2.6.27', 'linux-3.15', 'linux-6.18']) {
        runOps(
          platform,
          {
            profile,
            faultAround: getProfile(profile).policy.faultAround,
            anonPrefault: { kind: 'off' },
            prefaultOld: false,
            files: [700 * 4096 + 123, 1100 * 4096, 200 * 4096, 64],
          },
          ops,
        );
      }
    });
  }
  it('kvm-shadow with host_huge (2 MiB sptes for guest THPs and PMD-mapped folios): 150 operations, linux-6.18', () => {
    const ops = fc.sample(fc.array(mmOpArb(), { minLength: 150, maxLength: 150 }), { numRuns: 1, seed: 7 })[0]!;
    const profile = 'linux-6.18';
    runOps(
      'kvm-shadow',
      {
        profile,
        faultAround: getProfile(profile).policy.faultAround,
        anonPrefault: { kind: 'off' },
        prefaultOld: false,
        files: [700 * 4096 + 123, 1100 * 4096, 200 * 4096, 512],
        hostHuge: true,
      },
      ops,
    );
  });
});

// --- micro/mmap-touch on kvm-shadow and kvm-tdp against native ---

const PATTERNS = ['seq', 'reverse', 'stride:17', 'random:0.25', 'sparse:0.25', 'hotset:0.1:3', 'per2m'];
const PROFILES = ['linux-2.6.27', 'linux-3.15', 'linux-6.18'];

/** micro/mmap-touch as apps/pte-lab runs it (cache=written, io_chunk 1 MiB, advice normal), 8 MiB. */
function mmapTouch(
  platform: PlatformName,
  profile: string,
  pattern: string,
  backing: string,
  access: 'read' | 'write',
  share: string,
  overrides: Partial<VmPolicy>,
) {
  const pages = 2048;
  const m = machine(platform, profile, overrides, 64 * MiB, 7);
  const k = m.kernel;
  const task = m.spawn();
  const file = backing === 'file' ? m.createFile('data', pages * 4096) : null;
  if (file !== null) populateByWrite(k, file, 256, k.policy.maxFolioOrder);
  const vma = m.sys.mmap(task, {
    pages,
    prot: VM_READ | (access === 'write' || backing === 'anon' ? VM_WRITE : 0),
    shared: share === 'shared',
    file,
  });
  m.verify('after setup');
  m.startMeasurement();
  m.touch(task, vma, parsePattern(pattern), access, 1);
  const touched = m.measuredCounters();
  m.sys.exit(task);
  m.verify('after exit');
  return { touched, all: m.measuredCounters(), m };
}

/** The guest's own counters: what the guest kernel decided (not what the CPU or a hypervisor did). */
function guestCounters(c: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(c)) {
    if (/^(faults|pte|pmd|pages|pt|io|proc)\./.test(key) && key !== 'faults.hw_pf' && key !== 'faults.hw_gp')
      out[key] = v;
    if (/^tlb\.(flushes|flushes_full|flush_pages)$/.test(key)) out[key] = v;
  }
  return out;
}

describe("micro/mmap-touch on kvm-shadow and kvm-tdp: the hypervisor changes costs and exits, not the guest's decisions", () => {
  for (const profile of PROFILES) {
    it(`${profile}: every pattern, file and anon, read and write, shared and private`, () => {
      for (const pattern of PATTERNS)
        for (const backing of ['file', 'anon'])
          for (const access of ['read', 'write'] as const)
            for (const share of ['shared', 'private']) {
              const label = `${profile} ${pattern} ${backing} ${access} ${share}`;
              // Guest 2 MiB mappings are shadowed too (direct shadow pages): the guest decides as natively.
              const nat = mmapTouch('native', profile, pattern, backing, access, share, {});
              const sh = mmapTouch('kvm-shadow', profile, pattern, backing, access, share, {});
              const tdp = mmapTouch('kvm-tdp', profile, pattern, backing, access, share, {});
              for (const [name, got, ref] of [
                ['kvm-shadow', sh, nat],
                ['kvm-tdp', tdp, nat],
              ] as const) {
                expect([label, name, guestCounters(got.all)]).toEqual([label, name, guestCounters(ref.all)]);
                for (const key of ['faults.minor', 'faults.major', 'pte.populated']) {
                  expect([label, name, key, n(got.touched, key)]).toEqual([label, name, key, n(ref.touched, key)]);
                }
                expect([label, name, 'rss', got.m.peakRssPages]).toEqual([label, name, 'rss', ref.m.peakRssPages]);
              }
              expect([label, exitCauses(sh.all)]).toEqual([label, n(sh.all, 'kvm.exits')]);
              expect([label, n(tdp.all, 'kvm.exits')]).toEqual([label, n(tdp.all, 'kvm.ept_violations')]);
              // Every touched page costs the shadow MMU at least an exit or a prefetched spte, and
              // TDP at least its EPT violation (the touched pages are all distinct frames).
              expect(
                n(sh.touched, 'kvm.shadow_faults') +
                  n(sh.touched, 'kvm.prefetched') +
                  n(sh.touched, 'kvm.emulated_writes'),
              ).toBeGreaterThan(0);
            }
    });
  }
});
