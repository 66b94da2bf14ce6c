import { type Machine, A, P, type PatternSpec, type Task, VM_READ, type Vma } from '@pte/machine';
import { cachedFileMapping, measuredTotal, memForFile, resolveSizePattern, variantRows } from './common.js';
import type { Scenario, ScenarioContext } from './scenario.js';
import { derivedOf, fmt, ratio, riseOrFall } from './report-helpers.js';
import { compare } from '../findings/comparison.js';
import { findingOf } from '../findings/finding-of.js';
import { CHRISTOPHERSON_PREFETCH, MENON_OLD_PTE_MAJFAULT } from '../findings/published.js';

interface Params {
  readonly size: number;
  readonly pattern: PatternSpec;
}

const VARIANTS = [
  // x86 today: prefaulted PTEs young — "we're lying to the vm" (Kivity).
  { name: 'young', prefaultOld: false, deferredAD: false },
  // Old prefaulted PTEs: truthful, but the shadow MMU cannot map them until a fault sets A.
  { name: 'old', prefaultOld: true, deferredAD: false },
  // The proposal: host keeps A/D, guest syncs them on lazy-mode entry.
  { name: 'deferred', prefaultOld: true, deferredAD: true },
] as const;

const FIGURES = [
  'touches',
  'exits',
  'exits_per_touch',
  'injected',
  'shadow_faults',
  'prefetched',
  'young_untouched',
  'cycles_per_touch',
  'evicted_hot',
  'evicted_cold',
  'reclaim_precision',
  'refaults',
] as const;

/**
 * thread/kvm-accessed-bit (SCENARIOS.md): Kivity's objection — under shadow paging a prefaulted
 * PTE with A clear cannot be made present in the shadow, so the access still exits; with A set
 * "we're lying to the vm" and reclaim loses its signal — and the proposed fix (host keeps A/D).
 * A cached file is read on KVM shadow paging with fault-around 16, prefaulted PTEs young, old, or
 * old with the deferred A/D mode. `young_untouched` counts pages the guest sees as accessed
 * although nothing touched them: what reclaim would be misled by. Then memory pressure: a second
 * file of the same size is read through a guest that holds about one and a half of them, and the
 * touched pages of the first are touched again. `reclaim_precision` is the share of the first
 * file's evicted pages that were really cold (never touched); `refaults` counts what came back.
 */
export const kvmAccessedBit: Scenario<Params> = {
  name: 'thread/kvm-accessed-bit',
  description:
    'KVM shadow paging: young vs old prefaulted PTEs vs the proposed host-kept A/D — exits and the accessed-bit signal',
  claim:
    "Kivity (seed 001): \"If it's unset, the shadow code cannot make the pte present ...; if it's set, we're lying to the vm.\"",
  platforms: ['kvm-shadow'],
  keys: {
    size: 'file size with unit (default 16MiB)',
    pattern: 'page touch order, as micro/mmap-touch (default stride:4: three of every four prefaulted pages unused)',
  },
  resolve(set) {
    const { size, pattern, text } = resolveSizePattern(set, 'stride:4');
    return { parsed: { size, pattern }, text };
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
        faultAround: ctx.options.policy.faultAround > 1 ? ctx.options.policy.faultAround : 16,
        prefaultOld: v.prefaultOld,
      };
      const memBytes = Math.floor((p.size * 3) / 2) + 4 * 2 ** 20; // one and a half files, not two
      const m = ctx.machine({
        platform: 'kvm-shadow',
        policy,
        deferredAD: v.deferredAD,
        shadowEra: 'modern',
        reclaim: true,
        memBytes,
      });
      const { task, file, vma } = cachedFileMapping(m, p.size);
      m.startMeasurement();
      m.touch(task, vma, p.pattern, 'read', 1);
      if (v.deferredAD) m.lazyMmuSection(); // the guest's next lazy-mode entry, e.g. reclaim's scan
      const c = m.measuredCounters();
      const cycles = measuredTotal(m);
      derived[`${v.name}.touches`] = m.touches;
      derived[`${v.name}.exits`] = c['kvm.exits'] ?? 0;
      derived[`${v.name}.exits_per_touch`] = m.touches > 0 ? (c['kvm.exits'] ?? 0) / m.touches : 0;
      derived[`${v.name}.injected`] = c['kvm.injected_pf'] ?? 0;
      derived[`${v.name}.shadow_faults`] = c['kvm.shadow_faults'] ?? 0;
      derived[`${v.name}.prefetched`] = c['kvm.prefetched'] ?? 0;
      derived[`${v.name}.young_untouched`] = youngUntouched(m, task, vma);
      derived[`${v.name}.cycles_per_touch`] = m.touches > 0 ? cycles / m.touches : 0;
      // Memory pressure: read a second file, then come back to the first one's touched pages.
      const touched = touchedPages(m, task, vma);
      const other = m.createFile('other', p.size);
      const vma2 = m.mmap(task, { pages: p.size / 4096, prot: VM_READ, shared: false, file: other });
      m.touch(task, vma2, { kind: 'seq' }, 'read', 1);
      let hot = 0;
      let cold = 0;
      for (let i = 0; i < file.pages; i++) if (file.cache[i] === -1) touched.has(i) ? hot++ : cold++;
      derived[`${v.name}.evicted_hot`] = hot;
      derived[`${v.name}.evicted_cold`] = cold;
      derived[`${v.name}.reclaim_precision`] = hot + cold > 0 ? cold / (hot + cold) : 1;
      const refaultsBefore = m.counter('reclaim.refaults');
      m.touch(task, vma, p.pattern, 'read', 1);
      derived[`${v.name}.refaults`] = m.counter('reclaim.refaults') - refaultsBefore;
      m.exit(task);
      m.verify('after exit');
      primary = m;
    }
    return { machine: primary!, derived };
  },
  report: {
    runs: [
      { platform: 'kvm-shadow', set: [] },
      // Every page touched in order: what KVM's prefetch saves when the guest PTEs allow it (Christopherson 2021).
      { platform: 'kvm-shadow', set: ['pattern=seq'] },
    ],
    charts: ([r]) => [
      {
        title: 'VM exits per touched page (KVM shadow, fault-around 16)',
        kind: 'bar',
        xLabel: 'prefaulted PTEs',
        yLabel: 'exits per touch',
        series: [
          {
            name: 'exits per touch',
            points: VARIANTS.map((v) => [v.name, derivedOf(r!, `${v.name}.exits_per_touch`)] as const),
          },
        ],
      },
      {
        title: 'Reclaim precision under memory pressure (evicted pages that were really cold)',
        kind: 'bar',
        xLabel: 'prefaulted PTEs',
        yLabel: 'share of evictions that were cold',
        series: [
          {
            name: 'precision',
            points: VARIANTS.map((v) => [v.name, derivedOf(r!, `${v.name}.reclaim_precision`)] as const),
          },
        ],
      },
    ],
    finding: ([r, seq]) => {
      const d = (k: string) => derivedOf(r!, k);
      const exitsYoung = d('young.exits_per_touch');
      const exitsOld = d('old.exits_per_touch');
      const exitsDef = d('deferred.exits_per_touch');
      const precYoung = d('young.reclaim_precision');
      const precOld = d('old.reclaim_precision');
      const precDef = d('deferred.reclaim_precision');
      const fixWorks = exitsDef <= exitsYoung * 1.05 && precDef >= precOld;
      // Faults KVM fixes on a first touch of every page: young guest PTEs let it prefetch, old ones do not.
      const sfYoung = derivedOf(seq!, 'young.shadow_faults');
      const sfOld = derivedOf(seq!, 'old.shadow_faults');
      const refYoung = d('young.refaults');
      const refOld = d('old.refaults');
      const refRatio = refYoung > 0 ? refOld / refYoung : refOld > 0 ? Infinity : 1;
      return findingOf(
        [
          compare(
            CHRISTOPHERSON_PREFETCH,
            sfYoung / sfOld,
            `${fmt(sfOld)} → ${fmt(sfYoung)} (${riseOrFall(sfYoung / sfOld)})`,
            `shadow faults of a sequential first touch of a cached ${seq!.params.size ?? ''} file, prefaulted PTEs old (A clear: no prefetch) against young (prefetch)`,
          ),
          compare(
            MENON_OLD_PTE_MAJFAULT,
            refRatio,
            `${fmt(refYoung)} → ${fmt(refOld)} (${riseOrFall(refRatio)})`,
            `refaults (reclaim.refaults) when the touched pages are read again after a second file pressed the guest's memory, prefaulted PTEs young against old`,
          ),
        ],
        `Old prefaulted PTEs cost ${fmt(exitsOld)} exits per touched page against ${fmt(exitsYoung)} for young ones (${ratio(exitsOld, exitsYoung)}, ${r!.params.pattern} pattern): the shadow cannot map a guest PTE with A clear. ` +
          `Young ones leave ${fmt(d('young.young_untouched'))} never-touched pages looking used, and under memory pressure only ${fmt(100 * precYoung)}% of evictions hit cold pages (old: ${fmt(100 * precOld)}%). ` +
          `The proposed host-kept A/D gets ${fmt(exitsDef)} exits per touch with ${fmt(100 * precDef)}% precision${fixWorks ? ': both at once' : ''}; it was never built, so it has no published figure.`,
      );
    },
  },
};

/**
 * File pages the first phase touched: present PTEs without a prefault mark (the mark goes at the
 * first use; the faulting page never had one). Untouched pages are unmapped or still marked.
 */
function touchedPages(m: Machine, task: Task, vma: Vma): Set<number> {
  const out = new Set<number>();
  for (let vpn = vma.start; vpn < vma.end; vpn++) {
    if ((m.pteLow(task, vpn) & P) !== 0 && !m.isPrefaultUnused(task, vpn)) out.add(vma.pgoffOf(vpn));
  }
  return out;
}

/** Present PTEs with A set whose page was never touched (the prefault mark is still there). */
function youngUntouched(m: Machine, task: Task, vma: Vma): number {
  let n = 0;
  for (let vpn = vma.start; vpn < vma.end; vpn++) {
    if ((m.pteLow(task, vpn) & (P | A)) === (P | A) && m.isPrefaultUnused(task, vpn)) n++;
  }
  return n;
}
