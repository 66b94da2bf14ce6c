/**
 * populateByRead: a sequential read() of a whole file through the kernel's own readahead
 * (page_cache_sync_ra, then page_cache_async_ra on each marker), as `cache=readback` sets up a file.
 * The folio layouts are the ones the real 6.18.44 kernel gave (docs/validation.md, rb-seq).
 */
import { PG_LOCKED, PG_READAHEAD, PG_UPTODATE } from '../src/page-flags.js';
import { populateByRead } from '../src/index.js';
import { makeHarness, policyOf } from './helpers.js';

/** Pages per folio order over the whole file, after read()s of `readPages` with ra_pages `raPages`. */
function layout(profile: string, pages: number, readPages: number, raPages: number): Record<number, number> {
  const h = makeHarness(policyOf(profile));
  h.k.raPages = raPages;
  const file = h.k.pageCache.createFile('f', pages * 4096);
  populateByRead(h.k, file, readPages);
  const out: Record<number, number> = {};
  for (let i = 0; i < pages; i++) {
    const pfn = file.cache[i]!;
    expect(pfn).toBeGreaterThanOrEqual(0);
    out[h.k.frames.order[pfn]!] = (out[h.k.frames.order[pfn]!] ?? 0) + 1;
  }
  return out;
}

describe('populateByRead', () => {
  test('64 MiB in 128 KiB reads with read_ahead_kb=8192 on 6.18: orders 0, 2, 4, 6, one 7, 8, then 9 (as measured)', () => {
    // Windows [0,128) (init: 4 × the 32-page read), +256, +512, +1024, then [1920, 3840): 2048
    // with its end aligned down to 256 (1 << min(order 8, ffs(2048) - 1)), an order-7 folio to
    // reach alignment, then order 8; [3840, 5120) ends 1024-aligned; order 9 from 4096 on.
    expect(layout('linux-6.18', 16384, 32, 2048)).toEqual({
      0: 128,
      2: 256,
      4: 512,
      6: 1024,
      7: 128,
      8: 2048,
      9: 12288,
    });
  });

  test('default read_ahead_kb=128: orders 0, 2, 4, then 5 (capped by the 32-page window)', () => {
    expect(layout('linux-6.18', 1024, 32, 32)).toEqual({ 0: 32, 2: 32, 4: 32, 5: 1024 - 96 });
  });

  test('a profile without large folios reads order-0 pages only', () => {
    expect(layout('linux-3.15', 1024, 32, 32)).toEqual({ 0: 1024 });
  });

  test('every page ends uptodate and unlocked, with no marker left, and the file_ra_state is fresh for the next opener', () => {
    const h = makeHarness(policyOf('linux-6.18'));
    h.k.raPages = 2048;
    const file = h.k.pageCache.createFile('f', 4096 * 4096);
    populateByRead(h.k, file, 32);
    for (let i = 0; i < 4096; i++) {
      const flags = h.k.frames.flags[file.cache[i]!]!;
      expect(flags & (PG_LOCKED | PG_UPTODATE | PG_READAHEAD)).toBe(PG_UPTODATE);
    }
    expect(file.ra.size).toBe(0);
    expect(file.ra.order).toBe(0);
    expect(h.k.stats.ioPages).toBe(4096); // each page read once
  });
});
