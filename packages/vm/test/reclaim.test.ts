import { checkInvariants, populateByWrite, PG_DIRTY } from '../src/index.js';
import { FIXED_BASE, makeHarness, mapFile, policyOf, ptePresent, touch } from './helpers.js';

/** A guest of `frames` frames with reclaim on, a cached file of `pages` pages mapped at FIXED_BASE. */
function setup(frames: number, pages: number, prefaultOld: boolean, opts: { shared?: boolean; write?: boolean } = {}) {
  const h = makeHarness(policyOf('linux-3.15', { prefaultOld }), frames, true);
  const task = h.sys.spawn();
  const file = h.k.pageCache.createFile('f', pages * 4096);
  populateByWrite(h.k, file, 16, 0);
  const vma = mapFile(h, task, file, pages, {
    fixedVpn: FIXED_BASE,
    shared: opts.shared ?? false,
    write: opts.write ?? false,
  });
  h.k.switchMm(task.mm);
  return { h, task, file, vma, r: h.k.reclaim! };
}

describe('reclaim and prefaulted PTEs (folio_check_references)', () => {
  it('a young prefaulted, never-touched page survives its first scan; the unmapped cache goes first', () => {
    const { h, task, file, vma, r } = setup(4096, 256, false);
    touch(h, task, vma.start, false); // fault-around maps 0..15, all young; only page 0 touched
    r.shrink(8);
    // The LRU tail is the oldest folio: pages 0..15 are scanned first, referenced (A set) and kept.
    expect(r.kept).toBe(16);
    expect(r.reclaimed).toBe(8);
    for (let i = 0; i < 16; i++) expect(ptePresent(h, task, vma.start + i)).toBe(true);
    expect(file.cache[16]).toBe(-1); // the first unmapped pages went instead
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('with old prefaulted PTEs the untouched pages are reclaimed first', () => {
    const { h, task, file, vma, r } = setup(4096, 256, true);
    touch(h, task, vma.start, false);
    r.shrink(8);
    expect(r.kept).toBe(1); // page 0: touched, so its PTE is young
    expect(r.reclaimed).toBe(8);
    expect(ptePresent(h, task, vma.start)).toBe(true);
    for (let i = 1; i <= 8; i++) {
      expect(ptePresent(h, task, vma.start + i)).toBe(false);
      expect(file.cache[i]).toBe(-1);
    }
    expect(h.k.stats.ptePrefaultedUnused).toBe(8); // evicted without ever being used
    expect(checkInvariants(h.k)).toEqual([]);
  });

  it('a kept page that is referenced again is activated on the next scan', () => {
    const { h, task, vma, r } = setup(4096, 256, false);
    touch(h, task, vma.start, false);
    r.shrink(8); // page 0..15 kept with PG_referenced, A cleared
    // Page 0 used again: the TLB still holds it (x86 does not flush for ptep_test_and_clear_young),
    // so drop the TLB entry to let the walk set A again, as a later miss would.
    h.mmu.invlpg(Math.floor(vma.start / 1048576), ((vma.start % 1048576) * 4096) >>> 0);
    touch(h, task, vma.start, false);
    const before = r.activated;
    r.shrink(300);
    expect(r.activated).toBeGreaterThan(before);
  });
});

describe('memory pressure', () => {
  it('never goes above the guest size, keeps the invariants, and counts refaults', () => {
    const { h, task, file, vma, r } = setup(2048, 4096, false);
    for (let i = 0; i < 4096; i += 4) touch(h, task, vma.start + i, false);
    expect(h.k.frames.allocated).toBeLessThanOrEqual(2048);
    expect(file.nrPages).toBeLessThan(4096);
    expect(r.reclaimed).toBeGreaterThan(0);
    expect(checkInvariants(h.k)).toEqual([]);
    const refaults = r.refaults;
    const read = h.k.stats.ioPages;
    touch(h, task, vma.start, false); // long evicted by now: read around again
    // Every folio added back over a shadow entry is a refault (workingset_refault), the read-around too.
    expect(h.k.stats.ioPages - read).toBe(32);
    expect(r.refaults).toBe(refaults + 32);
  });

  it('loses no dirty data: every dirty page evicted is written back first', () => {
    const { h, task, file, vma, r } = setup(2048, 4096, false, { shared: true, write: true });
    let dirtied = 0;
    for (let i = 0; i < 4096; i += 2) {
      touch(h, task, vma.start + i, true);
      dirtied++;
    }
    let dirtyInCache = 0;
    for (let i = 0; i < 4096; i++)
      if (file.cache[i] !== -1 && (h.k.frames.flags[file.cache[i]!]! & PG_DIRTY) !== 0) dirtyInCache++;
    // Written pages are dirty in the cache, or were written back when evicted.
    expect(dirtyInCache + r.writebacks).toBe(dirtied);
    expect(r.writebacks).toBeGreaterThan(0);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});

describe('pages read but never used before eviction (reclaim.evicted_unused)', () => {
  it('counts every page readahead brought in that no fault and no PTE walk used', () => {
    const h = makeHarness(policyOf('linux-3.15'), 4096, true);
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('cold', 256 * 4096);
    const vma = mapFile(h, task, file, 256, { fixedVpn: FIXED_BASE, shared: false, write: false });
    touch(h, task, vma.start, false); // major: read-around reads pages 0..31 in one request
    expect(file.nrPages).toBe(32);
    touch(h, task, vma.start + 5, false); // minor: fault-around maps 0..15; page 5 is the faulting one
    touch(h, task, vma.start + 7, false); // a TLB miss walks the prefaulted PTE: page 7 used too
    const r = h.k.reclaim!;
    for (let i = 0; i < 8 && file.nrPages > 0; i++) r.shrink(64);
    expect(file.nrPages).toBe(0);
    // 32 read; pages 0, 5 and 7 were used.
    expect(r.evictedUnused).toBe(29);
    expect(checkInvariants(h.k)).toEqual([]);
  });
});
