import fc from 'fast-check';
import { MmapLock } from '../src/mmap-lock.js';
import { RWSEM_READ, type Granted } from '../src/rwsem.js';
import { VMA_READ_ABORT, VMA_READ_LOCKED, VmaLock } from '../src/vma-lock.js';

describe('MmapLock: the rwsem and mm_lock_seq together (include/linux/mmap_lock.h)', () => {
  it('a writer granted by a release write-locks the VMAs it stamps; downgrade lets faults back in', () => {
    const l = new MmapLock();
    const vma = new VmaLock();
    expect(l.readLock(1, 0)).toBe(true);
    expect(l.writeLock(2, 1)).toBe(false);
    expect(l.seq.writeLocked).toBe(false); // queued, not holding
    expect(l.readUnlock().map((w) => w.task)).toEqual([2]);
    expect(l.seq.writeLocked).toBe(true);
    vma.startWrite(l.seq, 2);
    expect(vma.startRead(l.seq)).toBe(VMA_READ_ABORT);
    l.downgrade(2);
    expect(l.seq.writeLocked).toBe(false);
    expect(vma.startRead(l.seq)).toBe(VMA_READ_LOCKED);
    expect(l.readTrylock()).toBe(true);
  });

  it('under any sequence, mm_lock_seq is odd exactly while a writer holds mmap_lock', () => {
    const N = 5;
    const step = fc.record({ task: fc.nat(N - 1), op: fc.constantFrom('read', 'write', 'unlock', 'downgrade', 'try') });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const l = new MmapLock();
        const state: string[] = Array.from({ length: N }, () => 'idle');
        const grant = (g: Granted) => {
          for (const w of g) state[w.task] = w.kind === RWSEM_READ ? 'r' : 'w';
        };
        let now = 0;
        for (const { task: t, op } of steps) {
          now++;
          if (op === 'read' && state[t] === 'idle') state[t] = l.readLock(t, now) ? 'r' : 'wait';
          else if (op === 'try' && state[t] === 'idle') state[t] = l.readTrylock() ? 'r' : 'idle';
          else if (op === 'write' && state[t] === 'idle') state[t] = l.writeLock(t, now) ? 'w' : 'wait';
          else if (op === 'unlock' && state[t] === 'r') {
            state[t] = 'idle';
            grant(l.readUnlock());
          } else if (op === 'unlock' && state[t] === 'w') {
            state[t] = 'idle';
            grant(l.writeUnlock(t));
          } else if (op === 'downgrade' && state[t] === 'w') {
            state[t] = 'r';
            grant(l.downgrade(t));
          }
          expect(l.seq.writeLocked).toBe(l.sem.writer >= 0);
          expect(l.sem.check()).toBeNull();
        }
      }),
      { seed: 1, numRuns: 300 },
    );
  });
});
