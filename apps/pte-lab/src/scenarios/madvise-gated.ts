import { configError, formatSize, parseCount, parseSize } from '@pte/core';
import {
  type Machine,
  type PlatformName,
  type Advice,
  type PatternSpec,
  type Task,
  VM_READ,
  type Vma,
  formatPattern,
  parsePattern,
} from '@pte/machine';
import { measuredTotal } from './common.js';
import { derivedOf, fmt, ratio } from './report-helpers.js';
import type { ChartSpec, Finding, Scenario, ScenarioContext } from './scenario.js';
import { compare } from '../findings/comparison.js';
import { findingOf } from '../findings/finding-of.js';
import { publishedRatio, SHUTEMOV_PER2M_16, SHUTEMOV_SEQ_TIME_16 } from '../findings/published.js';

/** The report's run where the advice does not predict the pattern: the unadvised mappings read in order. */
const MISPREDICTED = 'seq';

interface Params {
  readonly size: number;
  readonly seqMaps: number;
  readonly willneedMaps: number;
  readonly randMaps: number;
  readonly pattern: PatternSpec;
  readonly window: number;
}

/** The fault-around policies compared. */
const VARIANTS = [
  { name: 'always', faultAround: -1, gate: false }, // Linux since 3.15: every read fault on a file VMA
  { name: 'off', faultAround: 1, gate: false }, // 2008: one PTE per fault
  // The thread's proposal: fault-around only in VMAs with VM_SEQ_READ or MADV_WILLNEED (policy faultAroundGate).
  { name: 'gated', faultAround: -1, gate: true },
] as const;

/** The mappings of the mix: how userspace advised them and how it touches them. */
const CLASSES = ['seq', 'willneed', 'random'] as const;
type Class = (typeof CLASSES)[number];

const CLASS_FIGURES = [
  'touches',
  'faults',
  'populated',
  'prefaulted_unused',
  'traps',
  'cycles',
  'cycles_per_touch',
] as const;
const TOTAL_FIGURES = ['faults', 'prefaulted_unused', 'traps', 'cycles', 'cycles_per_touch'] as const;

const PLATFORMS: readonly PlatformName[] = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'];

/**
 * thread/madvise-gated (SCENARIOS.md): Chris Snook's "prefault only where userspace asked". One
 * process maps a mix of cached files, each read-only and private: `seq_maps` advised
 * MADV_SEQUENTIAL and read in order, `willneed_maps` cold files given MADV_WILLNEED (their reads
 * complete before the mapping is used) and read in order, and `rand_maps` unadvised and touched in
 * `pattern`. Order-0 page cache, so only fault-around decides how many PTEs a fault maps. Each class
 * is touched and unmapped (zap_pte_range counts prefaulted PTEs never used) as its own measured
 * phase, with fault-around always on (`window` pages), off, and gated (on only in the advised
 * mappings: the faultAroundGate policy of do_read_fault). Figures per variant and class are in
 * `derived.<variant>.<class>.<figure>`, totals in `derived.<variant>.<figure>`; the RunResult's
 * counters are the last variant's (gated).
 */
export const madviseGated: Scenario<Params> = {
  name: 'thread/madvise-gated',
  description:
    'advised-sequential, WILLNEED and unadvised-random mappings of cached files: fault-around always on vs off vs only where advised',
  claim: 'Snook (seed 001): prefault only where userspace asked for it (MADV_SEQUENTIAL / MADV_WILLNEED).',
  platforms: PLATFORMS,
  keys: {
    size: 'size of each mapped file with unit (default 4MiB)',
    seq_maps: 'mappings advised MADV_SEQUENTIAL and read in order (default 2)',
    willneed_maps: 'mappings of cold files given MADV_WILLNEED, then read in order (default 1)',
    rand_maps: 'unadvised mappings touched in `pattern` (default 2)',
    pattern: 'touch order of the unadvised mappings, as micro/mmap-touch (default random:0.1)',
    window:
      "fault-around window in pages of the always-on and gated variants, a power of two from 2 to 512 (default: the run's fault_around, or 16 when that is 1)",
  },
  resolve(set) {
    const size = set.size !== undefined ? parseSize(set.size, '--set size') : 4 * 2 ** 20;
    if (size <= 0 || size % 4096 !== 0)
      throw configError(`--set size: '${set.size}' is not a positive multiple of 4KiB`);
    const count = (key: string, dflt: number): number => {
      const v = set[key] !== undefined ? parseCount(set[key], `--set ${key}`) : dflt;
      if (v > 64) throw configError(`--set ${key}: ${v} is more than 64 mappings`);
      return v;
    };
    const seqMaps = count('seq_maps', 2);
    const willneedMaps = count('willneed_maps', 1);
    const randMaps = count('rand_maps', 2);
    if (seqMaps + willneedMaps + randMaps === 0)
      throw configError('--set seq_maps, willneed_maps, rand_maps: at least one mapping is needed');
    const pattern = parsePattern(set.pattern ?? 'random:0.1', '--set pattern');
    const window = set.window !== undefined ? parseCount(set.window, '--set window') : 0;
    if (set.window !== undefined && (window < 2 || window > 512 || (window & (window - 1)) !== 0)) {
      throw configError(`--set window: ${window} is not a power of two from 2 to 512`);
    }
    return {
      parsed: { size, seqMaps, willneedMaps, randMaps, pattern, window },
      text: {
        size: formatSize(size),
        seq_maps: String(seqMaps),
        willneed_maps: String(willneedMaps),
        rand_maps: String(randMaps),
        pattern: formatPattern(pattern),
        window: window === 0 ? 'fault_around' : String(window),
      },
    };
  },
  defaultMemBytes: (p) =>
    Math.max(256 * 2 ** 20, 2 * p.size * (p.seqMaps + p.willneedMaps + p.randMaps) + 128 * 2 ** 20),
  tableRows: [
    ...VARIANTS.flatMap((v) =>
      TOTAL_FIGURES.map((f) => [`${v.name}: ${f.replace(/_/g, ' ')}`, `derived.${v.name}.${f}`] as const),
    ),
    ...CLASSES.flatMap((cl) =>
      VARIANTS.flatMap((v) =>
        CLASS_FIGURES.map((f) => [`${cl} ${v.name}: ${f.replace(/_/g, ' ')}`, `derived.${v.name}.${cl}.${f}`] as const),
      ),
    ),
  ],
  run(ctx: ScenarioContext, p: Params) {
    const derived: Record<string, number> = {};
    const window = p.window > 0 ? p.window : ctx.options.policy.faultAround > 1 ? ctx.options.policy.faultAround : 16;
    derived.window = window;
    let last: Machine | null = null;
    for (const v of VARIANTS) {
      const policy = {
        ...ctx.options.policy,
        maxFolioOrder: 0,
        faultAround: v.faultAround === -1 ? window : 1,
        faultAroundGate: v.gate,
      };
      const m = ctx.machine({ policy });
      const { task, maps } = mapMix(m, p);
      m.verify('after setup');
      m.startMeasurement();
      const total = { faults: 0, unused: 0, traps: 0, cycles: 0 };
      for (const cl of CLASSES) {
        const before = m.measuredCounters();
        const cyclesBefore = measuredTotal(m);
        const touchesBefore = m.touches;
        for (const vma of maps[cl]) {
          m.touch(task, vma, cl === 'random' ? p.pattern : { kind: 'seq' }, 'read', 1);
          m.munmap(task, vma.start, vma.pages);
        }
        m.verify(`after the ${cl} mappings`);
        const after = m.measuredCounters();
        const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
        const touches = m.touches - touchesBefore;
        const cycles = measuredTotal(m) - cyclesBefore;
        const traps = delta('xen.hypercalls') + delta('kvm.exits');
        const key = `${v.name}.${cl}`;
        derived[`${key}.touches`] = touches;
        derived[`${key}.faults`] = delta('faults.total');
        derived[`${key}.populated`] = delta('pte.populated');
        derived[`${key}.prefaulted_unused`] = delta('pte.prefaulted_unused');
        derived[`${key}.traps`] = traps;
        derived[`${key}.cycles`] = cycles;
        derived[`${key}.cycles_per_touch`] = touches > 0 ? cycles / touches : 0;
        total.faults += delta('faults.total');
        total.unused += delta('pte.prefaulted_unused');
        total.traps += traps;
        total.cycles += cycles;
      }
      m.exit(task);
      m.verify('after exit');
      derived[`${v.name}.faults`] = total.faults;
      derived[`${v.name}.prefaulted_unused`] = total.unused;
      derived[`${v.name}.traps`] = total.traps;
      derived[`${v.name}.cycles`] = total.cycles;
      derived[`${v.name}.cycles_per_touch`] = m.touches > 0 ? total.cycles / m.touches : 0;
      last = m;
    }
    return { machine: last!, derived };
  },
  report: {
    runs: [
      ...PLATFORMS.map((platform) => ({ platform, set: [] })),
      // Most programs do not advise: unadvised mappings read in order, which the gate leaves without fault-around.
      { platform: 'native', set: [`pattern=${MISPREDICTED}`] },
    ],
    charts(all): ChartSpec[] {
      const results = all.filter((r) => r.params.pattern !== MISPREDICTED);
      const d = derivedOf;
      const perClass = (cl: Class): ChartSpec => ({
        title: `Cycles per touched page, ${cl === 'random' ? `unadvised ${results[0]?.params.pattern ?? ''}` : cl === 'seq' ? 'MADV_SEQUENTIAL, read in order' : 'MADV_WILLNEED, read in order'}`,
        kind: 'bar',
        xLabel: 'platform',
        yLabel: 'cycles per touched page',
        logY: true,
        series: VARIANTS.map((v) => ({
          name: `fault-around ${v.name}`,
          points: results.map((r) => [r.platform, d(r, `${v.name}.${cl}.cycles_per_touch`)] as const),
        })),
      });
      return [
        perClass('seq'),
        perClass('random'),
        {
          title: 'PTEs prefaulted and never used, by mapping class (fault-around always on)',
          kind: 'bar',
          xLabel: 'platform',
          yLabel: 'PTEs',
          series: CLASSES.map((cl) => ({
            name: cl,
            points: results.map((r) => [r.platform, d(r, `always.${cl}.prefaulted_unused`)] as const),
          })),
        },
      ];
    },
    finding(all): Finding {
      const d = derivedOf;
      const results = all.filter((r) => r.params.pattern !== MISPREDICTED);
      const mispredicted = all.find((r) => r.params.pattern === MISPREDICTED);
      const parts = results.map((r) => {
        const always = d(r, 'always.cycles');
        const off = d(r, 'off.cycles');
        const gated = d(r, 'gated.cycles');
        return {
          r,
          best: gated < always && gated < off,
          text:
            `${r.platform}: gated ${fmt(d(r, 'gated.cycles_per_touch'))} cycles per touch vs always-on ${fmt(d(r, 'always.cycles_per_touch'))} and off ${fmt(d(r, 'off.cycles_per_touch'))} ` +
            `(${ratio(Math.min(always, off), gated)} better than the better of the two; ${fmt(d(r, 'gated.prefaulted_unused'))} PTEs never used vs ${fmt(d(r, 'always.prefaulted_unused'))})`,
        };
      });
      const best = parts.filter((x) => x.best).length;
      const first = results[0];
      const mix =
        first !== undefined
          ? `${first.params.seq_maps} MADV_SEQUENTIAL, ${first.params.willneed_maps} MADV_WILLNEED and ${first.params.rand_maps} unadvised ${first.params.pattern} mappings of ${first.params.size} cached files, window ${fmt(d(first, 'window'))}`
          : 'no runs';
      const native = results.find((r) => r.platform === 'native');
      const sparseCost = native !== undefined ? d(native, 'always.random.cycles') / d(native, 'off.random.cycles') : 0;
      const context =
        native !== undefined
          ? [
              compare(
                SHUTEMOV_SEQ_TIME_16,
                d(native, 'gated.seq.cycles') / d(native, 'off.seq.cycles'),
                `×${fmt(d(native, 'gated.seq.cycles') / d(native, 'off.seq.cycles'))}`,
                "cycles of the MADV_SEQUENTIAL mappings, gated against off, native: the gain the gate keeps (page-table work only, where the published time includes the program's reading)",
                { context: true },
              ),
            ]
          : [];
      const wrong =
        mispredicted !== undefined
          ? ` Where the advice does not predict the pattern, the gate loses: with the ${mispredicted.params.rand_maps} unadvised mappings read in order (${mispredicted.platform}), gated costs ${ratio(d(mispredicted, 'gated.cycles'), d(mispredicted, 'always.cycles'))} the cycles of always-on, the sequential gain forfeited on every mapping nobody advised.`
          : '';
      return findingOf(
        context,
        `${mix}. ${parts.map((x) => x.text).join('; ')}. ` +
          (best === parts.length
            ? "With advice that predicts the pattern exactly, the gate keeps fault-around's gain on the advised mappings and avoids its waste on the unadvised ones on every platform."
            : `With advice that predicts the pattern exactly, the gate beats both always-on and off on ${best} of ${parts.length} platforms.`) +
          wrong +
          (native !== undefined
            ? ` Always-on fault-around costs the unadvised ${native.params.pattern} mappings ×${fmt(sparseCost)} the cycles of off natively, ${sparseCost > publishedRatio(SHUTEMOV_PER2M_16) ? 'more' : 'less'} than the worst case Shutemov published in time: ${SHUTEMOV_PER2M_16.shown} at one touch per 2 MiB and window 16 (${SHUTEMOV_PER2M_16.where}).`
            : ''),
        'Snook suggested the gate with no figure ("It might still be worthwhile to do this when userspace is using madvise()"), and no timing of a gated fault-around has been published.',
      );
    },
  },
};

/** One process with the mix mapped: files written to the page cache (WILLNEED ones cold, then advised and read in). */
function mapMix(m: Machine, p: Params): { task: Task; maps: Record<Class, Vma[]> } {
  const task = m.spawn();
  const maps: Record<Class, Vma[]> = { seq: [], willneed: [], random: [] };
  const counts: Record<Class, number> = { seq: p.seqMaps, willneed: p.willneedMaps, random: p.randMaps };
  for (const cl of CLASSES) {
    for (let i = 0; i < counts[cl]; i++) {
      const file = m.createFile(`${cl}${i}`, p.size);
      if (cl !== 'willneed') m.writeFile(file, 256, 0);
      const vma = m.mmap(task, { pages: p.size / 4096, prot: VM_READ, shared: false, file });
      const advice: Advice | null = cl === 'seq' ? 'sequential' : cl === 'willneed' ? 'willneed' : null;
      if (advice !== null) m.madvise(task, vma.start, vma.pages, advice);
      if (cl === 'willneed') {
        // The program advised early enough: every read WILLNEED started has completed.
        m.waitFileIo(file);
      }
      maps[cl].push(vma);
    }
  }
  return { task, maps };
}
