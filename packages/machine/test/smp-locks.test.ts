import fc from 'fast-check';
import { pteTableFor, vpnIndex, VM_READ, VM_WRITE } from '@pte/vm';
import {
  type Machine,
  USER_READ,
  USER_WRITE,
  type FaultLockPolicy,
  type PlatformName,
  type ThreadSpec,
} from '../src/index.js';
import { checkTlbsAgainstTables } from '../src/tlb-check.js';
import { smpMachine } from './smp-machine.js';

interface Pft {
  readonly m: Machine;
  readonly clocks: number[];
  readonly total: number;
  readonly counters: Record<string, number>;
  readonly cycles: Record<string, number>;
}

/**
 * `n` threads of one process write `pages` pages each of one anonymous mapping (or a VMA each),
 * on CPUs 0..n-1; with `rounds`, one more thread on CPU n maps and unmaps 16 pages that often.
 */
function pft(
  lock: FaultLockPolicy,
  n: number,
  pages: number,
  opts: { rounds?: number; perThreadVmas?: boolean; platform?: PlatformName; cpus?: number; profile?: string } = {},
): Pft {
  const writer = opts.rounds !== undefined;
  const m = smpMachine(opts.platform ?? 'native', opts.cpus ?? n + (writer ? 1 : 0), opts.profile);
  const a = m.spawn();
  const stride = opts.perThreadVmas ? pages + 1 : pages;
  const vma = m.mmap(a, { pages: stride * n, prot: VM_READ | VM_WRITE, shared: false, file: null });
  if (opts.perThreadVmas) for (let i = 0; i < n; i++) m.munmap(a, vma.start + i * stride + pages, 1);
  const tasks = [a];
  for (let i = 1; i < n + (writer ? 1 : 0); i++) tasks.push(m.spawnThread(a));
  const specs: ThreadSpec[] = tasks.slice(0, n).map((task, i) => ({
    task,
    cpu: i,
    range: { start: vma.start + i * stride, pages },
    pattern: { kind: 'seq' },
    kind: 'write',
  }));
  if (writer) specs.push({ task: tasks[n]!, cpu: n, mapUnmap: { pages: 16, rounds: opts.rounds! } });
  m.startMeasurement();
  const clocks = [...m.runThreads(specs, lock)];
  const cycles = { ...m.measuredCycles() };
  const total = Object.values(cycles).reduce((x, y) => x + y, 0);
  return { m, clocks, total, counters: { ...m.measuredCounters() }, cycles };
}

describe('faults on several CPUs: what each fault lock takes', () => {
  it('mmap_lock: one read acquire per fault, none queued without a writer', () => {
    const r = pft('mmap_lock', 4, 64);
    expect(r.counters['faults.total']).toBe(256);
    expect(r.counters['lock.mmap_lock.acquires']).toBe(256);
    expect(r.counters['lock.mmap_lock.contended']).toBe(0);
    expect(r.counters['lock.vma.acquires']).toBe(0);
    expect(r.cycles['lock.mmap_lock.line']).toBeGreaterThan(0); // four CPUs share the count's line
  });

  it("per_vma: every fault under its VMA's lock; mmap_lock once, for the first anonymous write's anon_vma", () => {
    const r = pft('per_vma', 4, 64);
    expect(r.counters['lock.vma.acquires']).toBe(256);
    expect(r.counters['lock.mmap_lock.acquires']).toBe(1);
    expect(r.counters['lock.vma.contended']).toBe(0);
  });

  it('spf: every fault speculates and commits, but the first anonymous write (no anon_vma yet) gives up to mmap_lock', () => {
    const r = pft('spf', 4, 64);
    expect(r.counters['spf.attempts']).toBe(256);
    expect(r.counters['spf.aborts']).toBe(1); // do_anonymous_page: !vma->anon_vma → VM_FAULT_RETRY
    expect(r.counters['lock.mmap_lock.acquires']).toBe(1);
    expect(r.counters['lock.vma.acquires']).toBe(0);
  });

  it("spf_vma (Dufour): the same, each fault pinning its VMA (the refcount line) under mm_rb_lock's line", () => {
    const r = pft('spf_vma', 4, 64);
    expect(r.counters['spf.attempts']).toBe(256);
    expect(r.counters['spf.aborts']).toBe(1);
    expect(r.counters['lock.mmap_lock.acquires']).toBe(1);
    expect(r.cycles['lock.vma.line']).toBeGreaterThan(0);
    expect(r.cycles['lock.mm_rb.line']).toBeGreaterThan(0);
    // A VMA each: only the mm-wide mm_rb_lock line still moves.
    const apart = pft('spf_vma', 4, 64, { perThreadVmas: true });
    expect(apart.cycles['lock.vma.line'] ?? 0).toBe(0);
    expect(apart.cycles['lock.mm_rb.line']).toBeGreaterThan(0);
  });

  it('spf_vma aborts only faults in the VMA a writer changes; spf aborts them all', () => {
    // The mprotect writer write-locks its own VMA only: Dufour's faults elsewhere never notice.
    const run = (lock: FaultLockPolicy) => {
      const m = smpMachine('native', 4);
      const a = m.spawn();
      const vma = m.mmap(a, { pages: 3 * 256, prot: VM_READ | VM_WRITE, shared: false, file: null });
      const specs: ThreadSpec[] = [0, 1, 2].map((i) => ({
        task: i === 0 ? a : m.spawnThread(a),
        cpu: i,
        range: { start: vma.start + i * 256, pages: 256 },
        pattern: { kind: 'seq' },
        kind: 'write',
      }));
      specs.push({ task: m.spawnThread(a), cpu: 3, protect: { pages: 16 } });
      m.startMeasurement();
      m.runThreads(specs, lock);
      return m.measuredCounters();
    };
    const dufour = run('spf_vma');
    const lespinasse = run('spf');
    expect(dufour['spf.aborts']).toBeLessThanOrEqual(3); // the anon_vma give-ups only
    expect(lespinasse['spf.aborts']).toBeGreaterThan(10 * dufour['spf.aborts']!);
  });

  it('spf is off for a single-threaded mm (Lespinasse): it takes mmap_lock', () => {
    const r = pft('spf', 1, 64, { cpus: 2 }); // a second CPU, so that the several-CPU counters are published
    expect(r.counters['spf.attempts']).toBe(0);
    expect(r.counters['lock.mmap_lock.acquires']).toBe(64);
  });

  it("a VMA per thread: each VMA's line stays on its CPU (no transfer), while mmap_lock's moves", () => {
    expect(pft('per_vma', 4, 64, { perThreadVmas: true }).cycles['lock.vma.line'] ?? 0).toBe(0);
    expect(pft('per_vma', 4, 64).cycles['lock.vma.line']).toBeGreaterThan(0);
    expect(pft('mmap_lock', 4, 64, { perThreadVmas: true }).cycles['lock.mmap_lock.line']).toBeGreaterThan(0);
  });

  it('one thread pays nothing for locks: no line or wait categories', () => {
    const r = pft('mmap_lock', 1, 64);
    expect(r.cycles['lock.mmap_lock.line'] ?? 0).toBe(0);
    expect(r.cycles['lock.mmap_lock.wait'] ?? 0).toBe(0);
  });
});

describe('a writer of mmap_lock among the faulting threads', () => {
  it('its munmaps flush the other CPUs running the mm (not those whose thread is done, now lazy), each handler charged once', () => {
    const rounds = 5;
    const r = pft('per_vma', 3, 64, { rounds });
    expect(r.counters['smp.ipis']).toBeGreaterThan(0);
    expect(r.counters['smp.ipis']).toBeLessThanOrEqual(rounds * 3);
    expect(r.cycles['smp.ipi_handler']).toBe(r.counters['smp.ipis']! * 780);
    // Long faulting threads are still running at every round: every round reaches all three.
    const busy = pft('per_vma', 3, 4096, { rounds });
    expect(busy.counters['smp.ipis']).toBe(rounds * 3);
    expect(r.cycles['smp.ipi']).toBeGreaterThan(0);
    expect(r.counters['faults.total']).toBe(3 * 64 + rounds * 16); // MAP_POPULATE faults the writer's pages
  });

  it('up to 4.18 (linux-3.15) a CPU whose thread is done takes one flush IPI and leaves the mm; 6.18 skips it', () => {
    const rounds = 5;
    const old = pft('mmap_lock', 3, 8, { rounds, profile: 'linux-3.15' });
    const now = pft('mmap_lock', 3, 8, { rounds });
    const mm = (r: Pft) => r.m.kernel.cpus[3]!.mm!.tlb;
    // The faulting threads finish long before the writer's last munmap: on 3.15 its flush reached
    // each idle CPU once (leave_mm: off the mask, CR3 to swapper_pg_dir), on 6.18 none of them.
    expect(mm(old).cpumask).toBe(0b1000);
    expect([0, 1, 2].map((c) => old.m.kernel.cpus[c]!.mm)).toEqual([null, null, null]);
    expect(mm(now).cpumask).toBe(0b1111);
    expect(old.counters['smp.ipis']).toBeGreaterThan(now.counters['smp.ipis']!);
    expect(old.counters['smp.ipis']).toBeLessThanOrEqual(now.counters['smp.ipis']! + 3);
  });

  it('2008 KVM shadow paging: a guest PTE write that fills a non-present spte flushes no other vCPU (need_remote_flush)', () => {
    const faultsOnly = pft('mmap_lock', 3, 64, { platform: 'kvm-shadow', profile: 'linux-2.6.27' });
    expect(faultsOnly.counters['faults.total']).toBe(3 * 64);
    expect(faultsOnly.counters['kvm.remote_flushes']).toBe(0);
    // A munmap's zap takes sptes away: those flushes reach the other vCPUs.
    const withWriter = pft('mmap_lock', 3, 64, { platform: 'kvm-shadow', profile: 'linux-2.6.27', rounds: 4 });
    expect(withWriter.counters['kvm.remote_flushes']).toBeGreaterThan(0);
  });

  it('under KVM the sender makes one PV send-IPI hypercall per flush', () => {
    const rounds = 4;
    const native = pft('mmap_lock', 2, 32, { rounds });
    const kvm = pft('mmap_lock', 2, 32, { rounds, platform: 'kvm-tdp' });
    // The same flushes as natively, within the timing the platforms' costs change.
    expect(Math.abs(kvm.counters['smp.ipis']! - native.counters['smp.ipis']!)).toBeLessThanOrEqual(1);
    const hypercalls = kvm.counters['kvm.exits']! - kvm.counters['kvm.ept_violations']!;
    expect(hypercalls).toBeGreaterThan(0);
    expect(hypercalls).toBeLessThanOrEqual(rounds);
    expect(kvm.counters['smp.ipis']).toBeGreaterThanOrEqual(hypercalls); // one hypercall per flush, for all its targets
  });

  it('faults queue behind it under mmap_lock, not under per-VMA locks; speculative faults abort', () => {
    const mmap = pft('mmap_lock', 3, 256, { rounds: 40 });
    const vma = pft('per_vma', 3, 256, { rounds: 40 });
    const spf = pft('spf', 3, 256, { rounds: 40 });
    expect(mmap.counters['lock.mmap_lock.contended']).toBeGreaterThan(0);
    expect(mmap.cycles['lock.mmap_lock.wait']).toBeGreaterThan(10 * (vma.cycles['lock.mmap_lock.wait'] ?? 0));
    expect(spf.counters['spf.aborts']).toBeGreaterThan(0);
    expect(spf.counters['faults.total']).toBe(mmap.counters['faults.total']); // a redo is not a new fault
  });

  it("on every platform the CPUs' clocks add up to the run's cycles (waits and flush handlers included), every page faults once, and the run repeats exactly", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<FaultLockPolicy>('mmap_lock', 'per_vma', 'spf'),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 40 }),
        fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
        fc.boolean(),
        fc.constantFrom<PlatformName>('native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'),
        (lock, n, pages, rounds, apart, platform) => {
          const r = pft(lock, n, pages, { rounds, perThreadVmas: apart, platform });
          const sum = r.clocks.reduce((x, y) => x + y, 0);
          expect(Math.abs(sum - r.total)).toBeLessThan(1e-6 * Math.max(1, r.total));
          expect(r.counters['faults.total']).toBe(n * pages + (rounds ?? 0) * 16);
          const again = pft(lock, n, pages, { rounds, perThreadVmas: apart, platform });
          expect(again.clocks).toEqual(r.clocks);
          expect(again.counters).toEqual(r.counters);
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('the cross-CPU checker (--check with several CPUs)', () => {
  /** Two threads of one process: CPU 0 writes a page, CPU 1 reads it; both TLBs hold it. */
  function shared() {
    const m = smpMachine('native', 2);
    const a = m.spawn();
    const vma = m.mmap(a, { pages: 8, prot: VM_READ | VM_WRITE, shared: false, file: null });
    const b = m.spawnThread(a);
    m.switchTo(a);
    m.accessRun(a, vma.start, USER_WRITE, 1);
    m.runOn(1);
    m.switchTo(b);
    m.accessRun(b, vma.start, USER_READ, 1);
    m.runOn(0);
    return { m, a, vma };
  }

  it('passes after a munmap that flushed both CPUs', () => {
    const { m, a, vma } = shared();
    expect(() => m.munmap(a, vma.start, 8)).not.toThrow();
  });

  it('catches a PTE cleared without a flush', () => {
    const { m, a, vma } = shared();
    const k = m.kernel;
    const pt = pteTableFor(k, a.mm, vma.start, false);
    m.pv.ptepGetAndClear(pt, vpnIndex(vma.start, 1)); // no TLB flush anywhere
    // (The one-CPU invariants would complain first, about RSS: ask the cross-CPU checker itself.)
    expect(checkTlbsAgainstTables(k, m.platform)).toMatch(
      /^CPU 0: the TLB maps page \d+ to frame \d+, but its PTE is not present$/,
    );
  });

  it('catches a CPU holding translations outside mm_cpumask', () => {
    const { m, a } = shared();
    a.mm.tlb.cpumask &= ~(1 << 1);
    expect(() => m.verify('test')).toThrow(/CPU 1 holds translations of mm \d+ but is not in its mm_cpumask/);
  });
});
