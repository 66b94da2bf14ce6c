import { resolveRunCosts } from '../src/index.js';
import { Machine } from '../src/index.js';
import { checkInvariants, getProfile, type VmPolicy } from '@pte/vm';
import type { Program, Workload } from '@pte/workloads';

const MiB = 2 ** 20;

function machine(profile = 'linux-3.15', overrides: Partial<VmPolicy> = {}, check = true): Machine {
  const p = getProfile(profile);
  return new Machine({
    platform: 'native',
    profile: p,
    policy: { ...p.policy, ...overrides },
    memBytes: 256 * MiB,
    seed: 1,
    costs: resolveRunCosts({}),
    check,
  });
}

/** A make-like parent: it maps a shared library and a heap, then forks compilers that touch both and exit. */
function forky(children: number): Workload {
  const child: Program = {
    name: 'cc',
    ops: [
      { op: 'touch', region: 'libc', pattern: { kind: 'stride', stride: 8 }, access: 'read' },
      { op: 'touch', region: 'heap', pattern: { kind: 'seq' }, access: 'write', pages: 16 },
      { op: 'mmap', region: 'scratch', file: null, size: 256 * 1024, shared: false, prot: 'rw' },
      { op: 'touch', region: 'scratch', pattern: { kind: 'seq' }, access: 'write' },
      { op: 'exit' },
    ],
  };
  return {
    files: [{ name: 'libc.so', size: 2 * MiB, cache: 'written', ioChunk: MiB }],
    main: {
      name: 'make',
      ops: [
        { op: 'mmap', region: 'libc', file: 'libc.so', size: 2 * MiB, shared: false, prot: 'rx' },
        { op: 'mmap', region: 'heap', file: null, size: 1 * MiB, shared: false, prot: 'rw' },
        { op: 'touch', region: 'libc', pattern: { kind: 'seq' }, access: 'read' },
        { op: 'touch', region: 'heap', pattern: { kind: 'seq' }, access: 'write' },
        ...Array.from({ length: children }, () => ({ op: 'fork' as const, child })),
        { op: 'exit' },
      ],
    },
  };
}

describe('Machine.runWorkload', () => {
  it('runs a forky workload end to end with the invariant checkers on, and returns every frame', () => {
    const m = machine();
    m.runWorkload(forky(3));
    const c = m.measuredCounters();
    expect(c['proc.forks']).toBe(3);
    expect(c['proc.exits']).toBe(4);
    // The library mapping is private and never written: no anon_vma, so fork copies no PTE of it
    // (vma_needs_copy) and each child refaults it: 512 pages / stride 8 = 64 touches, fault-around 16
    // maps the 16-page window of each touch → 32 faults per child.
    // The heap (anon, written) is copied: 256 PTEs per fork, old and read-only (COW).
    expect(c['pte.copied']).toBe(3 * 256);
    // Each child writes 16 heap pages: COW copies (the parent's pages are shared after fork).
    expect(c['faults.cow']).toBe(3 * 16);
    expect(checkInvariants(m.kernel)).toEqual([]);
    expect(m.kernel.mms.size).toBe(0);
    expect(m.mem.tableCount).toBe(0);
    // What remains allocated: the reserved frame 0, the zero page, and the page cache.
    const cached = m.kernel.pageCache.files.reduce((n, f) => n + f.nrPages, 0);
    expect(m.kernel.frames.allocated).toBe(1 + cached);
  });

  it('charges fork copies, zaps and faults to their categories', () => {
    const m = machine();
    m.runWorkload(forky(2));
    const cyc = m.measuredCycles();
    expect(cyc['guest.fork_copy']).toBe(2 * 256 * 132);
    expect(cyc['guest.zap']).toBeGreaterThan(0);
    expect(cyc['guest.fault']).toBeGreaterThan(0);
  });

  it('children refault the never-written private library: the first touch of each child faults', () => {
    const m = machine();
    m.runWorkload(forky(1));
    const c = m.measuredCounters();
    // Parent: 512 pages read sequentially with fault-around 16 = 32 faults; child: stride 8 over
    // 512 pages = 64 touches, one fault per 16-page window = 32 faults.
    const libFaults = 32 + 32;
    // Heap: parent 256 write faults; child 16 COW; scratch: 64 write faults.
    expect(c['faults.file']).toBe(libFaults);
    expect(c['faults.anon']).toBe(256 + 64);
    expect(c['faults.cow']).toBe(16);
  });

  it('is deterministic', () => {
    const a = machine();
    a.runWorkload(forky(2));
    const b = machine();
    b.runWorkload(forky(2));
    expect(a.measuredCounters()).toEqual(b.measuredCounters());
    expect(a.measuredCycles()).toEqual(b.measuredCycles());
  });

  it('rejects a malformed workload with a clear message', () => {
    const m = machine();
    expect(() =>
      m.runWorkload({
        files: [],
        main: {
          name: 'p',
          ops: [{ op: 'touch', region: 'x', pattern: { kind: 'seq' }, access: 'read' }, { op: 'exit' }],
        },
      }),
    ).toThrow("p step 1 (touch): region 'x' is not mapped here");
    expect(() => m.runWorkload({ files: [], main: { name: 'p', ops: [] } })).toThrow(
      'p: the program must end with exit',
    );
  });
});
