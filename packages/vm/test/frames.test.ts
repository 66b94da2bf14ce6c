/**
 * FrameTable: the binary buddy allocator (mm/page_alloc.c __rmqueue_smallest / __free_one_page)
 * and per-frame metadata.
 */
import fc from 'fast-check';
import { isPteError, Prng, PteError } from '@pte/core';
import { FrameTable, NO_OWNER, PG_ALLOCATED } from '../src/index.js';

describe('FrameTable construction', () => {
  test('frame 0 is reserved; the rest is free in naturally aligned blocks', () => {
    const t = new FrameTable(4096);
    expect(t.freeCount).toBe(4095);
    expect(t.allocated).toBe(0);
    expect(t.isAllocated(0)).toBe(true);
    expect(t.isAllocated(1)).toBe(false);
    expect(t.owner[5]).toBe(NO_OWNER);
  });

  test('more reserved frames, an odd size', () => {
    const t = new FrameTable(1000, 7);
    expect(t.freeCount).toBe(993);
    for (let p = 0; p < 7; p++) expect(t.isAllocated(p)).toBe(true);
    // Every free frame can be handed out once, and none of the reserved ones.
    const got = new Set<number>();
    for (let i = 0; i < 993; i++) got.add(t.alloc(0));
    expect(got.size).toBe(993);
    for (let p = 0; p < 7; p++) expect(got.has(p)).toBe(false);
    expect(Math.max(...got)).toBe(999);
    expect(t.alloc(0)).toBe(-1);
    expect(t.freeCount).toBe(0);
  });
});

describe('alloc and free of every order', () => {
  test.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])(
    'order %i: naturally aligned, marked, counted, and merged back',
    (order) => {
      const t = new FrameTable(8192);
      const initial = t.freeCount;
      const n = 1 << order;
      const blocks: number[] = [];
      const bad: string[] = [];
      for (;;) {
        const pfn = t.alloc(order);
        if (pfn < 0) break;
        blocks.push(pfn);
        if (pfn % n !== 0 || pfn <= 0) bad.push(`block at ${pfn}`);
        for (let i = 0; i < n; i++) {
          if (t.order[pfn + i] !== order || t.flags[pfn + i] !== PG_ALLOCATED) bad.push(`frame ${pfn + i}`);
        }
      }
      expect(bad).toEqual([]);
      // Frame 0 is reserved, so the first block of every order > 0 is lost: 8192 / n - 1 blocks.
      expect(blocks.length).toBe(order === 0 ? 8191 : 8192 / n - 1);
      expect(t.allocated).toBe(blocks.length * n);
      expect(t.freeCount).toBe(initial - blocks.length * n);
      // Blocks never overlap.
      const seen = new Set<number>();
      for (const b of blocks) for (let i = 0; i < n; i++) seen.add(b + i);
      expect(seen.size).toBe(blocks.length * n);
      for (const b of blocks) t.free(b, order);
      expect(t.allocated).toBe(0);
      expect(t.freeCount).toBe(initial);
      // Merged: the largest blocks are available again (one per 4 MiB except the first).
      const big: number[] = [];
      for (let pfn = t.alloc(10); pfn >= 0; pfn = t.alloc(10)) big.push(pfn);
      expect(big.sort((a, b) => a - b)).toEqual([1024, 2048, 3072, 4096, 5120, 6144, 7168]);
    },
  );

  test('splitting a block hands out its lower part and leaves one free block of each lower order (expand)', () => {
    const t = new FrameTable(4096, 0);
    const b = t.alloc(0);
    expect(b % 1024).toBe(0);
    expect(t.freeCount).toBe(4095);
    // The split left free blocks at b + 1 (order 0), b + 2 (order 1), ..., b + 512 (order 9).
    for (let o = 0; o <= 9; o++) expect(t.alloc(o)).toBe(b + (1 << o));
    expect(t.allocated).toBe(1024);
    // The other three 4 MiB blocks are untouched.
    expect(t.freeCount).toBe(3072);
  });

  test('allocated and peakAllocated', () => {
    const t = new FrameTable(1024);
    const a = t.alloc(3);
    const b = t.alloc(0);
    expect(t.allocated).toBe(9);
    t.free(a, 3);
    expect(t.allocated).toBe(1);
    expect(t.peakAllocated).toBe(9);
    t.free(b, 0);
    expect(t.allocated).toBe(0);
    expect(t.peakAllocated).toBe(9);
  });

  test('free resets the frame metadata and alloc resets the counts', () => {
    const t = new FrameTable(64);
    const p = t.alloc(2);
    t.refcount[p] = 5;
    t.mapcount[p + 1] = 2;
    t.owner[p + 2] = 3;
    t.free(p, 2);
    for (let i = 0; i < 4; i++) {
      expect(t.flags[p + i]).toBe(0);
      expect(t.owner[p + i]).toBe(NO_OWNER);
      expect(t.isAllocated(p + i)).toBe(false);
    }
    // The frames merged back into one free block: only its head carries an order (FREE | order).
    let heads = 0;
    for (let i = 0; i < 64; i++) if (t.order[i] !== 0) heads++;
    expect(heads).toBeLessThanOrEqual(6); // frame 0 is reserved: blocks of 1, 2, 4, 8, 16, 32
    const q = t.alloc(2);
    expect(q).toBe(p);
    expect([t.order[q], t.order[q + 3]]).toEqual([2, 2]);
    expect(t.refcount[q]).toBe(0);
    expect(t.mapcount[q + 1]).toBe(0);
  });

  test('a double free throws', () => {
    const t = new FrameTable(64);
    const p = t.alloc(1);
    t.free(p, 1);
    expect(() => t.free(p, 1)).toThrow(/double free/);
    expect(t.allocated).toBe(0);
  });

  test('orders above maxOrder cannot be allocated', () => {
    const t = new FrameTable(1 << 14, 1, 10);
    expect(t.alloc(11)).toBe(-1);
    expect(t.alloc(10)).toBeGreaterThan(0);
  });
});

describe('allocOrFail', () => {
  test('out of memory is a PteError with code model, naming the order and the free frames', () => {
    // 16 frames: free blocks 1 (order 0), 2 (1), 4 (2), 8 (3).
    const t = new FrameTable(16);
    expect(t.allocOrFail(3)).toBe(8);
    let err: unknown;
    try {
      t.allocOrFail(3);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PteError);
    expect(isPteError(err)).toBe(true);
    const pe = err as PteError;
    expect(pe.code).toBe('model');
    expect(pe.message).toBe('guest out of memory: no free block of order 3 (7 frames free)');
    expect(pe.hint).toBe('give the guest more memory (--set mem=...)');
    // A failed allocation changes nothing.
    expect(t.freeCount).toBe(7);
    expect(t.allocated).toBe(8);
    expect(t.allocOrFail(2)).toBe(4);
  });

  test('fragmented memory: enough free frames but no block of the order', () => {
    const t = new FrameTable(64, 0);
    const singles: number[] = [];
    for (let i = 0; i < 64; i++) singles.push(t.alloc(0));
    // Free every other frame: 32 free, no two buddies.
    for (let i = 0; i < 64; i += 2) t.free(singles[i]!, 0);
    expect(t.freeCount).toBe(32);
    expect(t.alloc(1)).toBe(-1);
    expect(() => t.allocOrFail(1)).toThrow(/no free block of order 1 \(32 frames free\)/);
    // Freeing the rest merges everything back into one block of 64.
    for (let i = 1; i < 64; i += 2) t.free(singles[i]!, 0);
    expect(t.alloc(6)).toBe(0);
  });
});

describe('random alloc/free sequences', () => {
  test('blocks never overlap, are aligned, and everything merges back (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 64, max: 5000 }), (seed, frames) => {
        const t = new FrameTable(frames);
        const initial = t.freeCount;
        const prng = new Prng(seed, 'buddy');
        const owner = new Int32Array(frames).fill(-1);
        const live: { pfn: number; order: number }[] = [];
        for (let step = 0; step < 400; step++) {
          if (live.length > 0 && prng.nextInt(3) === 0) {
            const { pfn, order } = live.splice(prng.nextInt(live.length), 1)[0]!;
            for (let i = 0; i < 1 << order; i++) owner[pfn + i] = -1;
            t.free(pfn, order);
          } else {
            const order = prng.nextInt(6);
            const pfn = t.alloc(order);
            if (pfn < 0) continue;
            if (pfn % (1 << order) !== 0) throw new Error(`order-${order} block at ${pfn} is not aligned`);
            for (let i = 0; i < 1 << order; i++) {
              if (owner[pfn + i] !== -1) throw new Error(`frame ${pfn + i} handed out twice`);
              owner[pfn + i] = step;
            }
            live.push({ pfn, order });
          }
          if (t.freeCount + t.allocated !== initial)
            throw new Error(`free ${t.freeCount} + allocated ${t.allocated} != ${initial}`);
        }
        for (const { pfn, order } of live) t.free(pfn, order);
        expect(t.freeCount).toBe(initial);
        expect(t.allocated).toBe(0);
        // Fully merged: the free memory can be taken back in maximal aligned blocks, exactly as at boot.
        const fresh = new FrameTable(frames);
        for (let o = t.maxOrder; o >= 0; o--) {
          let a = 0;
          let b = 0;
          while (t.alloc(o) >= 0) a++;
          while (fresh.alloc(o) >= 0) b++;
          expect(a).toBe(b);
        }
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});
