import fc from 'fast-check';
import { MmLockSeq, VMA_READ_ABORT, VMA_READ_LOCKED, VMA_READ_MISS, VmaLock } from '../src/vma-lock.js';

describe('per-VMA locks (mm/mmap_lock.c)', () => {
  it('faults read-lock a VMA while nobody writes the mm', () => {
    const mm = new MmLockSeq();
    const v = new VmaLock();
    expect(v.startRead(mm)).toBe(VMA_READ_LOCKED);
    expect(v.startRead(mm)).toBe(VMA_READ_LOCKED);
    expect(v.readers).toBe(2);
    expect(v.endRead()).toBe(-1);
    expect(v.success).toBe(2);
  });

  it('a VMA write-locked under mmap_lock aborts faults until the mmap write lock is released', () => {
    const mm = new MmLockSeq();
    const a = new VmaLock();
    const b = new VmaLock();
    mm.writeBegin();
    expect(a.startWrite(mm, 7)).toBe(true);
    expect(a.startRead(mm)).toBe(VMA_READ_ABORT);
    expect(b.startRead(mm)).toBe(VMA_READ_LOCKED); // another VMA of the same mm is not stopped
    mm.writeEnd(); // vma_end_write_all
    expect(a.startRead(mm)).toBe(VMA_READ_LOCKED);
    expect([a.success, a.abort]).toEqual([1, 1]);
    // The next write lock of the mm does not inherit the old stamp.
    mm.writeBegin();
    expect(a.writeLocked(mm)).toBe(false);
  });

  it('a writer waits for the readers to drain; meanwhile new readers abort; the last reader wakes it', () => {
    const mm = new MmLockSeq();
    const v = new VmaLock();
    v.startRead(mm);
    v.startRead(mm);
    mm.writeBegin();
    expect(v.startWrite(mm, 3)).toBe(false);
    expect(v.startRead(mm)).toBe(VMA_READ_ABORT);
    expect(v.endRead()).toBe(-1);
    expect(v.endRead()).toBe(3);
    expect(v.writeLocked(mm)).toBe(true);
    expect(v.startRead(mm)).toBe(VMA_READ_ABORT);
  });

  it('a VMA detached while still write-locked aborts to mmap_lock (the sequence is checked first)', () => {
    const mm = new MmLockSeq();
    const v = new VmaLock();
    mm.writeBegin();
    v.startWrite(mm, 1);
    v.detached = true; // munmap, before mmap_write_downgrade
    expect(v.startRead(mm)).toBe(VMA_READ_ABORT);
    mm.writeEnd();
    expect(v.startRead(mm)).toBe(VMA_READ_MISS);
  });

  it('a detached VMA is a miss (the walk is retried), and misuse is a model error', () => {
    const mm = new MmLockSeq();
    const v = new VmaLock();
    v.detached = true;
    expect(v.startRead(mm)).toBe(VMA_READ_MISS);
    expect(v.miss).toBe(1);
    expect(() => v.endRead()).toThrow(/vma_end_read without a reader/);
    expect(() => v.startWrite(mm, 1)).toThrow(/without mmap_lock held for write/);
    expect(() => mm.writeEnd()).toThrow(/write unlock without the lock/);
    mm.writeBegin();
    expect(() => mm.writeBegin()).toThrow(/taken twice/);
  });

  it('under any sequence, a writer never proceeds while a fault holds the VMA', () => {
    const op = fc.constantFrom('read', 'endRead', 'writeLock', 'writeUnlock');
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const mm = new MmLockSeq();
        const v = new VmaLock();
        let writing = false; // the writer holds the VMA (proceeded past vma_start_write)
        let waiting = false;
        for (const o of ops) {
          if (o === 'read') {
            const r = v.startRead(mm);
            if (r === VMA_READ_LOCKED) expect(writing || waiting).toBe(false);
          } else if (o === 'endRead' && v.readers > 0) {
            if (v.endRead() === 1) {
              expect(v.readers).toBe(0);
              waiting = false;
              writing = true;
            }
          } else if (o === 'writeLock' && !mm.writeLocked) {
            mm.writeBegin();
            if (v.startWrite(mm, 1)) writing = true;
            else waiting = true;
          } else if (o === 'writeUnlock' && writing) {
            mm.writeEnd();
            writing = false;
          }
          if (writing) expect(v.readers).toBe(0);
        }
      }),
      { seed: 1, numRuns: 300 },
    );
  });
});
