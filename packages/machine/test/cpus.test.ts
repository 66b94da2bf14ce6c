import { VM_READ, VM_WRITE } from '@pte/vm';
import { ACCESS_SEGV, USER_READ, USER_WRITE, type PlatformName } from '../src/index.js';
import { smpMachine } from './smp-machine.js';

const machine = smpMachine;

/**
 * A process `a` with 8 anonymous pages, and the task `b` that runs on CPU 1: a thread of `a`, or
 * `a` itself. `a` writes the first page on CPU 0 and `b` reads it on CPU 1, so both TLBs hold it.
 */
function onBothCpus(platform: PlatformName, threaded: boolean) {
  const m = machine(platform, 2);
  const a = m.spawn();
  const vma = m.mmap(a, { pages: 8, prot: VM_READ | VM_WRITE, shared: false, file: null });
  const b = threaded ? m.spawnThread(a) : a;
  m.switchTo(a);
  const pfn = m.accessRun(a, vma.start, USER_WRITE, 1);
  const walksBefore = m.counter('tlb.walks');
  m.runOn(1);
  m.switchTo(b);
  const pfnOnCpu1 = m.accessRun(b, vma.start, USER_READ, 1);
  return { m, a, b, vma, pfn, pfnOnCpu1, walksBefore };
}

describe.each<PlatformName>(['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'])('two CPUs on %s', (platform) => {
  it('each CPU has its own TLB: the second CPU walks a page the first one faulted in', () => {
    const { m, pfn, pfnOnCpu1, walksBefore } = onBothCpus(platform, false);
    expect(pfnOnCpu1).toBe(pfn);
    expect(m.counter('faults.total')).toBe(1);
    expect(m.counter('tlb.walks')).toBe(walksBefore + 1);
  });

  it.each([false, true])(
    "a munmap on CPU 0 takes the page from CPU 1's TLB too (CPU 1 runs a thread: %s)",
    (threaded) => {
      const { m, a, b, vma } = onBothCpus(platform, threaded);
      m.runOn(0);
      m.munmap(a, vma.start, 8);
      m.runOn(1);
      expect(m.accessRun(b, vma.start, USER_READ, 1)).toBe(ACCESS_SEGV);
    },
  );
});

describe('threads of one process on two CPUs (native)', () => {
  it('share the address space: a page one thread faulted in is there for the other; the last exit tears it down', () => {
    const { m, a, b, vma } = onBothCpus('native', true);
    m.accessRun(b, vma.start + 1, USER_WRITE, 1);
    expect(m.counter('faults.total')).toBe(2); // the first page was present already for b
    m.noteRss();
    expect(m.rssPages).toBe(2);
    m.exit(b);
    expect(m.pteLow(a, vma.start) & 1).toBe(1); // the address space lives on
    expect(m.counter('pte.zapped')).toBe(0);
    m.runOn(0);
    m.exit(a);
    expect(m.counter('pte.zapped')).toBe(2);
  });

  it('exec while other threads share the mm is refused (de_thread is not modelled)', () => {
    const m = machine('native', 1);
    const a = m.spawn();
    m.spawnThread(a);
    expect(() => m.exec(a)).toThrow(/exec of task \d+ while 1 other thread\(s\) share its mm/);
  });
});

describe('runThreads: threads in virtual time (page-fault-test without a writer)', () => {
  /** `n` threads on `n` CPUs, each writing its own 256 pages of one anonymous mapping. */
  function pft(n: number): { clocks: number[]; total: number; faults: number } {
    const m = machine('native', 2);
    const a = m.spawn();
    const vma = m.mmap(a, { pages: 512, prot: VM_READ | VM_WRITE, shared: false, file: null });
    const tasks = [a, ...Array.from({ length: n - 1 }, () => m.spawnThread(a))];
    m.startMeasurement();
    const per = 512 / n;
    const clocks = m.runThreads(
      tasks.map((task, i) => ({
        task,
        cpu: i,
        range: { start: vma.start + i * per, pages: per },
        pattern: { kind: 'seq' } as const,
        kind: 'write' as const,
      })),
    );
    const total = Object.values(m.measuredCycles()).reduce((x, y) => x + y, 0);
    return { clocks: [...clocks], total, faults: m.measuredCounters()['faults.total']! };
  }

  it("each CPU's clock is its own work; together they are the run's cycles, and two threads take about half the time", () => {
    const one = pft(1);
    const two = pft(2);
    expect(one.faults).toBe(512);
    expect(two.faults).toBe(512);
    expect(two.clocks[0]! + two.clocks[1]!).toBe(two.total);
    expect(one.clocks[0]).toBe(one.total);
    const makespan = Math.max(...two.clocks);
    expect(makespan).toBeLessThan(0.6 * one.clocks[0]!);
    expect(makespan).toBeGreaterThan(0.4 * one.clocks[0]!);
    expect(pft(2)).toEqual(two); // deterministic
  });
});

describe('CPUs: what is refused', () => {
  it('cpus outside 1..31, and an unknown CPU', () => {
    expect(() => machine('native', 0)).toThrow(/cpus: 0 is not 1\.\.31/);
    expect(() => machine('native', 32)).toThrow(/cpus: 32 is not 1\.\.31/);
    expect(() => machine('native', 1).runOn(1)).toThrow(/no CPU 1/);
  });
});
