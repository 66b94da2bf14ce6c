import fc from 'fast-check';
import {
  CpuTlbState,
  FLUSH_FULL,
  FLUSH_LAZY_SWITCH,
  FLUSH_LEAVE_MASK,
  FLUSH_NONE,
  FLUSH_RANGE,
  flushTlbMmRange as flushWith,
  FlushTlbInfo,
  MmTlbState,
  switchMmTlb,
  TLB_SINGLE_PAGE_FLUSH_CEILING,
} from '../src/tlb-flush.js';

const HZ = 1000; // the trim interval in these tests' clock

/** flush_tlb_mm_range with the kernel's ceiling (33) at clock `now`, a fresh info per call so results can be kept. */
function flushTlbMmRange(
  mm: MmTlbState,
  cpus: CpuTlbState[],
  self: number,
  strides: number,
  freedTables: boolean,
  now: number,
  trimInterval: number,
  lazyMmCpumask = true,
): FlushTlbInfo {
  const info = new FlushTlbInfo(cpus.length, { now: () => now, trimIntervalCycles: trimInterval, lazyMmCpumask });
  return flushWith(mm, cpus, self, info.set(strides, freedTables, TLB_SINGLE_PAGE_FLUSH_CEILING));
}

/** `n` CPUs; those in `running` have `mm` loaded (non-lazy, up to date) and are in its mask. */
function setup(n: number, running: number[]): { mm: MmTlbState; cpus: CpuTlbState[] } {
  const mm = new MmTlbState(HZ); // init_new_context at time 0: the first trim after one interval
  const cpus = Array.from({ length: n }, (_, i) => new CpuTlbState(i));
  for (const i of running) {
    cpus[i]!.loaded = mm;
    mm.cpumask |= 1 << i;
  }
  return { mm, cpus };
}

describe('flush_tlb_mm_range (arch/x86/mm/tlb.c)', () => {
  it('one CPU: a range of up to 33 pages is flushed page by page, 34 as a whole', () => {
    expect(TLB_SINGLE_PAGE_FLUSH_CEILING).toBe(33);
    const { mm, cpus } = setup(1, [0]);
    const a = flushTlbMmRange(mm, cpus, 0, 33, false, 0, HZ);
    expect([a.strides, a.action[0], a.remote]).toEqual([33, FLUSH_RANGE, 0]);
    const b = flushTlbMmRange(mm, cpus, 0, 34, false, 0, HZ);
    expect([b.strides, b.action[0], b.remote]).toEqual([0, FLUSH_FULL, 0]);
    const c = flushTlbMmRange(mm, cpus, 0, 0, false, 0, HZ); // TLB_FLUSH_ALL
    expect(c.action[0]).toBe(FLUSH_FULL);
    expect(mm.tlbGen).toBe(3);
    expect(cpus[0]!.localGen).toBe(3);
  });

  it('threads on four CPUs: every CPU running the mm is flushed, three by IPI', () => {
    const { mm, cpus } = setup(4, [0, 1, 2, 3]);
    const p = flushTlbMmRange(mm, cpus, 2, 1, false, 0, HZ);
    expect([...p.action]).toEqual([FLUSH_RANGE, FLUSH_RANGE, FLUSH_RANGE, FLUSH_RANGE]);
    expect(p.remote).toBe(3);
    expect(p.ipiMask).toBe(0b1011);
  });

  it('a lazy CPU is skipped, unless page tables were freed: then it switches to init_mm', () => {
    const { mm, cpus } = setup(2, [0, 1]);
    cpus[1]!.lazy = true;
    const p = flushTlbMmRange(mm, cpus, 0, 1, false, 0, HZ);
    expect([...p.action]).toEqual([FLUSH_RANGE, FLUSH_NONE]);
    expect(p.remote).toBe(0);
    const q = flushTlbMmRange(mm, cpus, 0, 1, true, 0, HZ);
    expect([...q.action]).toEqual([FLUSH_RANGE, FLUSH_LAZY_SWITCH]);
    expect(q.remote).toBe(1);
    expect(cpus[1]!.loaded).toBeNull();
    expect(mm.cpumask).toBe(0b11); // it stays in the mask until a later flush finds it elsewhere
  });

  it('a CPU that switched to another mm stays in the mask until the once-a-second trim', () => {
    const { mm, cpus } = setup(2, [0, 1]);
    const other = new MmTlbState(Infinity);
    cpus[1]!.loaded = other;
    const early = flushTlbMmRange(mm, cpus, 0, 1, false, 10, HZ);
    expect([...early.action]).toEqual([FLUSH_RANGE, FLUSH_NONE]);
    expect(early.remote).toBe(0);
    const notYet = flushTlbMmRange(mm, cpus, 0, 1, false, HZ, HZ); // time_after: strictly after
    expect(notYet.remote).toBe(0);
    const trim = flushTlbMmRange(mm, cpus, 0, 1, false, HZ + 1, HZ);
    expect([...trim.action]).toEqual([FLUSH_RANGE, FLUSH_LEAVE_MASK]);
    expect(trim.remote).toBe(1);
    expect(mm.cpumask).toBe(0b01);
    // Alone in the mask now: a local flush, no IPI, whatever the clock.
    const after = flushTlbMmRange(mm, cpus, 0, 1, false, 5 * HZ, HZ);
    expect(after.remote).toBe(0);
  });

  it('up to 4.18: a switch away leaves the mask, and a lazy CPU takes the IPI once and leaves the mm', () => {
    const { mm, cpus } = setup(3, [0, 1, 2]);
    const other = new MmTlbState(Infinity);
    switchMmTlb(cpus[2]!, other, false); // switch_mm(): "stop flush ipis for the previous mm"
    expect(mm.cpumask).toBe(0b011);
    expect(other.cpumask).toBe(0b100);
    cpus[1]!.lazy = true;
    const p = flushTlbMmRange(mm, cpus, 0, 1, false, 0, HZ, false);
    expect([...p.action]).toEqual([FLUSH_RANGE, FLUSH_LAZY_SWITCH, FLUSH_NONE]);
    expect([p.remote, p.ipiMask]).toEqual([1, 0b010]);
    expect([mm.cpumask, cpus[1]!.loaded]).toEqual([0b001, null]); // leave_mm()
    const q = flushTlbMmRange(mm, cpus, 0, 1, false, 0, HZ, false);
    expect(q.remote).toBe(0); // alone now: a local flush
    // 6.14+: the same switch keeps the bit (trimmed later), and the lazy CPU is skipped.
    const lazy = setup(3, [0, 1, 2]);
    switchMmTlb(lazy.cpus[2]!, other, true);
    lazy.cpus[1]!.lazy = true;
    const r = flushTlbMmRange(lazy.mm, lazy.cpus, 0, 1, false, 0, HZ, true);
    expect([r.remote, lazy.mm.cpumask]).toEqual([0, 0b111]);
  });

  it('a kernel without the ceiling (ceiling 0) flushes every range whole', () => {
    const { mm, cpus } = setup(1, [0]);
    const info = new FlushTlbInfo(1, { now: () => 0, trimIntervalCycles: HZ, lazyMmCpumask: true }).set(1, false, 0);
    expect(flushWith(mm, cpus, 0, info).action[0]).toBe(FLUSH_FULL);
  });

  it('CPU ids are bits of a 32-bit mask: at most 31 CPUs', () => {
    expect(() => new CpuTlbState(31)).toThrow(/CPUs 0\.\.30/);
  });

  it('a CPU two flushes behind brings its context up to date with one full flush', () => {
    const { mm, cpus } = setup(2, [0, 1]);
    cpus[1]!.localGen = -1; // missed a flush (it was lazy then, say)
    const p = flushTlbMmRange(mm, cpus, 0, 1, false, 0, HZ);
    expect([...p.action]).toEqual([FLUSH_RANGE, FLUSH_FULL]);
    expect(cpus[1]!.localGen).toBe(mm.tlbGen);
  });

  it.each([true, false])(
    'under any sequence of flushes, switches and lazy periods, no CPU running the mm is left behind (lazy mask %s)',
    (lazyMask) => {
      const N = 4;
      const op = fc.oneof(
        fc.record({
          k: fc.constant('flush' as const),
          self: fc.nat(N - 1),
          strides: fc.nat(40),
          freed: fc.boolean(),
          dt: fc.nat(600),
        }),
        fc.record({
          k: fc.constant('switch' as const),
          cpu: fc.nat(N - 1),
          to: fc.constantFrom('mm', 'other', 'lazy'),
        }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
          const { mm, cpus } = setup(N, [0]);
          const other = new MmTlbState(Infinity);
          let now = 0;
          for (const o of ops) {
            if (o.k === 'switch') {
              const c = cpus[o.cpu]!;
              if (o.to === 'lazy') {
                if (c.loaded !== null) c.lazy = true; // enter_lazy_tlb keeps the mm loaded
              } else {
                switchMmTlb(c, o.to === 'mm' ? mm : other, lazyMask); // joins the mask; a stale context is flushed on load
              }
              continue;
            }
            now += o.dt;
            // The initiator runs the mm (it is changing its own address space).
            const me = cpus[o.self]!;
            if (me.loaded !== mm || me.lazy) switchMmTlb(me, mm, lazyMask);
            const p = flushTlbMmRange(mm, cpus, o.self, o.strides, o.freed, now, 1000, lazyMask);
            // Every CPU that acted got the IPI (a CPU may get one and find nothing to do).
            [...p.action].forEach((a, i) => {
              if (a !== FLUSH_NONE && i !== o.self) expect(p.ipiMask & (1 << i)).not.toBe(0);
            });
            expect(p.remote).toBe(cpus.filter((c) => (p.ipiMask & (1 << c.id)) !== 0).length);
            expect(p.ipiMask & (1 << o.self)).toBe(0);
            for (const c of cpus) {
              // The invariant the cross-CPU checker will assert: a CPU that runs the mm, not lazily,
              // is in its mask and has every flush.
              if (c.loaded === mm && !c.lazy) {
                expect(mm.cpumask & (1 << c.id)).not.toBe(0);
                expect(c.localGen).toBe(mm.tlbGen);
              }
              // With page tables freed, no CPU keeps the mm lazily.
              if (o.freed && (mm.cpumask & (1 << c.id)) !== 0) expect(c.loaded === mm && c.lazy).toBe(false);
              // Up to 4.18 the mask is exactly the CPUs running the mm, and after a flush none of them lazily.
              if (!lazyMask) {
                expect((mm.cpumask & (1 << c.id)) !== 0).toBe(c.loaded === mm);
                expect(c.loaded === mm && c.lazy).toBe(false);
              }
            }
          }
        }),
        { seed: 1, numRuns: 300 },
      );
    },
  );
});
