import { configError, formatSize, parseCount, parseSize } from '@pte/core';
import { type AnonPrefault, type Machine, type PatternSpec, VM_READ, VM_WRITE } from '@pte/machine';
import { measuredTotal, memForFile, resolveThreads, THREADS_KEY, touchAndExit } from './common.js';
import type { Finding, Scenario, ScenarioContext } from './scenario.js';
import { type Comparison, compare } from '../findings/comparison.js';
import { findingOf } from '../findings/finding-of.js';
import { LAMETER_1_THREAD, LAMETER_8_THREADS, LAMETER_GAIN_GROWTH } from '../findings/published.js';

/** The profile of Lameter's era in the report: every fault under mmap_lock (mmap_sem then). */
const LAMETER_PROFILE = 'linux-2.6.27';

interface Params {
  readonly size: number;
  /** Fraction of the region the random pattern writes. */
  readonly fraction: number;
  /** Pages of the fixed variant. */
  readonly fixedPages: number;
  /** Threads writing the region, each its own slice (1: the single-threaded process). */
  readonly threads: number;
}

interface Variant {
  readonly name: string;
  readonly label: string;
  readonly policy: (p: Params) => AnonPrefault;
  /** MADV_HUGEPAGE on the region: a PMD-mapped THP per 2 MiB where the run's policy has anonThp. */
  readonly hugepage?: boolean;
}

/**
 * The anonymous prefault policies compared: none, Lameter's fixed and adaptive, mTHP 16K–64K, and
 * a PMD-sized THP (MADV_HUGEPAGE with THP enabled=madvise: linux-6.18 on native, kvm-shadow and kvm-tdp; on
 * the other platforms and profiles the region gets 4 KiB pages, as with `off`).
 */
const VARIANTS: readonly Variant[] = [
  { name: 'off', label: 'off', policy: () => ({ kind: 'off' }) },
  { name: 'fixed', label: 'fixed:N', policy: (p) => ({ kind: 'fixed', pages: p.fixedPages }) },
  { name: 'adaptive', label: 'adaptive', policy: () => ({ kind: 'adaptive', maxOrder: 3 }) },
  { name: 'mthp16k', label: 'mTHP 16K', policy: () => ({ kind: 'mthp', orders: [2] }) },
  { name: 'mthp32k', label: 'mTHP 32K', policy: () => ({ kind: 'mthp', orders: [3] }) },
  { name: 'mthp64k', label: 'mTHP 64K', policy: () => ({ kind: 'mthp', orders: [4] }) },
  { name: 'thp', label: 'THP 2M', policy: () => ({ kind: 'off' }), hugepage: true },
];

const PATTERN_NAMES = ['seq', 'random'] as const;
type PatternName = (typeof PATTERN_NAMES)[number];

const FIGURES = [
  'faults',
  'pages_allocated',
  'allocated_untouched',
  'peak_rss_pages',
  'cycles',
  'cycles_per_touch',
] as const;

interface AnonFigures {
  readonly touches: number;
  readonly faults: number;
  readonly allocated: number;
  readonly untouched: number;
  readonly peakRss: number;
  readonly cycles: number;
  /** With several threads: the last thread's clock at the end of the writes, plus the exit. */
  readonly wall: number;
}

/**
 * One process writes an anonymous private region in `pattern` and exits; touches and exit are
 * measured, so zap_pte_range() counts prefaulted pages that were never touched.
 */
function writeAnon(m: Machine, size: number, pattern: PatternSpec, hugepage = false, threads = 1): AnonFigures {
  const task = m.spawn();
  const pages = size / 4096;
  let vma = m.mmap(task, { pages, prot: VM_READ | VM_WRITE, shared: false, file: null });
  if (hugepage) {
    m.madvise(task, vma.start, pages, 'hugepage');
    vma = task.mm.vmas.find(vma.start)!;
  }
  m.verify('after setup');
  m.startMeasurement();
  const wall = touchAndExit(m, task, vma, pattern, 'write', threads);
  m.verify('after exit');
  const c = m.measuredCounters();
  const allocated = c['pages.allocated'] ?? 0;
  return {
    touches: m.touches,
    faults: c['faults.total'] ?? 0,
    allocated,
    // Pages allocated less pages written (each is written at most once in these patterns): the
    // prefaulted PTEs zapped unused, and a PMD-mapped THP's pages, which carry no per-page marks.
    untouched: allocated - m.touches,
    peakRss: m.peakRssPages,
    cycles: measuredTotal(m),
    wall,
  };
}

/**
 * thread/anon-prefault (SCENARIOS.md): Lameter's anticipatory prefault of anonymous memory (2004–5)
 * and the objections of Dickins and Fitzhardinge: it helps linear access and wastes memory on
 * random access. Models do_anonymous_page() (mm/memory.c): one zeroed order-0 page per write fault
 * (off); Lameter's fixed run of N order-0 pages after the faulting one, and his adaptive variant
 * (order +1 per correctly predicted next address, max order 3, reset otherwise); and today's mTHP
 * (alloc_anon_folio(): a naturally aligned 16K, 32K or 64K folio where every PTE is none, mapped by
 * one set_ptes()), and a PMD-mapped 2 MiB THP under MADV_HUGEPAGE (do_huge_pmd_anonymous_page;
 * linux-6.18 on native, kvm-shadow and kvm-tdp, 4 KiB pages on xen-pv and older profiles). An anonymous private region is written sequentially and at a random `fraction`
 * of its pages, once per variant and pattern, with the rest of the run's policy (profile
 * linux-6.18 by default); the exit is measured, and `allocated_untouched` (pages allocated less
 * pages written; for PTE-mapped prefault it equals pte.prefaulted_unused) counts pages allocated,
 * zeroed and freed without a touch. The run's own anon_prefault (default:
 * the profile's, off) is run last on the random pattern: the RunResult's counters and memory are
 * that machine's, so `pte-lab sweep --vary anon_prefault=...` compares policies directly. Every
 * variant's figures are in `derived.<seq|random>.<variant>.<figure>`.
 */
export const anonPrefault: Scenario<Params> = {
  name: 'thread/anon-prefault',
  description:
    'anonymous region written sequentially vs randomly: prefault off vs fixed N vs adaptive vs mTHP 16K–64K vs THP 2M',
  claim:
    'Lameter (2004–5), Dickins, Fitzhardinge (seed 001): anonymous prefault helps linear access and wastes memory on random access.',
  platforms: ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'],
  keys: {
    size: 'region size with unit (default 16MiB)',
    fraction: 'share of the pages the random pattern writes, in (0, 1] (default 0.25)',
    fixed_pages: "pages per fault of the fixed variant, 2 to 512 (default 8, the adaptive variant's largest run)",
    threads: THREADS_KEY,
  },
  resolve(set) {
    const size = set.size !== undefined ? parseSize(set.size, '--set size') : 16 * 2 ** 20;
    if (size <= 0 || size % 4096 !== 0)
      throw configError(`--set size: '${set.size}' is not a positive multiple of 4KiB`);
    const fraction = set.fraction !== undefined ? Number(set.fraction.trim()) : 0.25;
    if (
      !(set.fraction === undefined || /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(set.fraction.trim())) ||
      !(fraction > 0 && fraction <= 1)
    ) {
      throw configError(`--set fraction: '${set.fraction}' is not a fraction in (0, 1]`);
    }
    const fixedPages = set.fixed_pages !== undefined ? parseCount(set.fixed_pages, '--set fixed_pages') : 8;
    const t = resolveThreads(set);
    if (fixedPages < 2 || fixedPages > 512)
      throw configError(`--set fixed_pages: ${fixedPages} is not a page count from 2 to 512`);
    return {
      parsed: { size, fraction, fixedPages, threads: t.threads },
      text: { size: formatSize(size), fraction: String(fraction), fixed_pages: String(fixedPages), ...t.text },
    };
  },
  defaultMemBytes: (p) => memForFile(p.size),
  tableRows: [
    ["random (run's anon_prefault): faults", 'counters.faults.total'],
    ["random (run's anon_prefault): allocated, never touched", 'counters.pte.prefaulted_unused'],
    ["random (run's anon_prefault): peak RSS (pages)", 'memory.peak_rss_pages'],
    ["random (run's anon_prefault): cycles per touched page", 'derived.cycles_per_touch'],
    ...PATTERN_NAMES.flatMap((pn) =>
      VARIANTS.flatMap((v) =>
        FIGURES.map((f) => [`${pn} ${v.name}: ${f.replace(/_/g, ' ')}`, `derived.${pn}.${v.name}.${f}`] as const),
      ),
    ),
  ],
  run(ctx: ScenarioContext, p: Params) {
    const derived: Record<string, number> = {};
    const patterns: Record<PatternName, PatternSpec> = {
      seq: { kind: 'seq' },
      random: { kind: 'random', fraction: p.fraction },
    };
    for (const pn of PATTERN_NAMES) {
      for (const v of VARIANTS) {
        const m = ctx.machine({
          policy: { ...ctx.options.policy, anonPrefault: v.policy(p) },
          ...(p.threads > 1 ? { cpus: p.threads } : {}),
        });
        const f = writeAnon(m, p.size, patterns[pn], v.hugepage, p.threads);
        const key = `${pn}.${v.name}`;
        derived[`${key}.faults`] = f.faults;
        derived[`${key}.pages_allocated`] = f.allocated;
        derived[`${key}.allocated_untouched`] = f.untouched;
        derived[`${key}.peak_rss_pages`] = f.peakRss;
        derived[`${key}.cycles`] = f.cycles;
        derived[`${key}.cycles_per_touch`] = f.touches > 0 ? f.cycles / f.touches : 0;
        if (p.threads > 1) derived[`${key}.wall_cycles`] = f.wall;
      }
    }
    const own = ctx.machine(p.threads > 1 ? { cpus: p.threads } : {});
    writeAnon(own, p.size, patterns.random, false, p.threads);
    return { machine: own, derived };
  },
  report: {
    runs: [
      { platform: 'native', set: [] },
      { platform: 'xen-pv', set: [] },
      // Lameter's 2004 figures: 2.6.27 (mmap_lock for every fault), 1 and 8 threads.
      { platform: 'native', profile: LAMETER_PROFILE, set: [] },
      { platform: 'native', profile: LAMETER_PROFILE, set: ['threads=8'] },
    ],
    charts(results) {
      const native = results.find((r) => r.platform === 'native' && r.params.threads === undefined) ?? results[0];
      if (native === undefined) return [];
      const per = (pn: PatternName, f: string) =>
        VARIANTS.map((v) => [v.label, native.derived[`${pn}.${v.name}.${f}`] ?? 0] as const);
      return [
        {
          title: 'Cycles per written page, 16 MiB anonymous region (native)',
          kind: 'bar',
          xLabel: 'anonymous prefault policy',
          yLabel: 'cycles per touched page',
          series: PATTERN_NAMES.map((pn) => ({
            name: pn === 'seq' ? 'sequential' : `random ${native.params.fraction}`,
            points: per(pn, 'cycles_per_touch'),
          })),
        },
        {
          title: 'Pages allocated and never touched / peak RSS, random writes (native)',
          kind: 'bar',
          xLabel: 'anonymous prefault policy',
          yLabel: 'pages',
          series: [
            { name: 'allocated, never touched', points: per('random', 'allocated_untouched') },
            { name: 'peak RSS', points: per('random', 'peak_rss_pages') },
          ],
        },
        {
          title: 'Cycles per written page by platform, sequential vs random (fixed:N vs off)',
          kind: 'bar',
          xLabel: 'platform',
          yLabel: 'cycles(off) / cycles(fixed:N)',
          series: PATTERN_NAMES.map((pn) => ({
            name: pn,
            points: results
              .filter((r) => r.params.threads === undefined && r.profile !== LAMETER_PROFILE)
              .map((r) => [r.platform, ratio(r.derived[`${pn}.off.cycles`], r.derived[`${pn}.fixed.cycles`])] as const),
          })),
        },
      ];
    },
    finding(results): Finding {
      const lameter = (x: (typeof results)[number]) => x.profile === LAMETER_PROFILE;
      const r =
        results.find((x) => x.platform === 'native' && x.params.threads === undefined && !lameter(x)) ?? results[0];
      const one = results.find((x) => lameter(x) && x.params.threads === undefined);
      const threaded = results.find((x) => x.params.threads !== undefined);
      if (r === undefined) throw new Error('thread/anon-prefault: no runs');
      const d = (pn: PatternName, v: string, f: string) => r.derived[`${pn}.${v}.${f}`] ?? 0;
      const prefaulters = VARIANTS.filter((v) => v.name !== 'off');
      const seqGain = prefaulters.map((v) => ({ v, x: ratio(d('seq', 'off', 'cycles'), d('seq', v.name, 'cycles')) }));
      const rndCost = prefaulters.map((v) => ({
        v,
        x: ratio(d('random', v.name, 'cycles'), d('random', 'off', 'cycles')),
        waste: d('random', v.name, 'allocated_untouched'),
        rss: ratio(d('random', v.name, 'peak_rss_pages'), d('random', 'off', 'peak_rss_pages')),
      }));
      const touchedRandom = Math.round(d('random', 'off', 'pages_allocated'));
      const others = results
        .filter((x) => x !== r && x.params.threads === undefined && !lameter(x))
        .map(
          (x) =>
            `${x.platform}: fixed:${x.params.fixed_pages} ${ratio(x.derived['seq.off.cycles'], x.derived['seq.fixed.cycles']).toFixed(2)}× sequential, ${ratio(x.derived['random.fixed.cycles'], x.derived['random.off.cycles']).toFixed(2)}× the cycles on random`,
        );
      // Lameter's prefault ran up to 8 pages; fixed:8 is that run. The model's adaptive variant
      // predicts per mm where his predicted per task, so with threads it would never ramp up.
      const gain1 = one !== undefined ? ratio(one.derived['seq.off.cycles'], one.derived['seq.fixed.cycles']) : 0;
      const gain8 =
        threaded !== undefined
          ? ratio(threaded.derived['seq.off.wall_cycles'], threaded.derived['seq.fixed.wall_cycles'])
          : 0;
      const comparisons: Comparison[] = [];
      if (one !== undefined)
        comparisons.push(
          compare(
            LAMETER_1_THREAD,
            gain1,
            `×${gain1.toFixed(3)}`,
            `sequential writes of ${one.params.size} per cycle, fixed:${one.params.fixed_pages} against off, ${one.profile}, native, 1 thread`,
          ),
        );
      if (threaded !== undefined)
        comparisons.push(
          compare(
            LAMETER_8_THREADS,
            gain8,
            `×${gain8.toFixed(3)}`,
            `the same by ${threaded.params.threads} threads, in wall time (${ratio(threaded.derived['seq.off.cycles'], threaded.derived['seq.fixed.cycles']).toFixed(2)}× in cycles)`,
          ),
        );
      if (one !== undefined && threaded !== undefined)
        comparisons.push(
          compare(
            LAMETER_GAIN_GROWTH,
            gain8 / gain1,
            `×${(gain8 / gain1).toFixed(2)}`,
            `the ${threaded.params.threads}-thread gain over the 1-thread gain: ` +
              (gain8 / gain1 > 1
                ? 'it grows'
                : "it shrinks: the single-threaded exit's zap weighs more in wall time, and the model's only shared line per fault is mmap_lock's, not the page_table_lock and allocator contention of 2005"),
          ),
        );
      return findingOf(
        comparisons,
        `Sequential writes of ${r.params.size ?? '?'} (${r.platform}, ${r.profile}): ` +
          seqGain
            .map(
              (g) =>
                `${g.v.label === 'fixed:N' ? `fixed:${r.params.fixed_pages}` : g.v.label} ${g.x.toFixed(2)}× fewer cycles (faults ${d('seq', 'off', 'faults')} → ${d('seq', g.v.name, 'faults')})`,
            )
            .join(', ') +
          `. Random writes to ${r.params.fraction} of the pages (${touchedRandom} pages touched): ` +
          rndCost
            .map(
              (c) =>
                `${c.v.label === 'fixed:N' ? `fixed:${r.params.fixed_pages}` : c.v.label} allocates ${c.waste} never-touched pages (peak RSS ×${c.rss.toFixed(2)}, cycles ×${c.x.toFixed(2)})`,
            )
            .join(', ') +
          '.' +
          (others.length > 0 ? ` ${others.join('; ')}.` : '') +
          ' The waste on random access has no published figure: Lameter published sequential fault rates only, and the objections of Dickins and Fitzhardinge carry no number.',
      );
    },
  },
};

function ratio(a: number | undefined, b: number | undefined): number {
  return a !== undefined && b !== undefined && b > 0 ? a / b : 0;
}
