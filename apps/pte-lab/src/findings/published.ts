/**
 * The published figures the findings are compared with, each as the shared references record it
 * (/work/shared/references/linux-mm.md and hypervisors.md, which cite the linux-mm posts and
 * commits, and the seed threads). `derived` marks arithmetic on published numbers, the
 * references' own or this file's (`shown` spells it out); `unverified` what the references mark
 * UNVERIFIED. Nothing here is estimated.
 */

/** What a published figure says: a ratio after / before, a value in a unit, or only a direction. */
export type PublishedValue =
  | { readonly kind: 'ratio'; readonly ratio: number }
  | { readonly kind: 'value'; readonly value: number; readonly unit: string }
  | { readonly kind: 'direction'; readonly sign: 1 | -1 };

export interface PublishedFigure {
  /** Who published it, and when. */
  readonly who: string;
  /** Where the references record it (they cite the post or commit). */
  readonly where: string;
  /** What was measured, in a few words (the findings table). */
  readonly label: string;
  /** What was measured, on what. */
  readonly what: string;
  /** The figure as published, for the text. */
  readonly shown: string;
  readonly value: PublishedValue;
  readonly derived?: boolean;
  readonly unverified?: boolean;
}

/** The ratio a figure publishes (a programming error to ask of a value or a direction). */
export function publishedRatio(f: PublishedFigure): number {
  if (f.value.kind !== 'ratio') throw new Error(`${f.who}: ${f.what} is not a ratio`);
  return f.value.ratio;
}

const ratio = (r: number): PublishedValue => ({ kind: 'ratio', ratio: r });
const us = (v: number): PublishedValue => ({ kind: 'value', value: v, unit: 'µs' });

/** Kirill Shutemov's fault-around cover letter, Ivy Bridge, 4 sockets, 120 threads (linux-mm.md §1.5): seconds. */
const KS = {
  seq1: { base: 7.250461742, w16: 5.488488147, w512: 5.109232856 },
  seq120: { base: 124.589206333, w16: 32.167281632 },
  per2m1: { base: 0.039892712, w16: 0.063681685, w512: 0.541213386 },
  build: { base: 151.227629483, w16: 150.863792049 },
  git: { base: 66.087215026, w8: 64.401156567, w16: 65.282708668 },
  seqFaults: { base: 4195437, w16: 262251 },
} as const;

const SHUTEMOV = 'Shutemov 2014';
const SHUTEMOV_WHERE = 'linux-mm.md §1.5, the fault-around cover letter';

export const SHUTEMOV_SEQ_FAULTS_16: PublishedFigure = {
  label: 'seq read faults, window 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'minor faults of a sequential read of a cached 16 GiB file, 1 thread, window 16 against none',
  shown: '4,195,437 → 262,251 (÷16.0)',
  value: ratio(KS.seqFaults.w16 / KS.seqFaults.base),
};

export const SHUTEMOV_SEQ_TIME_16: PublishedFigure = {
  label: 'seq read time, window 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'time of a sequential read of a cached 16 GiB file, 1 thread, window 16 against none',
  shown: '7.25 → 5.49 s (×0.757)',
  value: ratio(KS.seq1.w16 / KS.seq1.base),
};

export const SHUTEMOV_SEQ_TIME_512: PublishedFigure = {
  label: 'seq read time, window 512',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'the same at window 512 against none',
  shown: '7.25 → 5.11 s (×0.705)',
  value: ratio(KS.seq1.w512 / KS.seq1.base),
};

export const SHUTEMOV_SEQ_TIME_512_VS_16: PublishedFigure = {
  label: 'seq read time, window 512 vs 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'time of a sequential read of a cached 16 GiB file, 1 thread, window 512 against 16',
  shown: '5.49 → 5.11 s (×0.931)',
  value: ratio(KS.seq1.w512 / KS.seq1.w16),
};

export const SHUTEMOV_SAVING_PER_FAULT: PublishedFigure = {
  label: 'time saved per avoided fault',
  who: SHUTEMOV,
  where: 'linux-mm.md §1.5 and §9',
  what: 'net time saved per avoided fault, sequential read, 1 thread, window 16 against none',
  shown: '≈0.45 µs',
  value: us(0.45),
  derived: true,
};

export const SHUTEMOV_SEQ_120_THREADS_16: PublishedFigure = {
  label: 'seq read by 120 threads, window 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'time of a sequential read of a cached 16 GiB file by 120 threads, window 16 against none',
  shown: '124.6 → 32.2 s (×0.258)',
  value: ratio(KS.seq120.w16 / KS.seq120.base),
};

export const SHUTEMOV_PER2M_16: PublishedFigure = {
  label: '1 touch per 2 MiB, window 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'time of one touch per 2 MiB of a cached file, 1 thread, window 16 against none',
  shown: '0.0399 → 0.0637 s (×1.60)',
  value: ratio(KS.per2m1.w16 / KS.per2m1.base),
};

export const SHUTEMOV_PER2M_512: PublishedFigure = {
  label: '1 touch per 2 MiB, window 512',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'the same at window 512 against none',
  shown: '0.0399 → 0.541 s (×13.6)',
  value: ratio(KS.per2m1.w512 / KS.per2m1.base),
};

export const SHUTEMOV_FAULT_PER2M: PublishedFigure = {
  label: 'time per fault, 1 touch per 2 MiB',
  who: SHUTEMOV,
  where: 'linux-mm.md §1.5 and §9',
  what: "time per fault of one touch per 2 MiB, 1 thread, no fault-around (his timer includes the program's loop)",
  shown: '≈4.77 µs',
  value: us(4.77),
  derived: true,
};

export const SHUTEMOV_EXTRA_PTE_512: PublishedFigure = {
  label: 'time per extra PTE, window 512',
  who: SHUTEMOV,
  where: 'linux-mm.md §1.5 and §9',
  what: 'time each extra page attempted adds to a fault, one touch per 2 MiB, window 512',
  shown: '≈0.12 µs',
  value: us(0.12),
  derived: true,
};

export const SHUTEMOV_KERNEL_BUILD_16: PublishedFigure = {
  label: 'kernel build, window 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'time of a kernel build (make -j60), window 16 against none',
  shown: '151.23 → 150.86 s (×0.998: flat)',
  value: ratio(KS.build.w16 / KS.build.base),
};

export const SHUTEMOV_GIT_8: PublishedFigure = {
  label: 'git test suite, window 8',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: "time of git's test suite (-j60, thousands of short-lived processes), window 8 against none, its fastest window",
  shown: '66.09 → 64.40 s (×0.974)',
  value: ratio(KS.git.w8 / KS.git.base),
};

export const SHUTEMOV_GIT_16: PublishedFigure = {
  label: 'git test suite, window 16',
  who: SHUTEMOV,
  where: SHUTEMOV_WHERE,
  what: 'the same at window 16 against none',
  shown: '66.09 → 65.28 s (×0.988: flat)',
  value: ratio(KS.git.w16 / KS.git.base),
};

export const BLIGH_NEXT_3_PAGES: PublishedFigure = {
  label: 'kernel compile, next 3 pages',
  who: 'Bligh 2004 and 2008',
  where: 'linux-mm.md §4.3; seed 001',
  what: 'kernel compile with his file prefault of "the next 3 pages" after each fault (about window 4) against none',
  shown: '"crippled forky workloads": slower, no number published',
  value: { kind: 'direction', sign: 1 },
};

export const OLD_PTE_REVERT_2016: PublishedFigure = {
  label: 'unixbench, old PTEs',
  who: 'The 2016 revert of old fault-around PTEs (315d09bf30c2)',
  where: 'linux-mm.md §1.4 and §10, quoted in Will Deacon’s 2021 commit message',
  what: 'unixbench on x86 with prefaulted PTEs old against young',
  shown: '"~6% regression" (×1.06)',
  value: ratio(1.06),
};

/** Christoph Lameter's anticipatory prefault V2, ia64, 8 CPUs, 1 GB (linux-mm.md §3.3): faults per wall second. */
const CL = { t1: { base: 88859, on: 94101 }, t8: { base: 172405, on: 223921 } } as const;

export const LAMETER_1_THREAD: PublishedFigure = {
  label: 'fault rate, 1 thread',
  who: 'Lameter 2004',
  where: 'linux-mm.md §3.3 (V2 of the patch)',
  what: 'anonymous faults per wall second on ia64, 1 thread, his prefault (up to 8 pages) against none',
  shown: '88,859 → 94,101 (×1.059)',
  value: ratio(CL.t1.on / CL.t1.base),
};

export const LAMETER_8_THREADS: PublishedFigure = {
  label: 'fault rate, 8 threads',
  who: 'Lameter 2004',
  where: 'linux-mm.md §3.3 (V2 of the patch)',
  what: 'the same with 8 threads',
  shown: '172,405 → 223,921 (×1.299)',
  value: ratio(CL.t8.on / CL.t8.base),
};

export const LAMETER_GAIN_GROWTH: PublishedFigure = {
  label: 'gain from 1 to 8 threads',
  who: 'Lameter 2004',
  where: 'linux-mm.md §3.3',
  what: 'how the gain changes from 1 to 8 threads (the 8-thread gain over the 1-thread gain)',
  shown: '×1.299 / ×1.059 = ×1.23: it grows',
  value: ratio(CL.t8.on / CL.t8.base / (CL.t1.on / CL.t1.base)),
  derived: true,
};

export const CHRISTOPHERSON_PREFETCH: PublishedFigure = {
  label: 'KVM faults with prefetch',
  who: 'Christopherson 2021',
  where: 'hypervisors.md §3.5 and §7, target 3',
  what: 'KVM faults fixed (pf_fixed) on a first touch of every 4 KiB page of 6 GiB, before and after his fix made KVM prefetch the sptes after the faulting one in its aligned group of 8 (TDP direct map; shadow paging prefetches the same way, from guest PTEs with A set)',
  shown: '~1.75M → <0.27M (÷6.5, ideal ÷8)',
  value: ratio(0.27 / 1.75),
};

export const MENON_OLD_PTE_MAJFAULT: PublishedFigure = {
  label: 'major faults, old PTEs',
  who: 'Menon 2016',
  where: 'linux-mm.md §10',
  what: 'major faults launching 10 Android apps repeatedly (arm64, 2 GB, with swap), prefaulted PTEs old against young',
  shown: 'pgmajfault 67,818 → 34,944 (÷1.94)',
  value: ratio(34944 / 67818),
};

/** Nick Piggin's vmap rewrite, ns per map+touch+unmap of 4 pages, 2-socket quad-core Opteron (linux-mm.md §7.1). */
const PIGGIN_VMAP_NS = {
  '2008': [14700, 33600, 49500, 70631],
  lazy: [2900, 3000, 2800, 2900],
} as const;

const PIGGIN = 'Piggin 2008';
const PIGGIN_WHERE = 'linux-mm.md §7.1, the vmap rewrite changelog';

export const PIGGIN_GROWTH_2008: PublishedFigure = {
  label: '2008, 8 threads vs 1',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'time per map+touch+unmap of 4 pages before the rewrite, 8 threads against 1',
  shown: '14.7 → 70.6 µs (×4.8)',
  value: ratio(PIGGIN_VMAP_NS['2008'][3] / PIGGIN_VMAP_NS['2008'][0]),
};

export const PIGGIN_GROWTH_LAZY: PublishedFigure = {
  label: 'rewrite, 8 threads vs 1',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'the same after the rewrite',
  shown: '2.9 → 2.9 µs (×1.0: flat)',
  value: ratio(PIGGIN_VMAP_NS.lazy[3] / PIGGIN_VMAP_NS.lazy[0]),
};

export const PIGGIN_REWRITE_1: PublishedFigure = {
  label: 'rewrite vs 2008, 1 thread',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'the rewrite against 2008, 1 thread',
  shown: '14.7 → 2.9 µs (÷5.1)',
  value: ratio(PIGGIN_VMAP_NS.lazy[0] / PIGGIN_VMAP_NS['2008'][0]),
};

export const PIGGIN_REWRITE_8: PublishedFigure = {
  label: 'rewrite vs 2008, 8 threads',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'the rewrite against 2008, 8 threads',
  shown: '70.6 → 2.9 µs (÷24, "already 25x faster")',
  value: ratio(PIGGIN_VMAP_NS.lazy[3] / PIGGIN_VMAP_NS['2008'][3]),
};

export const PIGGIN_OP_2008: PublishedFigure = {
  label: '2008 op, 1 thread',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'time of one map+touch+unmap of 4 pages before the rewrite, 1 thread',
  shown: '14.7 µs',
  value: us(PIGGIN_VMAP_NS['2008'][0] / 1000),
};

export const PIGGIN_OP_LAZY: PublishedFigure = {
  label: 'rewrite op, 1 thread',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'the same after the rewrite',
  shown: '2.9 µs',
  value: us(PIGGIN_VMAP_NS.lazy[0] / 1000),
};

export const PIGGIN_EAGER_EXTRA: PublishedFigure = {
  label: 'cost of eager flush per vunmap',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'what the global flush per vunmap added to a map+touch+unmap of 4 pages, 1 thread on his 8-CPU Opteron (before the rewrite less after)',
  shown: '14.7 − 2.9 = 11.8 µs',
  value: us((PIGGIN_VMAP_NS['2008'][0] - PIGGIN_VMAP_NS.lazy[0]) / 1000),
  derived: true,
};

export const PIGGIN_BROADCAST: PublishedFigure = {
  label: 'broadcast flush vs CPUs',
  who: PIGGIN,
  where: PIGGIN_WHERE,
  what: 'the cost of a flush broadcast to every CPU as CPUs are added',
  shown: '"terrible quadratic scalability characteristics": it grows, no number for munmap',
  value: { kind: 'direction', sign: 1 },
};

export const GORMAN_RECLAIM_IPIS: PublishedFigure = {
  label: 'reclaim IPIs, batched',
  who: 'Gorman 2015',
  where: 'linux-mm.md §9',
  what: 'interrupts per second of reclaim on a 4-socket machine, TLB flushes batched against one per page',
  shown: '900K → 60K/s (÷15)',
  value: ratio(60 / 900),
};

const LESPINASSE = 'Lespinasse 2021';
const LESPINASSE_WHERE = 'linux-mm.md §8; seed 004';

export const LESPINASSE_PFT_SCALING: PublishedFigure = {
  label: 'pft SPF, 48 threads vs 1',
  who: LESPINASSE,
  where: LESPINASSE_WHERE,
  what: 'pft throughput with speculative faults, 48 threads on 24 cores against 1 thread',
  shown: '×24',
  value: ratio(24),
};

export const LESPINASSE_PFT_VS_MMAP_LOCK: PublishedFigure = {
  label: 'pft SPF vs mmap_lock',
  who: LESPINASSE,
  where: LESPINASSE_WHERE,
  what: 'pft throughput at 48 threads, speculative faults against the mmap_lock kernel',
  shown: '×3.7',
  value: ratio(3.7),
};

export const BAGHDASARYAN_SHARE: PublishedFigure = {
  label: "per-VMA share of SPF's gain",
  who: 'Baghdasaryan 2023',
  where: 'linux-mm.md §8, the per-VMA locks cover letter',
  what: "per-VMA locks' share of the speculative faults' gain",
  shown: '"~75% of SPF benefits"',
  value: { kind: 'value', value: 0.75, unit: 'of the gain' },
};

const DUFOUR_EBIZZY = 1490.24 / 742.57;

export const DUFOUR_EBIZZY_SPF: PublishedFigure = {
  label: 'ebizzy SPF vs mmap_lock',
  who: 'Dufour 2018 (SPF v11)',
  where: 'linux-mm.md §8',
  what: 'ebizzy -mTt records/s on a 16-CPU x86 VM, speculative faults against mmap_lock',
  shown: '742.57 → 1490.24 (×2.01)',
  value: ratio(DUFOUR_EBIZZY),
};

export const EBIZZY_PER_VMA: PublishedFigure = {
  label: 'ebizzy per-VMA vs mmap_lock',
  who: 'Baghdasaryan 2023 with Dufour 2018',
  where: 'linux-mm.md §8',
  what: "per-VMA locks on the same ebizzy run: 75% of Dufour's gain",
  shown: '1 + 0.75 × 1.01 = ×1.75',
  value: ratio(1 + 0.75 * (DUFOUR_EBIZZY - 1)),
  derived: true,
};
