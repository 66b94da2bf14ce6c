import {
  fadvise,
  getInitRaSize,
  getNextRaSize,
  MMAP_LOTSAMISS,
  pageCacheSyncRa,
  PG_READAHEAD,
  PG_UPTODATE,
  type Inode,
  type Kernel,
} from '../src/index.js';
import { FIXED_BASE, makeHarness, mapFile, policyOf, touch, type Harness } from './helpers.js';

/** Cached pages of `inode` as a sorted list. */
function cached(file: Inode): number[] {
  const out: number[] = [];
  for (let i = 0; i < file.pages; i++) if (file.cache[i] !== -1) out.push(i);
  return out;
}

function markers(k: Kernel, file: Inode): number[] {
  const out: number[] = [];
  for (let i = 0; i < file.pages; i++)
    if (file.cache[i] !== -1 && (k.frames.flags[file.cache[i]!]! & PG_READAHEAD) !== 0) out.push(i);
  return out;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

function coldFile(h: Harness, pages: number, advice?: 'random' | 'sequential') {
  const task = h.sys.spawn();
  const file = h.k.pageCache.createFile('cold', pages * 4096);
  const vma = mapFile(h, task, file, pages, { fixedVpn: FIXED_BASE });
  if (advice !== undefined) h.sys.madvise(task, vma.start, pages, advice);
  return { task, file, vma };
}

describe('window sizes (mm/readahead.c)', () => {
  it('get_init_ra_size: 1-2 pages → 16k, 3-4 → 32k, 5-8 → 64k, more → 128k for max 32', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 32].map((n) => getInitRaSize(n, 32))).toEqual([4, 4, 8, 8, 16, 16, 32, 32]);
  });

  it('get_next_ra_size ramps ×4 below max/16, then ×2 up to max', () => {
    expect(getNextRaSize(1, 32)).toBe(4);
    const ramp = [4];
    while (ramp[ramp.length - 1]! < 32) ramp.push(getNextRaSize(ramp[ramp.length - 1]!, 32));
    expect(ramp).toEqual([4, 8, 16, 32]);
    expect(getNextRaSize(32, 32)).toBe(32);
    // A bigger device window: ×4 while below max/16.
    expect([1, 4, 16, 32, 64, 128, 256].map((c) => getNextRaSize(c, 512))).toEqual([4, 16, 64, 64, 128, 256, 512]);
  });

  it('a first synchronous read of 1 page reads 4, with the async marker on the first page past the request', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const file = h.k.pageCache.createFile('f', 64 * 4096);
    pageCacheSyncRa(h.k, file, 0, 1);
    expect(cached(file)).toEqual([0, 1, 2, 3]);
    expect(markers(h.k, file)).toEqual([1]); // async_size = size - req = 3: mark at start + size - 3
    expect(h.k.stats.ioRequests).toBe(1);
  });
});

describe('mmap read-around and async readahead (mm/filemap.c)', () => {
  it('a major fault reads ra_pages centred on it (16 before) with the marker 8 after', () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1 }));
    const { task, file, vma } = coldFile(h, 256);
    touch(h, task, vma.start + 100, false);
    expect(h.k.stats.faultsMajor).toBe(1);
    expect(cached(file)).toEqual(range(84, 116));
    expect(markers(h.k, file)).toEqual([108]);
    expect(h.k.stats.ioRequests).toBe(1);
    expect(h.k.stats.ioPages).toBe(32);
  });

  it('reaching the marker reads the next window ahead (start += size), without a major fault', () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1 }));
    const { task, file, vma } = coldFile(h, 256);
    touch(h, task, vma.start + 100, false); // window 84..115, marker 108
    touch(h, task, vma.start + 108, false);
    expect(h.k.stats.faultsMajor).toBe(1);
    expect(cached(file)).toEqual(range(84, 148));
    expect(markers(h.k, file)).toEqual([116]); // async_size = size: the mark is the window's first page
    expect(file.ra.start).toBe(116);
    expect(file.ra.size).toBe(32);
    expect(h.k.stats.ioRequests).toBe(2);
  });

  it('more than MMAP_LOTSAMISS misses switch read-around off', () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1 }));
    const { task, file, vma } = coldFile(h, 16384);
    // Faults 64 pages apart: no window overlaps the next, no hit lowers mmap_miss.
    for (let i = 0; i < MMAP_LOTSAMISS; i++) touch(h, task, vma.start + 64 * i + 32, false);
    expect(file.ra.mmapMiss).toBe(MMAP_LOTSAMISS);
    expect(h.k.stats.ioPages).toBe(32 * MMAP_LOTSAMISS);
    touch(h, task, vma.start + 64 * MMAP_LOTSAMISS + 32, false); // the 101st miss: no read-around
    expect(file.ra.mmapMiss).toBe(MMAP_LOTSAMISS + 1);
    expect(h.k.stats.ioPages).toBe(32 * MMAP_LOTSAMISS + 1);
    expect(h.k.stats.faultsMajor).toBe(MMAP_LOTSAMISS + 1);
  });

  it('MADV_RANDOM reads one page per major fault', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const { task, file, vma } = coldFile(h, 256, 'random');
    for (const p of [5, 6, 7, 200]) touch(h, task, vma.start + p, false);
    expect(h.k.stats.faultsMajor).toBe(4);
    expect(h.k.stats.ioPages).toBe(4);
    expect(cached(file)).toEqual([5, 6, 7, 200]);
  });

  it('MADV_SEQUENTIAL reads ra_pages ahead of the fault', () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1 }));
    const { task, file, vma } = coldFile(h, 256, 'sequential');
    touch(h, task, vma.start + 10, false);
    expect(cached(file)).toEqual(range(10, 42));
    expect(h.k.stats.ioPages).toBe(32);
    expect(h.k.frames.flags[file.cache[10]!]! & PG_UPTODATE).toBe(PG_UPTODATE);
  });

  it('fault-around never maps a page marked PG_readahead, so the marker still faults', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const { task, file, vma } = coldFile(h, 256);
    touch(h, task, vma.start + 100, false); // window 84..115, marker 108; fault-around found nothing cached yet
    const faults = h.k.stats.faults;
    touch(h, task, vma.start + 97, false); // fault-around maps 96..111 except the marker
    expect(h.k.stats.faults).toBe(faults + 1);
    touch(h, task, vma.start + 108, false);
    expect(h.k.stats.faults).toBe(faults + 2); // the marker faulted and started the next window
    expect(markers(h.k, file)).toEqual([116]);
  });
});

describe("map on IO completion (the thread's proposal)", () => {
  it('maps the read-around neighbours when the read completes, leaving the faulting page to the fault', () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1, mapOnIoComplete: true }));
    const { task, vma } = coldFile(h, 256);
    touch(h, task, vma.start + 100, false); // read-around 84..115, the marker at 108
    // Every page of the window but the marker (skipped, so it still drives async readahead) and
    // the faulting page (mapped by the fault) is mapped when the read completes.
    expect(h.k.stats.pteMappedOnIo).toBe(30);
    expect(h.k.stats.ptePopulated).toBe(31);
    const faults = h.k.stats.faults;
    for (let p = 84; p < 116; p++) if (p !== 108) touch(h, task, vma.start + p, false);
    expect(h.k.stats.faults).toBe(faults); // no fault for any of them
  });

  it('is off by default: the same read maps only the faulting page', () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1 }));
    const { task, vma } = coldFile(h, 256);
    touch(h, task, vma.start + 100, false);
    expect(h.k.stats.pteMappedOnIo).toBe(0);
    expect(h.k.stats.ptePopulated).toBe(1);
  });
});

describe('fadvise (mm/fadvise.c)', () => {
  it("SEQUENTIAL doubles the file's readahead; RANDOM reads only the request on the sync path; WILLNEED fills the cache", () => {
    const h = makeHarness(policyOf('linux-3.15', { faultAround: 1 }));
    const { task, file, vma } = coldFile(h, 512, 'sequential'); // MADV_SEQUENTIAL: sync readahead of ra_pages
    fadvise(h.k, file, 0, 0, 'sequential');
    touch(h, task, vma.start + 10, false);
    expect(cached(file)).toEqual(range(10, 74)); // 2 × 32 pages
    fadvise(h.k, file, 0, 0, 'random');
    touch(h, task, vma.start + 300, false);
    expect(cached(file).filter((i) => i >= 74)).toEqual(range(300, 364)); // FMODE_RANDOM: the request (ra_pages) alone, no init window growth
    fadvise(h.k, file, 0, 0, 'normal');
    const before = h.k.stats.ioPages;
    fadvise(h.k, file, 400, 20, 'willneed');
    expect(h.k.stats.ioPages - before).toBe(20);
    expect(cached(file).filter((i) => i >= 400)).toEqual(range(400, 420));
  });

  it('WILLNEED reads at most max(io_pages, ra_pages) pages, order 0, submitted and not waited for', () => {
    for (const [raPages, expected] of [
      [32, 1024],
      [2048, 2048],
    ] as const) {
      const h = makeHarness(policyOf('linux-6.18'));
      h.k.raPages = raPages;
      const file = h.k.pageCache.createFile('big', 16384 * 4096);
      fadvise(h.k, file, 0, 0, 'willneed');
      expect(cached(file)).toEqual(range(0, expected)); // the 6.18.44 probe: 2048 of 16384 with read_ahead_kb=8192
      expect(h.k.stats.ioRequests).toBe(expected / 512); // 2 MiB chunks
      for (const i of [0, expected - 1]) {
        const pfn = file.cache[i]!;
        expect(h.k.frames.order[pfn]).toBe(0);
        expect(h.k.frames.flags[pfn]! & PG_UPTODATE).toBe(0); // in flight: mincore() does not count it yet
      }
    }
  });
});

describe('MADV_HUGEPAGE readahead (do_sync_mmap_readahead, force_thp_readahead)', () => {
  it('linux-6.18: a major fault reads two aligned 2 MiB folios and maps the faulting one with a PMD', () => {
    const h = makeHarness(policyOf('linux-6.18'));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('huge', 8 * 512 * 4096);
    const vma = mapFile(h, task, file, 8 * 512, { fixedVpn: FIXED_BASE, shared: false, write: false });
    h.sys.madvise(task, vma.start, vma.pages, 'hugepage');
    touch(h, task, vma.start + 700, false);
    expect(h.k.stats.faultsMajor).toBe(1);
    expect(h.k.stats.ioPages).toBe(1024); // pages 512..1535: two PMD folios from the aligned start
    expect(h.k.frames.order[h.k.pageCache.lookup(file, 512)]).toBe(9);
    expect(h.k.frames.order[h.k.pageCache.lookup(file, 1024)]).toBe(9);
    expect(h.k.stats.pmdMapped).toBe(1);
  });

  it('linux-3.15 (no large folios): MADV_HUGEPAGE changes nothing', () => {
    const h = makeHarness(policyOf('linux-3.15'));
    const task = h.sys.spawn();
    const file = h.k.pageCache.createFile('huge', 8 * 512 * 4096);
    const vma = mapFile(h, task, file, 8 * 512, { fixedVpn: FIXED_BASE, shared: false, write: false });
    h.sys.madvise(task, vma.start, vma.pages, 'hugepage');
    touch(h, task, vma.start + 700, false);
    expect(h.k.stats.ioPages).toBe(32); // read-around as always
    expect(h.k.stats.pmdMapped).toBe(0);
  });
});
