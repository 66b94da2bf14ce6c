import fc from 'fast-check';
import { RwSem, RWSEM_READ, RWSEM_WRITE, type Granted } from '../src/rwsem.js';

const tasks = (g: Granted) => g.map((w) => w.task);

describe('RwSem (kernel/locking/rwsem.c)', () => {
  it('readers share it; a writer waits for the last reader, then has it alone', () => {
    const s = new RwSem('mmap_lock');
    expect(s.downRead(1, 0)).toBe(true);
    expect(s.downRead(2, 0)).toBe(true);
    expect(s.downWrite(3, 5)).toBe(false);
    expect(s.readers).toBe(2);
    expect(tasks(s.upRead())).toEqual([]);
    expect(tasks(s.upRead())).toEqual([3]);
    expect(s.writer).toBe(3);
    expect(s.acquires).toBe(3);
    expect(s.contended).toBe(1);
  });

  it('a reader arriving while a writer waits queues behind it (no writer starvation)', () => {
    const s = new RwSem('mmap_lock');
    s.downRead(1, 0);
    s.downWrite(2, 1);
    expect(s.downRead(3, 2)).toBe(false);
    expect(s.waiters.map((w) => [w.task, w.kind, w.since])).toEqual([
      [2, RWSEM_WRITE, 1],
      [3, RWSEM_READ, 2],
    ]);
    expect(tasks(s.upRead())).toEqual([2]);
    expect(tasks(s.upWrite(2))).toEqual([3]);
    expect(s.readers).toBe(1);
  });

  it('a reader at the head wakes every queued reader, skipping the writers (phase-fair)', () => {
    const s = new RwSem('mmap_lock');
    s.downWrite(1, 0);
    s.downRead(2, 1);
    s.downWrite(3, 2);
    s.downRead(4, 3);
    s.downRead(5, 4);
    expect(tasks(s.upWrite(1))).toEqual([2, 4, 5]);
    expect(s.readers).toBe(3);
    expect(s.waiters.map((w) => w.task)).toEqual([3]);
  });

  it('writers get it in the order they queued', () => {
    const s = new RwSem('mmap_lock');
    s.downWrite(1, 0);
    s.downWrite(2, 1);
    s.downWrite(3, 2);
    expect(tasks(s.upWrite(1))).toEqual([2]);
    expect(tasks(s.upWrite(2))).toEqual([3]);
    expect(tasks(s.upWrite(3))).toEqual([]);
    expect(s.writer).toBe(-1);
  });

  it('downgrade_write keeps the lock as a reader and lets the readers at the head in, not a writer', () => {
    const s = new RwSem('mmap_lock');
    s.downWrite(1, 0);
    s.downRead(2, 1);
    s.downWrite(3, 2);
    expect(tasks(s.downgradeWrite(1))).toEqual([2]);
    expect(s.readers).toBe(2);
    expect(s.writer).toBe(-1);
    expect(tasks(s.upRead())).toEqual([]);
    expect(tasks(s.upRead())).toEqual([3]);
  });

  it('trylocks never queue: a read trylock fails while anyone waits, a write trylock unless it is free', () => {
    const s = new RwSem('mmap_lock');
    expect(s.tryDownRead()).toBe(true);
    expect(s.tryDownWrite(9)).toBe(false);
    s.downWrite(2, 1); // queued behind the reader
    expect(s.tryDownRead()).toBe(false);
    expect(s.waiters.map((w) => w.task)).toEqual([2]);
    expect(s.contended).toBe(1);
    expect(tasks(s.upRead())).toEqual([2]);
    expect(s.tryDownWrite(9)).toBe(false);
    s.upWrite(2);
    expect(s.tryDownWrite(9)).toBe(true);
    expect(s.writer).toBe(9);
  });

  it('releases by a non-holder are model errors', () => {
    const s = new RwSem('mmap_lock');
    expect(() => s.upRead()).toThrow(/mmap_lock: up_read without a reader/);
    s.downWrite(1, 0);
    expect(() => s.upWrite(2)).toThrow(/mmap_lock: up_write by 2, held by 1/);
    expect(() => s.downgradeWrite(2)).toThrow(/downgrade by 2, held by 1/);
  });

  it('under any sequence: exclusion holds, nobody overtakes a waiter, no wake-up is lost, writers keep FIFO order', () => {
    const N = 6;
    const step = fc.record({ task: fc.nat(N - 1), op: fc.constantFrom('read', 'write', 'release', 'downgrade') });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const s = new RwSem('l');
        // Each task: idle, waiting (r/w), holding (r/w).
        const state: string[] = Array.from({ length: N }, () => 'idle');
        const writeQueue: number[] = [];
        const grant = (g: Granted) => {
          for (const w of g) {
            expect(state[w.task]).toBe(w.kind === RWSEM_READ ? 'wait-r' : 'wait-w');
            if (w.kind === RWSEM_WRITE) expect(writeQueue.shift()).toBe(w.task);
            state[w.task] = w.kind === RWSEM_READ ? 'hold-r' : 'hold-w';
          }
        };
        let now = 0;
        const release = (t: number) => {
          if (state[t] === 'hold-r') grant(s.upRead());
          else grant(s.upWrite(t));
          state[t] = 'idle';
        };
        for (const { task: t, op } of steps) {
          now++;
          if (op === 'read' && state[t] === 'idle') {
            const queued = s.waiters.length > 0;
            state[t] = s.downRead(t, now) ? 'hold-r' : 'wait-r';
            if (queued) expect(state[t]).toBe('wait-r'); // nobody overtakes a waiter
          } else if (op === 'write' && state[t] === 'idle') {
            if (s.downWrite(t, now)) state[t] = 'hold-w';
            else {
              state[t] = 'wait-w';
              writeQueue.push(t);
            }
          } else if (op === 'release' && state[t]!.startsWith('hold')) release(t);
          else if (op === 'downgrade' && state[t] === 'hold-w') {
            state[t] = 'hold-r';
            grant(s.downgradeWrite(t));
          }
          expect(s.check()).toBeNull();
          expect(s.readers).toBe(state.filter((x) => x === 'hold-r').length);
          expect(s.writer < 0 ? 0 : 1).toBe(state.filter((x) => x === 'hold-w').length);
        }
        // Drain: release holders until nobody waits; every waiter gets the lock.
        for (let guard = 0; guard < 4 * N; guard++) {
          const holder = state.findIndex((x) => x.startsWith('hold'));
          if (holder < 0) break;
          release(holder);
        }
        expect(state.every((x) => x === 'idle')).toBe(true);
        expect(s.waiters).toHaveLength(0);
      }),
      { seed: 1, numRuns: 300 },
    );
  });
});
