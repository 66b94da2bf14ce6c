/**
 * brk(2) (mm/mmap.c brk, do_brk_flags): the heap grows in place from mm->start_brk, shrinks by an
 * unmap of its tail, and refuses to go below its start or into another mapping.
 */
import { BRK_BASE_VPN, checkInvariants, heapVma } from '../src/index.js';
import { makeHarness, mapAnon, presentPages, ptePresent, touch, touchRange } from './helpers.js';

describe('brk', () => {
  it('the first brk(0) reads the break; growing maps one heap VMA, grown in place after', () => {
    const h = makeHarness();
    const task = h.sys.spawn();
    expect(h.sys.brk(task, 0)).toBe(BRK_BASE_VPN); // refused (below start_brk): the break is returned
    expect(heapVma(task.mm)).toBeNull();
    expect(h.sys.brk(task, BRK_BASE_VPN + 16)).toBe(BRK_BASE_VPN + 16);
    const heap = heapVma(task.mm)!;
    expect([heap.start, heap.end, heap.isAnon()]).toEqual([BRK_BASE_VPN, BRK_BASE_VPN + 16, true]);
    h.sys.brk(task, BRK_BASE_VPN + 48);
    expect(heapVma(task.mm)).toBe(heap); // vma_expand: the same VMA
    expect(heap.end).toBe(BRK_BASE_VPN + 48);
    expect(task.mm.vmas.size).toBe(1);
    touchRange(h, task, heap, 0, 48, true);
    expect(presentPages(h, task, heap)).toHaveLength(48);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('shrinking unmaps the tail: its pages are zapped, the head stays', () => {
    const h = makeHarness();
    const task = h.sys.spawn();
    h.sys.brk(task, BRK_BASE_VPN + 32);
    const heap = heapVma(task.mm)!;
    touchRange(h, task, heap, 0, 32, true);
    const freedBefore = h.k.stats.pagesFreed;
    expect(h.sys.brk(task, BRK_BASE_VPN + 8)).toBe(BRK_BASE_VPN + 8);
    expect(heap.end).toBe(BRK_BASE_VPN + 8);
    expect(ptePresent(h, task, BRK_BASE_VPN + 7)).toBe(true);
    expect(ptePresent(h, task, BRK_BASE_VPN + 8)).toBe(false);
    expect(h.k.stats.pagesFreed - freedBefore).toBe(24);
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('refuses to go below start_brk or to grow into another mapping, leaving the break', () => {
    const h = makeHarness();
    const task = h.sys.spawn();
    h.sys.brk(task, BRK_BASE_VPN + 4);
    mapAnon(h, task, 4, BRK_BASE_VPN + 8);
    expect(h.sys.brk(task, BRK_BASE_VPN + 16)).toBe(BRK_BASE_VPN + 4);
    expect(h.sys.brk(task, BRK_BASE_VPN - 1)).toBe(BRK_BASE_VPN + 4);
    expect(h.sys.brk(task, BRK_BASE_VPN + 8)).toBe(BRK_BASE_VPN + 8); // up to the mapping is fine
    expect(touch(h, task, BRK_BASE_VPN + 7, true)).toBeGreaterThanOrEqual(0);
  });

  it('fork copies the break and the heap', () => {
    const h = makeHarness();
    const parent = h.sys.spawn();
    h.sys.brk(parent, BRK_BASE_VPN + 8);
    touch(h, parent, BRK_BASE_VPN, true);
    const child = h.sys.fork(parent);
    expect([child.mm.brkStart, child.mm.brk]).toEqual([BRK_BASE_VPN, BRK_BASE_VPN + 8]);
    expect(heapVma(child.mm)).not.toBeNull();
    expect(h.sys.brk(child, BRK_BASE_VPN + 16)).toBe(BRK_BASE_VPN + 16);
    expect(parent.mm.brk).toBe(BRK_BASE_VPN + 8);
  });
});
