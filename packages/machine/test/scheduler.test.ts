import fc from 'fast-check';
import { CycleLedger } from '@pte/core';
import { RwSem } from '@pte/vm';
import { Scheduler, STEP_BLOCKED, STEP_DONE, STEP_RAN, type SimThread } from '../src/scheduler.js';

/** A thread that charges `cost[k]` cycles at its k-th step and records when each step started. */
function worker(
  id: number,
  cpu: number,
  costs: number[],
  ledger: CycleLedger,
  cat: number,
  log: string[],
  s: () => Scheduler,
): SimThread {
  let k = 0;
  return {
    id,
    cpu,
    step() {
      log.push(`${id}@${s().now()}`);
      ledger.charge(cat, costs[k++]!);
      return k === costs.length ? STEP_DONE : STEP_RAN;
    },
  };
}

describe('Scheduler: CPUs in virtual time', () => {
  it('runs the CPU with the smallest clock next, ties to the lower CPU id', () => {
    const ledger = new CycleLedger();
    const cat = ledger.id('test.work');
    const log: string[] = [];
    const loaded: number[] = [];
    const s = new Scheduler(2, ledger, (c) => loaded.push(c));
    s.add(worker(10, 1, [100, 100, 100], ledger, cat, log, () => s));
    s.add(worker(20, 0, [250, 10], ledger, cat, log, () => s));
    s.run();
    // t=0: both at 0, CPU 0 first; then CPU 1 (0) three times until it passes 250, then CPU 0.
    expect(log).toEqual(['20@0', '10@0', '10@100', '10@200', '20@250']);
    expect([...s.clock]).toEqual([260, 300]);
    expect(loaded).toEqual([0, 1, 1, 1, 0]);
    expect(ledger.total()).toBe(560); // the sum of the CPUs' work
  });

  it('a thread blocked on mmap_lock resumes at the release; the gap is charged as waiting', () => {
    const ledger = new CycleLedger();
    const work = ledger.id('test.work');
    const wait = ledger.id('lock.mmap_lock.wait');
    const sem = new RwSem('mmap_lock');
    const log: string[] = [];
    const s = new Scheduler(2, ledger, () => {});
    // CPU 0, a munmap: write-lock, 300 cycles of work in three steps, unlock (each lock operation
    // at the start of its step).
    let w = 0;
    s.add({
      id: 1,
      cpu: 0,
      step() {
        if (w === 3) {
          s.sharedPoint();
          for (const g of sem.upWrite(1)) s.wake(g.task, s.now(), wait);
          log.push(`unlock@${s.now()}`);
          return STEP_DONE;
        }
        if (w === 0) {
          s.sharedPoint();
          expect(sem.downWrite(1, s.now())).toBe(true);
        }
        ledger.charge(work, 100);
        w++;
        return STEP_RAN;
      },
    });
    // CPU 1: 50 cycles of work; a fault takes the lock for read, works 40 cycles, releases.
    let r = 0;
    s.add({
      id: 2,
      cpu: 1,
      step() {
        switch (r++) {
          case 0:
            ledger.charge(work, 50);
            return STEP_RAN;
          case 1:
            s.sharedPoint();
            if (!sem.downRead(2, s.now())) {
              log.push(`blocked@${s.now()}`);
              return STEP_BLOCKED;
            }
            return STEP_RAN;
          case 2:
            log.push(`fault@${s.now()}`);
            ledger.charge(work, 40);
            return STEP_RAN;
          default:
            s.sharedPoint();
            sem.upRead();
            return STEP_DONE;
        }
      },
    });
    s.run();
    expect(log).toEqual(['blocked@50', 'unlock@300', 'fault@300']);
    expect(ledger.snapshot()['lock.mmap_lock.wait']).toBe(250);
    expect([...s.clock]).toEqual([300, 340]);
    expect(ledger.total()).toBe(300 + 50 + 40 + 250);
  });

  it('a step that charges cycles and then touches shared state is refused (others would see it too early)', () => {
    const ledger = new CycleLedger();
    const work = ledger.id('test.work');
    const s = new Scheduler(1, ledger, () => {});
    s.add({
      id: 1,
      cpu: 0,
      step() {
        ledger.charge(work, 100);
        s.sharedPoint();
        return STEP_DONE;
      },
    });
    expect(() => s.run()).toThrow(/CPU 0 touched shared state after charging cycles in the same step/);
  });

  it('threads left waiting with nobody to wake them are a deadlock, named', () => {
    const ledger = new CycleLedger();
    const s = new Scheduler(1, ledger, () => {});
    s.add({ id: 7, cpu: 0, step: () => STEP_BLOCKED });
    expect(() => s.run()).toThrow(/deadlock: threads 7 wait forever/);
  });

  it('refuses a second thread on a CPU, an unknown CPU, and waking a thread that does not wait', () => {
    const ledger = new CycleLedger();
    const s = new Scheduler(2, ledger, () => {});
    s.add({ id: 1, cpu: 0, step: () => STEP_DONE });
    expect(() => s.add({ id: 2, cpu: 0, step: () => STEP_DONE })).toThrow(/CPU 0 already runs a thread/);
    expect(() => s.add({ id: 3, cpu: 2, step: () => STEP_DONE })).toThrow(/no CPU 2/);
    expect(() => s.wake(1, 0, 0)).toThrow(/woken while not blocked/);
    expect(() => s.now()).toThrow(/no CPU is running/);
  });

  it('is deterministic, and every CPU clock is the sum of its own steps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 8 }), {
          minLength: 1,
          maxLength: 6,
        }),
        (perCpu) => {
          const runOnce = () => {
            const ledger = new CycleLedger();
            const cat = ledger.id('test.work');
            const log: string[] = [];
            const s = new Scheduler(perCpu.length, ledger, () => {});
            perCpu.forEach((costs, cpu) => s.add(worker(cpu, cpu, costs, ledger, cat, log, () => s)));
            s.run();
            return { log, clock: [...s.clock] };
          };
          const a = runOnce();
          expect(runOnce()).toEqual(a);
          expect(a.clock).toEqual(perCpu.map((c) => c.reduce((x, y) => x + y, 0)));
          // Each step starts at its CPU's clock, and steps start in non-decreasing time order.
          const starts = a.log.map((l) => Number(l.split('@')[1]));
          for (let i = 1; i < starts.length; i++) expect(starts[i]!).toBeGreaterThanOrEqual(starts[i - 1]!);
        },
      ),
      { seed: 1, numRuns: 200 },
    );
  });
});
