import { populateByWrite } from '../src/index.js';
import { FIXED_BASE, makeHarness, mapFile, policyOf, presentPages, touch } from './helpers.js';

/** Snook's madvise-gated fault-around (seed 001): prefault only where userspace asked. */
function setup(gate: boolean) {
  const h = makeHarness(policyOf('linux-3.15', { faultAroundGate: gate }));
  const task = h.sys.spawn();
  const file = h.k.pageCache.createFile('f', 256 * 4096);
  populateByWrite(h.k, file, 16, 0);
  const vma = mapFile(h, task, file, 256, { fixedVpn: FIXED_BASE, shared: false, write: false });
  return { h, task, vma };
}

describe('madvise-gated fault-around (policy faultAroundGate)', () => {
  it('off: every mapping gets the 16-page window', () => {
    const { h, task, vma } = setup(false);
    touch(h, task, vma.start + 3, false);
    expect(presentPages(h, task, vma)).toHaveLength(16);
  });

  it('on: an unadvised mapping maps only the faulting page', () => {
    const { h, task, vma } = setup(true);
    touch(h, task, vma.start + 3, false);
    expect(presentPages(h, task, vma)).toEqual([3]);
    expect(h.k.stats.ptePrefaulted).toBe(0);
  });

  it('on: MADV_SEQUENTIAL and MADV_WILLNEED turn the window back on for the advised range only', () => {
    const { h, task, vma: whole } = setup(true);
    const vma = { start: whole.start, end: whole.end, pages: 256 } as typeof whole; // madvise splits the VMA; look at all of it
    h.sys.madvise(task, vma.start, 64, 'sequential');
    h.sys.madvise(task, vma.start + 64, 64, 'willneed');
    touch(h, task, vma.start + 3, false);
    touch(h, task, vma.start + 64 + 3, false);
    touch(h, task, vma.start + 128 + 3, false);
    expect(presentPages(h, task, vma).filter((p) => p < 128)).toHaveLength(32);
    expect(presentPages(h, task, vma).filter((p) => p >= 128)).toEqual([131]);
    // MADV_NORMAL clears the hint again.
    h.sys.madvise(task, vma.start + 64, 64, 'normal');
    touch(h, task, vma.start + 64 + 40, false);
    expect(presentPages(h, task, vma).filter((p) => p >= 96 && p < 128)).toEqual([104]);
  });
});
