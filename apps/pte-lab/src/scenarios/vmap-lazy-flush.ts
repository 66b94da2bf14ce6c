import { configError, parseCount, PteError } from '@pte/core';
import {
  lazyMaxPages,
  type Machine,
  type MachineOptions,
  type RunResult,
  VM_READ,
  VM_WRITE,
  type VmapPolicy,
} from '@pte/machine';
import { measuredTotal, variantRows } from './common.js';
import { fmt, ratio } from './report-helpers.js';
import type { ChartSpec, Finding, Scenario, ScenarioContext } from './scenario.js';
import { compare } from '../findings/comparison.js';
import { findingOf } from '../findings/finding-of.js';
import { PIGGIN_EAGER_EXTRA } from '../findings/published.js';
import { cyclesToUs } from '../report/units.js';

interface Params {
  readonly rounds: number;
  readonly vmaps: number;
  readonly area: number;
  readonly tables: number;
  /** lazy_max_pages() override; 0: the kernel's fls(nr_cpus) × 32 MiB. */
  readonly lazyMax: number;
}

interface Variant {
  readonly name: string;
  readonly mode: 'eager' | 'lazy' | 'lazy-2008';
  readonly alias: NonNullable<MachineOptions['xenAlias']>;
  /** Page-table pages from an alias-free cache refilled N at a time (the run's pt_cache, default 16). */
  readonly ptCache: boolean;
}

/** How vunmap flushes and what a Xen guest does about stale aliases before a pin, compared. */
const VARIANTS: readonly Variant[] = [
  // Before the rewrite (≤ 2.6.27): clear and flush the kernel range on every CPU at each vunmap.
  { name: 'eager', mode: 'eager', alias: 'none', ptCache: false },
  // Later kernels: PTEs cleared at vunmap, only the flush waits for a purge; no alias is left.
  { name: 'lazy', mode: 'lazy', alias: 'none', ptCache: false },
  // The 2008 patch as posted: PTEs kept until the purge, and Xen does nothing about them.
  { name: 'lazy-2008', mode: 'lazy-2008', alias: 'none', ptCache: false },
  // Fitzhardinge's fix (Oct 2008): vm_unmap_aliases() before every pin.
  { name: 'always', mode: 'lazy-2008', alias: 'always', ptCache: false },
  // Piggin's per-page p→v bit: vm_unmap_aliases() only when the page to pin has an alias.
  { name: 'check', mode: 'lazy-2008', alias: 'check', ptCache: false },
  // Piggin's cache of unaliased page-table pages, filled N at a time with one vm_unmap_aliases().
  { name: 'pt_cache', mode: 'lazy-2008', alias: 'none', ptCache: true },
];

const FIGURES = [
  'vunmaps',
  'flushes',
  'ipis',
  'purges',
  'unmap_aliases',
  'pins',
  'alias_pins',
  'refused',
  'rounds_done',
  'pt_cache_refills',
  'flush_cycles',
  'cycles',
  'cycles_per_round',
] as const;

const DEFAULT_PT_CACHE = 16;

/**
 * vmap/lazy-flush (SCENARIOS.md): Nick Piggin's vmap rewrite (seed 003) — lazy vunmap with one
 * batched kernel TLB flush per purge instead of a global flush (and an IPI to every other CPU) per
 * vunmap — and its catch on Xen PV: a lazily freed area keeps a writable alias of pages that
 * vfree() already gave back, and Xen refuses to pin such a page as a page table, so the guest must
 * vm_unmap_aliases() first. Each round does `vmaps` vmalloc/vfree pairs of `area` pages (driver
 * buffers, vmap'd stacks), then a forked child maps `tables` fresh 2 MiB regions (one new PTE page
 * each, pinned at allocation in its pinned address space) and exits. Every variant runs the same
 * rounds on its own machine with the run's nr_cpus. `alias_pins` counts page-table pages handed out
 * while a stale writable vmap alias still mapped them: pins Xen refuses unless a guard purged first.
 * The run ends with a purge of what is still lazily freed, so deferred work is paid for.
 * `flush_cycles` are the cycles of every TLB flush of the run (tlb.flush), kernel range and user.
 * `refused` counts Xen's refusals; an unguarded run stops at the first one ("the guest would
 * BUG()"), `rounds_done` says where. The run's `vmap`, `xen_alias` and `pt_cache` keys are the
 * variants' business (pt_cache, when set, sizes the pt_cache variant's cache). The RunResult's
 * counters are the last variant's; every variant's figures are in `derived.<variant>.<figure>`.
 * Natively nothing is pinned: the alias policies do nothing there, so `always` and `check` run as
 * `lazy-2008` does, and only the flushing differs.
 * Not modelled: the host-side alias check with a trap back into the guest (the thread's third
 * alternative), and the cost of a vm_unmap_aliases() call that finds nothing to purge.
 */
export const vmapLazyFlush: Scenario<Params> = {
  name: 'vmap/lazy-flush',
  description:
    "vmap/vunmap churn with forks: eager vs lazy vunmap flushing, and Xen's guards against stale vmap aliases at pin time",
  claim:
    'Piggin (seed 003): lazy vunmap with batched TLB flushes beats a global flush per vunmap; Xen must vm_unmap_aliases() before pinning a page that may have a stale writable vmap alias ("very expensive ... however it should be OK if not called too often").',
  platforms: ['xen-pv', 'native'],
  keys: {
    rounds: 'rounds of vmap churn followed by a fork (default 32)',
    vmaps: 'vmalloc/vfree pairs per round (default 32)',
    area: "pages per vmalloc area (default 4: a 16 KiB vmap'd stack)",
    tables: 'fresh 2 MiB regions the forked child maps per round, each a new PTE page (default 4)',
    lazy_max: 'lazy_max_pages: lazily freed pages that trigger a purge (default: fls(nr_cpus) × 8192, as the kernel)',
  },
  resolve(set) {
    const count = (key: string, dflt: number, min: number, max: number): number => {
      const v = set[key] !== undefined ? parseCount(set[key], `--set ${key}`) : dflt;
      if (v < min || v > max) throw configError(`--set ${key}: ${v} is not from ${min} to ${max}`);
      return v;
    };
    const rounds = count('rounds', 32, 1, 4096);
    const vmaps = count('vmaps', 32, 0, 4096);
    const area = count('area', 4, 1, 512);
    const tables = count('tables', 4, 0, 64);
    const lazyMax = set.lazy_max !== undefined ? count('lazy_max', 0, 1, 2 ** 24) : 0;
    return {
      parsed: { rounds, vmaps, area, tables, lazyMax },
      text: {
        rounds: String(rounds),
        vmaps: String(vmaps),
        area: String(area),
        tables: String(tables),
        lazy_max: lazyMax === 0 ? 'kernel' : String(lazyMax),
      },
    };
  },
  // vmalloc'd pages are freed each round; what is live at once is small. Tables, the parent, slack.
  defaultMemBytes: (p) => Math.max(128 * 2 ** 20, p.vmaps * p.area * 4096 * 2 + 64 * 2 ** 20),
  tableRows: variantRows(VARIANTS, FIGURES),
  run(ctx: ScenarioContext, p: Params) {
    const derived: Record<string, number> = {};
    const nrCpus = ctx.options.vmap?.nrCpus ?? 4;
    derived.nr_cpus = nrCpus;
    derived.lazy_max_pages = p.lazyMax > 0 ? p.lazyMax : lazyMaxPages(nrCpus);
    let last: Machine | null = null;
    for (const v of VARIANTS) {
      const vmap: VmapPolicy = {
        mode: v.mode === 'eager' ? 'eager' : 'lazy',
        unmapAtPurge: v.mode === 'lazy-2008',
        nrCpus,
        ...(p.lazyMax > 0 ? { lazyMaxPages: p.lazyMax } : {}),
      };
      const ptCache = v.ptCache ? (ctx.options.policy.ptCache > 0 ? ctx.options.policy.ptCache : DEFAULT_PT_CACHE) : 0;
      const m = ctx.machine({ vmap, xenAlias: v.alias, policy: { ...ctx.options.policy, ptCache } });
      const fig = churn(m, p);
      const c = m.measuredCounters();
      const cycles = measuredTotal(m);
      derived[`${v.name}.vunmaps`] = c['vmap.unmaps'] ?? 0;
      derived[`${v.name}.flushes`] = c['vmap.flushes'] ?? 0;
      derived[`${v.name}.ipis`] = c['vmap.ipis'] ?? 0;
      derived[`${v.name}.purges`] = c['vmap.purges'] ?? 0;
      derived[`${v.name}.unmap_aliases`] = c['vmap.unmap_aliases'] ?? 0;
      derived[`${v.name}.pins`] = c['xen.pins'] ?? 0;
      derived[`${v.name}.alias_pins`] = fig.aliasPins;
      derived[`${v.name}.refused`] = c['xen.refused'] ?? 0;
      derived[`${v.name}.rounds_done`] = fig.roundsDone;
      derived[`${v.name}.flush_cycles`] = m.measuredCycles()['tlb.flush'] ?? 0;
      derived[`${v.name}.cycles`] = cycles;
      derived[`${v.name}.cycles_per_round`] = fig.roundsDone > 0 ? cycles / fig.roundsDone : 0;
      derived[`${v.name}.pt_cache_refills`] = c['pt.cache_refills'] ?? 0;
      last = m;
    }
    return { machine: last!, derived };
  },
  report: {
    runs: [
      { platform: 'xen-pv', set: [] },
      { platform: 'xen-pv', set: ['nr_cpus=32'] },
      { platform: 'native', set: [] },
      // Piggin's machine had 8 CPUs (2 sockets × 4 cores): the run his figure is compared with.
      { platform: 'native', set: ['nr_cpus=8'] },
    ],
    charts(results): ChartSpec[] {
      const xen4 = results[0]!;
      const names = VARIANTS.map((v) => v.name);
      const bar = (r: RunResult, f: string) =>
        names.filter((n) => r.derived[`${n}.${f}`] !== undefined).map((n) => [n, r.derived[`${n}.${f}`]!] as const);
      return [
        {
          title: `Kernel TLB flushes and IPIs, ${xen4.params.rounds} rounds × ${xen4.params.vmaps} vmap/vunmap (xen-pv, ${fmt(xen4.derived.nr_cpus ?? 0)} CPUs)`,
          kind: 'bar',
          xLabel: 'variant',
          yLabel: 'count',
          logY: true,
          series: [
            { name: 'flushes', points: bar(xen4, 'flushes') },
            { name: 'IPIs', points: bar(xen4, 'ipis') },
            { name: 'vm_unmap_aliases() calls', points: bar(xen4, 'unmap_aliases') },
          ],
        },
        {
          title: 'Cycles per round (vmap churn + fork + child), by platform and CPUs',
          kind: 'bar',
          xLabel: 'variant',
          yLabel: 'cycles per round',
          // Only variants that ran every round: an unguarded lazy-2008 guest stops at Xen's refusal.
          series: results.map((r) => ({
            name: `${r.platform}, ${fmt(r.derived.nr_cpus ?? 0)} CPUs`,
            points: bar(r, 'cycles_per_round').filter(
              ([n]) => r.derived[`${n}.rounds_done`] === Number(r.params.rounds),
            ),
          })),
        },
        {
          title:
            'Page-table pages handed out with a stale writable vmap alias (pins Xen refuses without a guard), xen-pv',
          kind: 'bar',
          xLabel: 'variant',
          yLabel: 'pages',
          series: [
            { name: 'alias pins', points: bar(xen4, 'alias_pins') },
            { name: 'refused by Xen', points: bar(xen4, 'refused') },
          ],
        },
      ];
    },
    finding(results): Finding {
      const [xen4, xen32, native, native8] = results as [RunResult, RunResult, RunResult, RunResult];
      const d = (r: RunResult, v: string, f: string) => r.derived[`${v}.${f}`] ?? 0;
      const rounds = Number(xen4.params.rounds);
      const lazyWins = [xen4, xen32, native].every(
        (r) => d(r, 'lazy', 'flushes') < d(r, 'eager', 'flushes') && d(r, 'lazy', 'cycles') < d(r, 'eager', 'cycles'),
      );
      const guarded = ['always', 'check', 'pt_cache'];
      const guardsHold = guarded.every((v) => d(xen4, v, 'refused') === 0 && d(xen4, v, 'rounds_done') === rounds);
      const cheapest = guarded.reduce((a, b) => (d(xen4, b, 'cycles') < d(xen4, a, 'cycles') ? b : a));
      // What eager flushing adds per vunmap: the whole difference from lazy, over the vunmaps.
      const extra =
        (d(native8, 'eager', 'cycles') - d(native8, 'lazy', 'cycles')) / Math.max(1, d(native8, 'eager', 'vunmaps'));
      const comparison = compare(
        PIGGIN_EAGER_EXTRA,
        cyclesToUs(extra),
        `${fmt(cyclesToUs(extra))} µs`,
        `what eager flushing adds per vunmap of the churn natively with ${fmt(native8.derived.nr_cpus ?? 0)} CPUs, eager less lazy cycles over ${fmt(d(native8, 'eager', 'vunmaps'))} vunmaps, at the report's 3.0 GHz (${fmt(extra)} cycles): the model prices a broadcast flush as an IPI per other CPU`,
      );
      const flushes = (r: RunResult, v: string) =>
        `${fmt(d(r, v, 'flushes'))} flush(es) / ${fmt(d(r, v, 'ipis'))} IPIs`;
      const detail =
        `${rounds} rounds of ${xen4.params.vmaps} vmalloc/vfree of ${xen4.params.area} pages, each followed by a fork: on xen-pv with ${fmt(xen4.derived.nr_cpus ?? 0)} CPUs eager vunmap makes ` +
        `${flushes(xen4, 'eager')}, lazy ${flushes(xen4, 'lazy')} (lazy_max_pages ${fmt(xen4.derived.lazy_max_pages ?? 0)}), ${ratio(d(xen4, 'eager', 'cycles'), d(xen4, 'lazy', 'cycles'))} fewer cycles; ` +
        `with ${fmt(xen32.derived.nr_cpus ?? 0)} CPUs ${ratio(d(xen32, 'eager', 'cycles'), d(xen32, 'lazy', 'cycles'))}, natively ${ratio(d(native, 'eager', 'cycles'), d(native, 'lazy', 'cycles'))}. ` +
        `Keeping the PTEs until the purge as the 2008 patch did hands out ${fmt(d(xen4, 'lazy-2008', 'alias_pins'))} page-table page(s) with a live writable alias before Xen refuses ` +
        `${fmt(d(xen4, 'lazy-2008', 'refused'))} request(s) in round ${fmt(d(xen4, 'lazy-2008', 'rounds_done') + 1)} (the guest would BUG()). ` +
        `Guards: vm_unmap_aliases() before every pin makes ${fmt(d(xen4, 'always', 'unmap_aliases'))} calls and ${flushes(xen4, 'always')}; ` +
        `the per-page check ${fmt(d(xen4, 'check', 'unmap_aliases'))} calls and ${flushes(xen4, 'check')}; ` +
        `the page-table cache ${fmt(d(xen4, 'pt_cache', 'pt_cache_refills'))} refill(s) and ${flushes(xen4, 'pt_cache')}` +
        `${guardsHold ? ', all without a refusal' : ', not all without a refusal'}. Cheapest guard: ${cheapest}, ${pct(d(xen4, cheapest, 'cycles'), d(xen4, 'lazy', 'cycles'))} cycles against lazy vunmap with PTEs cleared at once (always ${pct(d(xen4, 'always', 'cycles'), d(xen4, 'lazy', 'cycles'))}, check ${pct(d(xen4, 'check', 'cycles'), d(xen4, 'lazy', 'cycles'))}). ` +
        'The host-side alias check the thread also proposed is not modelled. The Xen half of the claim has no published number (Piggin: vm_unmap_aliases() is "very expensive ... however it should be OK if not called too often").';
      return findingOf([comparison], (lazyWins ? '' : 'Lazy vunmap does not beat eager on every run here. ') + detail);
    },
  },
};

/**
 * The churn: a parent with a written anonymous page forks once per round after `vmaps`
 * vmalloc/vfree pairs; the child writes one page in each of `tables` fresh 2 MiB regions and
 * exits. Measured from the first round to a final purge of what is still lazily freed, so every
 * variant pays for the work it deferred. Stops at Xen's first refusal (the guest cannot go on).
 */
function churn(m: Machine, p: Params): { aliasPins: number; roundsDone: number } {
  const parent = m.spawn();
  const pv = m.mmap(parent, { pages: 16, prot: VM_READ | VM_WRITE, shared: false, file: null });
  m.touch(parent, pv, { kind: 'seq' }, 'write', 1);
  const vm = m.vmalloc();
  // A page-table frame the allocator hands out while a lazily freed vmap area still maps it
  // writable is one Xen refuses to pin unless a guard purges the alias first (Vmalloc counts them).
  const aliasedBefore = vm.aliasedPtFrames;
  m.verify('after setup');
  m.startMeasurement();
  let roundsDone = 0;
  try {
    for (let r = 0; r < p.rounds; r++) {
      for (let i = 0; i < p.vmaps; i++) vm.vfree(vm.vmalloc(p.area));
      const child = m.fork(parent);
      if (refused(m)) break;
      if (p.tables > 0) {
        const region = m.mmap(child, {
          pages: 512 * p.tables,
          prot: VM_READ | VM_WRITE,
          shared: false,
          file: null,
        });
        m.touch(child, region, { kind: 'per2m' }, 'write', 1);
        if (refused(m)) break;
      }
      m.exit(child);
      m.switchTo(parent); // the parent runs again (wait() returns)
      m.verify('after round');
      roundsDone++;
    }
    // Drain: what lazy vunmap deferred (the flush; with lazy-2008 the PTE clearing too) is paid here.
    if (!refused(m)) vm.purge();
  } catch (e) {
    // Xen refused a pin or an entry: the guest cannot map the page and would BUG().
    if (!(e instanceof PteError) || !refused(m)) throw e;
  }
  return { aliasPins: vm.aliasedPtFrames - aliasedBefore, roundsDone };
}

/** `a` relative to `b` as "+3.1%" / "−2%" (or "n/a" when b is 0). */
function pct(a: number, b: number): string {
  if (b === 0) return 'n/a';
  const x = (100 * (a - b)) / b;
  return `${x >= 0 ? '+' : '−'}${fmt(Math.abs(x))}%`;
}

/** Has Xen refused a request of the guest's? */
function refused(m: Machine): boolean {
  return m.counter('xen.refused') > 0;
}
