import { configError, parseCount } from '@pte/core';
import { type Machine, type PatternSpec } from '@pte/machine';
import { cachedFileMapping, measuredTotal, memForFile, resolveSizePattern, variantRows } from './common.js';
import type { Scenario, ScenarioContext } from './scenario.js';
import { derivedOf, fmt, ratio } from './report-helpers.js';
import { findingOf } from '../findings/finding-of.js';

interface Params {
  readonly size: number;
  readonly pattern: PatternSpec;
  readonly window: number;
}

/** The ways a Xen PV guest can get PTEs into its page tables at fault time, compared. */
const VARIANTS = [
  // 2008: one PTE per fault, set_pte_at → update_va_mapping.
  { name: 'uva', faultAround: 1, lazy: false, pteWrite: 'update_va_mapping' },
  // Today without fault-around: one mmu_update per fault.
  { name: 'single', faultAround: 1, lazy: false, pteWrite: 'mmu_update' },
  // Fault-around as Linux does it for order-0 page cache: one set_pte (one hypercall) per PTE.
  { name: 'unbatched', faultAround: -1, lazy: false, pteWrite: 'mmu_update' },
  // The thread's proposal: fault-around in lazy mode, one mmu_update per ≤ 31 PTEs.
  { name: 'batched', faultAround: -1, lazy: true, pteWrite: 'mmu_update' },
] as const;

const FIGURES = [
  'faults',
  'hypercalls',
  'hypercalls_per_fault',
  'entries_per_hypercall',
  'cycles_per_pte',
  'cycles_per_touch',
] as const;

/**
 * thread/xen-batching (SCENARIOS.md): Fitzhardinge's "I can set any number of ptes in one
 * hypercall, so batching would amortize the cost". A cached file (order-0 page cache, so only the
 * batching differs) is read through a private mapping on Xen PV in four ways; the table compares
 * hypercalls, entries per hypercall and cycles per populated PTE. The RunResult's counters are the
 * batched variant's; the others are in `derived.<variant>.<figure>`.
 */
export const xenBatching: Scenario<Params> = {
  name: 'thread/xen-batching',
  description:
    'Xen PV: update_va_mapping per fault vs fault-around unbatched vs batched in lazy mode (multicall/mmu_update)',
  claim:
    'Fitzhardinge (seed 001): "I can set any number of ptes in one hypercall, so batching would amortize the cost."',
  platforms: ['xen-pv'],
  keys: {
    size: 'file size with unit (default 16MiB)',
    pattern: 'page touch order, as micro/mmap-touch (default seq)',
    window: 'fault-around window in pages for the unbatched and batched variants, a power of two ≤ 512 (default 16)',
  },
  resolve(set) {
    const { size, pattern, text } = resolveSizePattern(set, 'seq');
    const window = set.window !== undefined ? parseCount(set.window, '--set window') : 16;
    if (window < 2 || window > 512 || (window & (window - 1)) !== 0)
      throw configError(`--set window: ${window} is not a power of two from 2 to 512`);
    return { parsed: { size, pattern, window }, text: { ...text, window: String(window) } };
  },
  defaultMemBytes: (p) => memForFile(p.size),
  tableRows: variantRows(VARIANTS, FIGURES),
  run(ctx: ScenarioContext, p: Params) {
    const derived: Record<string, number> = {};
    let primary: Machine | null = null;
    for (const v of VARIANTS) {
      const policy = {
        ...ctx.options.policy,
        maxFolioOrder: 0,
        faultAround: v.faultAround === -1 ? p.window : 1,
        faultAroundLazy: v.lazy,
      };
      const m = ctx.machine({ platform: 'xen-pv', policy, xenPteWrite: v.pteWrite });
      const { task, vma } = cachedFileMapping(m, p.size);
      m.startMeasurement();
      m.touch(task, vma, p.pattern, 'read', 1);
      const c = m.measuredCounters();
      const cycles = measuredTotal(m);
      const faults = c['faults.total'] ?? 0;
      const hypercalls = c['xen.hypercalls'] ?? 0;
      const ptes = c['pte.populated'] ?? 0;
      derived[`${v.name}.faults`] = faults;
      derived[`${v.name}.hypercalls`] = hypercalls;
      derived[`${v.name}.hypercalls_per_fault`] = faults > 0 ? hypercalls / faults : 0;
      derived[`${v.name}.entries_per_hypercall`] = hypercalls > 0 ? (c['xen.update_entries'] ?? 0) / hypercalls : 0;
      derived[`${v.name}.cycles_per_pte`] = ptes > 0 ? cycles / ptes : 0;
      derived[`${v.name}.cycles_per_touch`] = m.touches > 0 ? cycles / m.touches : 0;
      m.exit(task);
      m.verify('after exit');
      primary = m;
    }
    return { machine: primary!, derived };
  },
  report: {
    runs: [{ set: [] }, { set: ['pattern=random:0.25'] }],
    charts: ([seq, rnd]) => [
      {
        title: 'Hypercalls per fault (16 MiB cached file, Xen PV)',
        kind: 'bar',
        xLabel: 'how PTEs are written',
        yLabel: 'hypercalls per fault',
        series: [
          {
            name: 'sequential',
            points: VARIANTS.map((v) => [v.name, derivedOf(seq!, `${v.name}.hypercalls_per_fault`)] as const),
          },
          {
            name: 'random 25%',
            points: VARIANTS.map((v) => [v.name, derivedOf(rnd!, `${v.name}.hypercalls_per_fault`)] as const),
          },
        ],
      },
      {
        title: 'Cycles per touched page',
        kind: 'bar',
        xLabel: 'how PTEs are written',
        yLabel: 'cycles per touch',
        series: [
          {
            name: 'sequential',
            points: VARIANTS.map((v) => [v.name, derivedOf(seq!, `${v.name}.cycles_per_touch`)] as const),
          },
          {
            name: 'random 25%',
            points: VARIANTS.map((v) => [v.name, derivedOf(rnd!, `${v.name}.cycles_per_touch`)] as const),
          },
        ],
      },
    ],
    finding: ([seq, rnd]) => {
      const d = (r: typeof seq, k: string) => derivedOf(r!, k);
      const unb = d(seq, 'unbatched.hypercalls_per_fault');
      const bat = d(seq, 'batched.hypercalls_per_fault');
      const perPteUnb = d(seq, 'unbatched.cycles_per_pte');
      const perPteBat = d(seq, 'batched.cycles_per_pte');
      const touchUva = d(seq, 'uva.cycles_per_touch');
      const touchBat = d(seq, 'batched.cycles_per_touch');
      const rndUva = d(rnd, 'uva.cycles_per_touch');
      const rndBat = d(rnd, 'batched.cycles_per_touch');
      const batches = bat < unb && perPteBat < perPteUnb;
      return findingOf(
        [],
        `Sequential reads: fault-around written one PTE at a time costs ${fmt(unb)} hypercalls per fault; in lazy mode the same window takes ${fmt(bat)} ` +
          `(${fmt(d(seq, 'batched.entries_per_hypercall'))} entries per mmu_update; the code gives ⌈16/31⌉ = 1, hypervisors.md §7), ${batches ? 'cutting' : 'not cutting'} cycles per populated PTE ${ratio(perPteUnb, perPteBat)} ` +
          `and cycles per touched page ${ratio(touchUva, touchBat)} against the 2008 one-update_va_mapping-per-fault baseline. ` +
          `On a random 25% of the pages batching ${rndBat <= rndUva ? 'still pays' : 'does not pay'}: ${fmt(rndBat)} vs ${fmt(rndUva)} cycles per touch. ` +
          'The one published measurement of batched page-table updates on Xen is of another mechanism (2006\'s batched writable page tables, revalidated in bulk: "little or no benefit (except on synthetic benchmarks)", xen commit 228f081e08, hypervisors.md §1.1), with no number.',
        'Fitzhardinge gave no number, and no timing of PTE writes batched at fault time on Xen PV has been published (hypervisors.md §4 lists none).',
      );
    },
  },
};
