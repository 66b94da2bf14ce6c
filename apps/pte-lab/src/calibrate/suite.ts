/**
 * The microbenchmarks `pte-lab calibrate` times on the real kernel (native/probe.c) and runs in
 * the model as micro/mmap-touch with the same keys. Each names the costs it exposes; together they
 * separate the per-fault, per-page and per-PTE costs: one PTE per fault (anonymous), 16 per fault
 * (fault-around on order-0 folios), whole large folios touched sparsely, PMD-mapped folios, a write
 * notification per folio (shared writes), a copy per fault (COW),
 * a device read per fault (cold, MADV_RANDOM), and the zap, fork and TLB-walk phases of the same
 * mappings.
 */

/** The phases the probe times and the scenario charges (ledger phases mmap_touch.<phase>). */
export type Phase = 'touch' | 'retouch' | 'fork' | 'exit';

/** The probe's field (milliseconds) for each phase. */
export const PROBE_FIELD: Readonly<Record<Phase, string>> = {
  touch: 'loop_ms',
  retouch: 'retouch_ms',
  fork: 'fork_ms',
  exit: 'unmap_ms',
};

export interface Bench {
  readonly id: string;
  /** What it measures, for the residual table. */
  readonly what: string;
  /** micro/mmap-touch keys, the same for the probe and the model. */
  readonly set: Readonly<Record<string, string>>;
  readonly phases: readonly Phase[];
}

const SIZE = '16MiB';

export const CALIBRATION_SUITE: readonly Bench[] = [
  {
    id: 'anon-write',
    what: 'anonymous write fault (entry, allocation, page zeroing, PTE); TLB walks on a second pass; fork copy per PTE; zap and free',
    set: { backing: 'anon', access: 'write', size: SIZE, passes: '2', fork: 'on' },
    phases: ['touch', 'retouch', 'fork', 'exit'],
  },
  {
    id: 'anon-small',
    what: 'munmap of 16 written anonymous pages: under the flush ceiling (33), one INVLPG per page',
    set: { backing: 'anon', access: 'write', size: '64KiB' },
    phases: ['exit'],
  },
  {
    id: 'anon-read',
    what: 'anonymous read fault (the zero page, or a zeroed page where the kernel forbids it)',
    set: { backing: 'anon', access: 'read', size: SIZE },
    phases: ['touch', 'exit'],
  },
  {
    id: 'anon-random-walk',
    what: 'TLB-miss walks in random order over 64 MiB of mapped pages',
    set: { backing: 'anon', access: 'write', size: '64MiB', pattern: 'random:1', passes: '2' },
    phases: ['retouch'],
  },
  {
    id: 'anon-huge',
    what: 'page zeroing: one 2 MiB THP per fault under MADV_HUGEPAGE',
    set: { backing: 'anon', access: 'write', size: SIZE, advice: 'hugepage' },
    phases: ['touch', 'exit'],
  },
  {
    id: 'file-4k',
    what: 'cached file, order-0 folios: fault-around maps 16 PTEs per fault; zap of file PTEs',
    set: { backing: 'file', cache: 'written', io_chunk: '4KiB', size: SIZE },
    phases: ['touch', 'exit'],
  },
  {
    id: 'file-4k-stride16',
    what: 'cached file, order-0 folios, one touch per fault-around window (fault entry against PTE mapping)',
    set: { backing: 'file', cache: 'written', io_chunk: '4KiB', size: SIZE, pattern: 'stride:16' },
    phases: ['touch'],
  },
  {
    id: 'file-64k',
    what: 'cached file, 64 KiB folios (order 4): file PTE map and zap by folio size',
    set: { backing: 'file', cache: 'written', io_chunk: '64KiB', size: SIZE },
    phases: ['touch', 'exit'],
  },
  {
    id: 'file-1m',
    what: 'cached file, 1 MiB folios (order 8): file PTE map and zap by folio size',
    set: { backing: 'file', cache: 'written', io_chunk: '1MiB', size: SIZE },
    phases: ['touch', 'exit'],
  },
  {
    id: 'file-1m-sparse',
    what: 'cached file, 1 MiB folios, one touch per 64 pages: each fault maps a whole folio, few of its PTEs are used',
    set: { backing: 'file', cache: 'written', io_chunk: '1MiB', size: SIZE, pattern: 'stride:64' },
    phases: ['touch'],
  },
  {
    id: 'file-readback',
    what: 'a file read back through readahead: large folios, most of them PMD-mapped (one PMD per 2 MiB)',
    set: { backing: 'file', cache: 'readback', io_chunk: '128KiB', size: '32MiB' },
    phases: ['touch', 'exit'],
  },
  {
    id: 'file-shared-write',
    what: "shared write to a cached file: ->page_mkwrite per folio (the filesystem's write notification)",
    set: { backing: 'file', share: 'shared', cache: 'written', size: SIZE, access: 'write' },
    phases: ['touch'],
  },
  {
    id: 'file-cow',
    what: 'private write to a cached file: a copy-on-write fault per page (allocation and copy)',
    set: { backing: 'file', cache: 'written', size: SIZE, access: 'write' },
    phases: ['touch', 'exit'],
  },
  {
    id: 'cold-seq',
    what: 'cold file read in order: readahead IO and its pages',
    set: { backing: 'file', cache: 'cold', size: SIZE },
    phases: ['touch'],
  },
  {
    id: 'cold-random',
    what: 'cold file under MADV_RANDOM: one device read per fault',
    set: { backing: 'file', cache: 'cold', size: SIZE, advice: 'random' },
    phases: ['touch'],
  },
];

/** `key=value` words of a bench for the probe (its id first). */
export function probeLine(b: Bench, seed: number): string {
  return [`id=${b.id}`, ...Object.entries(b.set).map(([k, v]) => `${k}=${v}`), `seed=${seed}`].join(' ');
}
