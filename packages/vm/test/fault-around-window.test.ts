/**
 * mm/memory.c do_fault_around() window geometry (linux-mm.md §1.2): it starts at the fault's
 * nr-aligned boundary, or at the VMA start when that is later, and takes up to nr pages from
 * there, clipped to the VMA end and the 512-entry page table. Inside a VMA the window is the
 * naturally aligned block; a VMA starting mid-block shifts it (the kernel code, then and now,
 * counts nr pages from the clamped start: `to_pte = min3(from_pte + nr, ...)`, and in 3.15
 * `max_pgoff = min3(..., pgoff + fault_around_pages() - 1)`), so it reaches into the next block.
 */
import fc from 'fast-check';
import { faultAroundWindow } from '../src/index.js';

/**
 * Brute force, by enumeration: walk up from vpn's nr-aligned boundary and take the first nr pages
 * that lie in the VMA and in vpn's page table, stopping at the first page that does not once one
 * was taken (the window is contiguous).
 */
function reference(vpn: number, start: number, end: number, nr: number): { from: number; to: number } {
  const table = vpn - (vpn % 512);
  const inside = (v: number) => v >= start && v < end && v >= table && v < table + 512;
  let from = -1;
  let to = -1;
  let taken = 0;
  for (let v = vpn - (vpn % nr); taken < nr && v < table + 512; v++) {
    if (!inside(v)) {
      if (taken > 0) break;
      continue;
    }
    if (taken === 0) from = v;
    to = v;
    taken++;
  }
  return { from, to };
}

/** A 2 MiB-aligned base page number. */
const B = 0x7f0000000 - 512 * 64;

describe('faultAroundWindow: 16 pages (64 KiB, the default)', () => {
  test('inside a large aligned VMA the window is the aligned 16-page block', () => {
    expect(faultAroundWindow(B, B, B + 4096, 16)).toEqual({ from: B, to: B + 15 });
    expect(faultAroundWindow(B + 15, B, B + 4096, 16)).toEqual({ from: B, to: B + 15 });
    expect(faultAroundWindow(B + 16, B, B + 4096, 16)).toEqual({ from: B + 16, to: B + 31 });
    expect(faultAroundWindow(B + 100, B, B + 4096, 16)).toEqual({ from: B + 96, to: B + 111 });
    // Aligned, not centred: the fault at the last page of a block gets no page after it.
    expect(faultAroundWindow(B + 111, B, B + 4096, 16)).toEqual({ from: B + 96, to: B + 111 });
  });

  test('a VMA that starts mid-block (start not 16-aligned): 16 pages from the VMA start', () => {
    const s = B + 5;
    // from = max(ALIGN_DOWN(5, 16), 5 - min(5, 0)) = 5; to = min3(5 + 16, 512, ...) - 1 = 20.
    expect(faultAroundWindow(s, s, s + 1000, 16)).toEqual({ from: B + 5, to: B + 20 });
    expect(faultAroundWindow(s + 7, s, s + 1000, 16)).toEqual({ from: B + 5, to: B + 20 });
    expect(faultAroundWindow(B + 15, s, s + 1000, 16)).toEqual({ from: B + 5, to: B + 20 });
    // Faults in the next block get the aligned block again (they overlap the first window).
    expect(faultAroundWindow(B + 16, s, s + 1000, 16)).toEqual({ from: B + 16, to: B + 31 });
    expect(faultAroundWindow(B + 31, s, s + 1000, 16)).toEqual({ from: B + 16, to: B + 31 });
    // A short VMA that starts mid-block is clipped at its end as well.
    expect(faultAroundWindow(B + 6, s, B + 12, 16)).toEqual({ from: B + 5, to: B + 11 });
  });

  test('clipped to a VMA that ends mid-block', () => {
    const e = B + 40; // last block [32, 48) has 8 pages in the VMA
    expect(faultAroundWindow(B + 33, B, e, 16)).toEqual({ from: B + 32, to: B + 39 });
    expect(faultAroundWindow(B + 39, B, e, 16)).toEqual({ from: B + 32, to: B + 39 });
  });

  test('a one-page VMA and a VMA inside one block give exactly the VMA', () => {
    expect(faultAroundWindow(B + 7, B + 7, B + 8, 16)).toEqual({ from: B + 7, to: B + 7 });
    expect(faultAroundWindow(B + 9, B + 3, B + 12, 16)).toEqual({ from: B + 3, to: B + 11 });
  });

  test('a VMA crossing a 2 MiB boundary: the window never leaves the page table', () => {
    const s = B + 500;
    const e = B + 530;
    // Faults on both sides of the boundary at B + 512.
    expect(faultAroundWindow(B + 505, s, e, 16)).toEqual({ from: B + 500, to: B + 511 });
    expect(faultAroundWindow(B + 511, s, e, 16)).toEqual({ from: B + 500, to: B + 511 });
    expect(faultAroundWindow(B + 512, s, e, 16)).toEqual({ from: B + 512, to: B + 527 });
    expect(faultAroundWindow(B + 529, s, e, 16)).toEqual({ from: B + 528, to: B + 529 });
  });
});

describe('faultAroundWindow: other window sizes', () => {
  test('1 page: only the faulting page', () => {
    for (const v of [B, B + 1, B + 17, B + 511, B + 512])
      expect(faultAroundWindow(v, B, B + 4096, 1)).toEqual({ from: v, to: v });
  });

  test('4 pages', () => {
    expect(faultAroundWindow(B + 6, B, B + 4096, 4)).toEqual({ from: B + 4, to: B + 7 });
    expect(faultAroundWindow(B + 6, B + 5, B + 4096, 4)).toEqual({ from: B + 5, to: B + 8 });
    expect(faultAroundWindow(B + 6, B, B + 7, 4)).toEqual({ from: B + 4, to: B + 6 });
  });

  test('64 pages', () => {
    expect(faultAroundWindow(B + 100, B, B + 4096, 64)).toEqual({ from: B + 64, to: B + 127 });
    // VMA [70, 110): from = 70, to = min(70 + 64, 110) - 1.
    expect(faultAroundWindow(B + 100, B + 70, B + 110, 64)).toEqual({ from: B + 70, to: B + 109 });
    // VMA from 990: from = 990, 64 pages would reach 1053 but the page table ends at 1023.
    expect(faultAroundWindow(B + 1000, B + 990, B + 1100, 64)).toEqual({ from: B + 990, to: B + 1023 });
    expect(faultAroundWindow(B + 1000, B + 970, B + 1100, 64)).toEqual({ from: B + 970, to: B + 1023 });
    expect(faultAroundWindow(B + 1000, B + 950, B + 1100, 64)).toEqual({ from: B + 960, to: B + 1023 });
  });

  test('512 pages: the whole page table, clipped to the VMA', () => {
    expect(faultAroundWindow(B + 700, B, B + 4096, 512)).toEqual({ from: B + 512, to: B + 1023 });
    expect(faultAroundWindow(B + 700, B + 600, B + 800, 512)).toEqual({ from: B + 600, to: B + 799 });
    expect(faultAroundWindow(B + 300, B + 200, B + 2000, 512)).toEqual({ from: B + 200, to: B + 511 });
    expect(faultAroundWindow(B + 200, B + 200, B + 2000, 512)).toEqual({ from: B + 200, to: B + 511 });
    expect(faultAroundWindow(B + 513, B + 200, B + 2000, 512)).toEqual({ from: B + 512, to: B + 1023 });
  });

  test('the window always contains the fault and lies in the VMA', () => {
    for (const nr of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) {
      for (let v = B + 493; v < B + 533; v++) {
        const w = faultAroundWindow(v, B + 493, B + 533, nr);
        expect(w.from).toBeLessThanOrEqual(v);
        expect(w.to).toBeGreaterThanOrEqual(v);
        expect(w.from).toBeGreaterThanOrEqual(B + 493);
        expect(w.to).toBeLessThan(B + 533);
        expect(w.to - w.from + 1).toBeLessThanOrEqual(nr);
      }
    }
  });
});

describe('faultAroundWindow against a brute-force reference', () => {
  test('exhaustive over a small region: every fault, VMA bounds near a PMD boundary, every window size', () => {
    let cases = 0;
    for (const nr of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) {
      for (let start = B + 480; start < B + 520; start += 3) {
        for (let end = start + 1; end < B + 560; end += 7) {
          for (let v = start; v < end; v += 2) {
            expect(faultAroundWindow(v, start, end, nr)).toEqual(reference(v, start, end, nr));
            cases++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(10000);
  });

  test('random VMAs, faults and window sizes (linux-mm.md §1.2 formula = the definition)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 35 - 5000 }), // VMA start page (any 48-bit user address)
        fc.integer({ min: 1, max: 4000 }), // VMA pages
        fc.nat(), // fault position (mod VMA size)
        fc.integer({ min: 0, max: 9 }), // log2 window
        (start, pages, at, order) => {
          const vpn = start + (at % pages);
          const nr = 1 << order;
          expect(faultAroundWindow(vpn, start, start + pages, nr)).toEqual(reference(vpn, start, start + pages, nr));
        },
      ),
      { numRuns: 5000, seed: 42 },
    );
  });
});
