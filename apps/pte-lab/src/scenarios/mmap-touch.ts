import {
  type Advice,
  MMAP_TOUCH_KEYS,
  type MmapTouchParams,
  VM_READ,
  VM_WRITE,
  formatPattern,
  parseMmapTouch,
} from '@pte/machine';
import { formatSize } from '@pte/core';
import type { Scenario } from './scenario.js';
import { memForFile } from './common.js';
import { counterOf, fmt, ratio, times } from './report-helpers.js';
import { compare } from '../findings/comparison.js';
import { findingOf } from '../findings/finding-of.js';
import { SHUTEMOV_SEQ_FAULTS_16, SHUTEMOV_SEQ_TIME_16 } from '../findings/published.js';

const POLICY_KEYS = new Set(['fault_around', 'prefault_pte', 'anon_prefault']);

/**
 * micro/mmap-touch (SCENARIOS.md): one process maps a file or anonymous region, touches it in a
 * pattern, and exits. The file reaches the page cache beforehand the way `cache` says (write()
 * with `io_chunk`, or a read() back through readahead), which decides the folio sizes on kernels
 * with large folios. Setup is not measured; the touches and the exit are.
 */
export const mmapTouch: Scenario<MmapTouchParams> = {
  name: 'micro/mmap-touch',
  description: 'map a file or anonymous region, touch it in a pattern, exit; the generic micro-workload',
  claim: "A generic micro-workload for validation and users' own questions (SCENARIOS.md).",
  platforms: ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'],
  keys: Object.fromEntries(Object.entries(MMAP_TOUCH_KEYS).filter(([k]) => !POLICY_KEYS.has(k))),
  resolve(set) {
    const p = parseMmapTouch(set);
    return {
      parsed: p,
      text: {
        backing: p.backing,
        share: p.share,
        size: formatSize(p.size),
        cache: p.cache,
        io_chunk: formatSize(p.ioChunk),
        read_ahead_kb: String(p.readAheadKb),
        advice: p.advice,
        pattern: formatPattern(p.pattern),
        access: p.access,
        runs: String(p.runs),
        // Recorded only when set: outputs from before these keys keep their bytes.
        ...(p.passes !== 1 ? { passes: String(p.passes) } : {}),
        ...(p.fork ? { fork: 'on' } : {}),
        ...(p.teardown !== 'exit' ? { teardown: p.teardown } : {}),
      },
    };
  },
  defaultMemBytes: (p) => memForFile(p.size), // the file or region, its copy-on-write twin, tables, slack
  tableRows: [
    ['page touches', 'counters.workload.touches'],
    ['faults (minor)', 'counters.faults.minor'],
    ['faults (major)', 'counters.faults.major'],
    ['PTEs populated', 'counters.pte.populated'],
    ['PTEs prefaulted', 'counters.pte.prefaulted'],
    ['prefaulted, never used', 'counters.pte.prefaulted_unused'],
    ['PMD mappings', 'counters.pmd.mapped'],
    ['IO requests', 'counters.io.requests'],
    ['TLB flushes', 'counters.tlb.flushes'],
    ['RSS (pages)', 'memory.rss_pages'],
    ['peak RSS (pages)', 'memory.peak_rss_pages'],
    ['cycles', 'cycles.total'],
    ['cycles per touched page', 'derived.cycles_per_touch'],
    ['cycles of the touch loop', 'derived.touch_cycles'],
    ['cycles of the passes after the first', 'derived.retouch_cycles'],
    ['cycles of the fork', 'derived.fork_cycles'],
    ['cycles of the exit', 'derived.exit_cycles'],
  ],
  run(ctx, p: MmapTouchParams) {
    const m = ctx.machine({ readAheadKb: p.readAheadKb });
    const task = m.spawn();
    const file = p.backing === 'file' ? m.createFile('data', p.size) : null;
    if (file !== null && p.cache === 'written') m.writeFile(file, p.ioChunk / 4096, 'max');
    if (file !== null && p.cache === 'readback') m.readFile(file, p.ioChunk / 4096);
    const write = p.access === 'write';
    const prot = VM_READ | (write || p.backing === 'anon' ? VM_WRITE : 0);
    const vma = m.mmap(task, { pages: p.pages, prot, shared: p.share === 'shared', file });
    if (p.advice !== 'normal') m.madvise(task, vma.start, p.pages, p.advice as Advice);
    m.verify('after setup');
    m.startMeasurement();
    // The phases the real-kernel probe times (pnpm validate, pte-lab calibrate): the first touch
    // loop; the passes after it; a fork whose child exits at once; the exit (zap).
    const ledger = m.ledger;
    const touch = ledger.definePhase('mmap_touch.touch');
    const retouch = ledger.definePhase('mmap_touch.retouch');
    const fork = ledger.definePhase('mmap_touch.fork');
    const exit = ledger.definePhase('mmap_touch.exit');
    const phases = [touch, retouch, fork, exit];
    const t0 = phases.map((ph) => ledger.phaseTotal(ph));
    ledger.inPhase(touch, () => m.touch(task, vma, p.pattern, p.access, p.runs));
    ledger.inPhase(retouch, () => {
      for (let i = 1; i < p.passes; i++) m.touch(task, vma, p.pattern, p.access, p.runs);
    });
    if (p.fork)
      ledger.inPhase(fork, () => {
        const child = m.fork(task);
        m.exit(child);
      });
    ledger.inPhase(exit, () => {
      if (p.teardown === 'munmap') m.munmap(task, vma.start, p.pages);
      m.exit(task);
    });
    m.verify('after exit');
    const spent = phases.map((ph, i) => ledger.phaseTotal(ph) - t0[i]!);
    return {
      machine: m,
      derived: {
        touch_cycles: spent[0]!,
        ...(p.passes !== 1 ? { retouch_cycles: spent[1]! } : {}),
        ...(p.fork ? { fork_cycles: spent[2]! } : {}),
        exit_cycles: spent[3]!,
      },
    };
  },
  report: {
    runs: ['1', '4', '16', '64'].flatMap((fa) => [
      { profile: 'linux-3.15', set: [`fault_around=${fa}`] },
      { profile: 'linux-3.15', set: [`fault_around=${fa}`, 'pattern=random:0.25'] },
    ]),
    charts: (rs) => {
      const windows = ['1', '4', '16', '64'];
      const pick = (i: number, f: (r: (typeof rs)[number]) => number) =>
        windows.map((w, j) => [w, f(rs[2 * j + i]!)] as const);
      const perTouch = (r: (typeof rs)[number]) => r.cycles.total / Math.max(1, counterOf(r, 'workload.touches'));
      return [
        {
          title: 'Faults on a cached 64 MiB file (linux-3.15, native)',
          kind: 'line',
          xLabel: 'fault-around window (pages)',
          yLabel: 'faults',
          logY: true,
          series: [
            { name: 'sequential', points: pick(0, (r) => counterOf(r, 'faults.total')) },
            { name: 'random 25%', points: pick(1, (r) => counterOf(r, 'faults.total')) },
          ],
        },
        {
          title: 'Cycles per touched page',
          kind: 'line',
          xLabel: 'fault-around window (pages)',
          yLabel: 'cycles per touch',
          series: [
            { name: 'sequential', points: pick(0, perTouch) },
            { name: 'random 25%', points: pick(1, perTouch) },
          ],
        },
      ];
    },
    finding: (rs) => {
      const seq1 = rs[0]!;
      const seq16 = rs[4]!;
      const rnd1 = rs[1]!;
      const rnd16 = rs[5]!;
      const touches = counterOf(seq16, 'workload.touches');
      const exact = counterOf(seq16, 'faults.total') === touches / 16;
      const perTouch = (r: typeof seq1) => r.cycles.total / Math.max(1, counterOf(r, 'workload.touches'));
      const faultRatio = counterOf(seq16, 'faults.total') / counterOf(seq1, 'faults.total');
      const cycleRatio = perTouch(seq16) / perTouch(seq1);
      return findingOf(
        [
          compare(
            SHUTEMOV_SEQ_FAULTS_16,
            faultRatio,
            `÷${fmt(1 / faultRatio)}`,
            `faults of a sequential read of ${fmt(touches)} cached pages, ${seq16.profile}, native`,
            { context: true },
          ),
          compare(
            SHUTEMOV_SEQ_TIME_16,
            cycleRatio,
            times(cycleRatio),
            "cycles per touched page of the same read: the model's page-table and fault work only, where the published time includes the program reading its 16 GiB",
            { context: true },
          ),
        ],
        `A validation check: sequential reads of ${fmt(touches)} cached pages take ${fmt(counterOf(seq16, 'faults.total'))} faults with a 16-page window (${exact ? 'exactly' : 'not'} one per 16 pages) and ${fmt(counterOf(seq1, 'faults.total'))} without, ` +
          `${ratio(perTouch(seq1), perTouch(seq16))} fewer cycles per touch natively; on a random 25% the window saves ${ratio(counterOf(rnd1, 'faults.total'), counterOf(rnd16, 'faults.total'))} faults ` +
          `but maps ${fmt(counterOf(rnd16, 'pte.prefaulted_unused'))} PTEs that are never used.`,
        "a validation scenario for users' own questions, it carries no claim to test.",
      );
    },
  },
};
