/**
 * `pte-lab calibrate`: time the suite's microbenchmarks on this machine's kernel, find how many
 * times each phase charges each cost in the model, and fit the cost table to the real times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_COSTS } from '@pte/machine';
import { median } from './stats.js';
import { fitCosts, type FitRow } from './fit.js';
import { compileProbe, runProbe } from './probe.js';
import { CALIBRATION_SUITE, PROBE_FIELD, probeLine, type Bench, type Phase } from './suite.js';
import { runScenario } from '../run-scenario.js';

export interface CalibrateOptions {
  readonly platform: string;
  readonly profile: string;
  /** Runs of the whole suite on the real kernel; each phase's median is fitted. */
  readonly runs: number;
  /** CPU clock in GHz: real nanoseconds × ghz = cycles. */
  readonly ghz: number;
  /** A directory on a disk filesystem for the probe's files. */
  readonly testDir: string;
  /** The model's zero_page setting (off on a kernel that forbids the zero page). */
  readonly zeroPage: boolean;
  readonly readAheadKb: number;
  /** Machine and policy keys (`--set`) for every model run, e.g. host_backed=off. */
  readonly set?: readonly string[];
  /**
   * Settings the guest cannot see (how the host backs its memory), each tried on top of `set`:
   * the model is fitted with each and the one that explains more phases within ±25% is kept
   * (ties: the smaller squared log error). Default: none.
   */
  readonly alternatives?: readonly (readonly string[])[];
  /** The fit's prior weight toward the defaults (fit.ts DEFAULT_PRIOR). */
  readonly prior?: number;
  readonly suite?: readonly Bench[];
  readonly log: (line: string) => void;
}

/** One measured phase: real time, and the model's at the defaults and at the fitted costs. */
export interface Residual {
  readonly bench: string;
  readonly phase: Phase;
  readonly what: string;
  /** Median of the real runs, nanoseconds. */
  readonly realNs: number;
  /** Slowest / fastest real run. */
  readonly spread: number;
  readonly defaultNs: number;
  readonly fittedNs: number;
}

export interface Calibration {
  /** Fitted cycles of every key the suite exposes. */
  readonly costs: Record<string, number>;
  /** The `--set` keys of the model fitted: `set` and the alternative kept. */
  readonly set: readonly string[];
  readonly residuals: readonly Residual[];
}

/** The cost keys a platform can charge: Xen's only on xen-pv, KVM's only on the KVM platforms. */
export function keysFor(platform: string): string[] {
  return Object.keys(ALL_COSTS)
    .filter((k) => !k.startsWith('xen.') || platform === 'xen-pv')
    .filter((k) => !k.startsWith('kvm.') || platform.startsWith('kvm-'))
    .sort();
}

const DEFAULTS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(ALL_COSTS).map(([k, e]) => [k, e.cycles]),
);

/** Slowest / fastest of a phase's real runs. */
export function spreadOf(ms: readonly number[]): number {
  return Math.max(...ms) / Math.max(Math.min(...ms), 1e-9);
}

/** Random and hot-set orders come from the probe (order_out), so the model touches the same pages. */
const needsOrder = (b: Bench) => /^(random|hotset)/.test(b.set.pattern ?? '');

export function calibrate(o: CalibrateOptions): Calibration {
  const suite = o.suite ?? CALIBRATION_SUITE;
  const orderDir = mkdtempSync(join(tmpdir(), 'pte-order-'));
  const probe = compileProbe();
  try {
    // 1. The real kernel: the whole suite `runs` times, rounds interleaved so drift spreads evenly.
    const realMs = new Map<string, number[]>();
    for (let r = 0; r < o.runs; r++) {
      o.log(`real kernel: round ${r + 1} of ${o.runs}`);
      const lines = suite.map((b) => {
        const line = probeLine(b, 1);
        return r === 0 && needsOrder(b) ? `${line} order_out=${join(orderDir, `${b.id}.order`)}` : line;
      });
      for (const rec of runProbe(probe, o.testDir, lines)) {
        const b = suite.find((x) => x.id === rec.id)!;
        for (const ph of b.phases) {
          const v = Number(rec[PROBE_FIELD[ph]]);
          if (!Number.isFinite(v)) throw new Error(`probe: no ${PROBE_FIELD[ph]} for ${b.id}`);
          const key = `${b.id}.${ph}`;
          realMs.set(key, [...(realMs.get(key) ?? []), v]);
        }
      }
    }

    let best: (Calibration & { score: [number, number] }) | null = null;
    for (const alt of o.alternatives ?? [[]]) {
      const set = [...(o.set ?? []), ...alt];
      const cal = fitModel(o, suite, realMs, orderDir, set);
      const within = cal.residuals.filter((r) => Math.abs(r.fittedNs / r.realNs - 1) <= 0.25).length;
      const sq = cal.residuals.reduce((a, r) => a + Math.log(r.fittedNs / r.realNs) ** 2, 0);
      if (alt.length > 0)
        o.log(`fitted with --set ${alt.join(' --set ')}: ${within}/${cal.residuals.length} within ±25%`);
      if (best === null || within > best.score[0] || (within === best.score[0] && sq < best.score[1]))
        best = { ...cal, score: [within, sq] };
    }
    const { score: _score, ...kept } = best!;
    return kept;
  } finally {
    probe.dispose();
    rmSync(orderDir, { recursive: true, force: true });
  }
}

/** The model's counts per cost for each measured phase, the fit, and the model run again at the fitted costs. */
function fitModel(
  o: CalibrateOptions,
  suite: readonly Bench[],
  realMs: ReadonlyMap<string, number[]>,
  orderDir: string,
  set: readonly string[],
): Calibration {
  // 2. The model: each phase's cycles at the defaults, and with each cost raised, its count.
  const keys = keysFor(o.platform);
  const modelSet = (b: Bench, costs: Readonly<Record<string, number>>): string[] => [
    ...Object.entries(b.set).map(([k, v]) =>
      k === 'pattern' && needsOrder(b) ? `pattern=order:${join(orderDir, `${b.id}.order`)}` : `${k}=${v}`,
    ),
    `read_ahead_kb=${o.readAheadKb}`,
    `zero_page=${o.zeroPage ? 'on' : 'off'}`,
    'teardown=munmap', // the probe times munmap(2) of the mapping
    ...set,
    ...Object.entries(costs).map(([k, v]) => `cost.${k}=${v}`),
  ];
  const phaseCycles = (b: Bench, costs: Readonly<Record<string, number>>): Record<Phase, number> => {
    const res = runScenario({
      scenario: 'micro/mmap-touch',
      platform: o.platform,
      profile: o.profile,
      set: modelSet(b, costs),
      seed: 1,
      check: false,
    });
    const d = res.derived ?? {};
    return {
      touch: d.touch_cycles ?? 0,
      retouch: d.retouch_cycles ?? 0,
      fork: d.fork_cycles ?? 0,
      exit: d.exit_cycles ?? 0,
    };
  };
  const rows: FitRow[] = [];
  const base = new Map<string, Record<Phase, number>>();
  for (const b of suite) {
    o.log(`model: ${b.id} (${keys.length + 1} runs)`);
    const c0 = phaseCycles(b, {});
    base.set(b.id, c0);
    const counts: Record<Phase, Record<string, number>> = { touch: {}, retouch: {}, fork: {}, exit: {} };
    for (const k of keys) {
      const delta = Math.max(DEFAULTS[k]!, 100);
      const c1 = phaseCycles(b, { [k]: DEFAULTS[k]! + delta });
      for (const ph of b.phases) {
        const n = (c1[ph] - c0[ph]) / delta;
        if (Math.abs(n) > 1e-9) counts[ph][k] = Math.round(n * 1000) / 1000;
      }
    }
    for (const ph of b.phases) {
      let explained = 0;
      for (const [k, n] of Object.entries(counts[ph])) explained += n * DEFAULTS[k]!;
      const ms = realMs.get(`${b.id}.${ph}`)!;
      rows.push({
        id: `${b.id}.${ph}`,
        // A phase whose real runs differ by a factor s counts 1/s (at least 0.1): a bimodal phase
        // (the host's backing of fresh memory comes and goes) must not pull the costs about.
        weight: Math.max(0.1, 1 / spreadOf(ms)),
        realCycles: median(ms) * 1e6 * o.ghz,
        fixedCycles: Math.max(0, c0[ph] - explained),
        counts: counts[ph],
      });
    }
  }

  // 3. The fit, then the model run again at the fitted costs (its real cycles, not the linear guess).
  const fit = fitCosts(rows, DEFAULTS, o.prior !== undefined ? { prior: o.prior } : {});
  const residuals: Residual[] = [];
  for (const b of suite) {
    o.log(`model at the fitted costs: ${b.id}`);
    const c = phaseCycles(b, fit.costs);
    for (const ph of b.phases) {
      const ms = realMs.get(`${b.id}.${ph}`)!;
      residuals.push({
        bench: b.id,
        phase: ph,
        what: b.what,
        realNs: median(ms) * 1e6,
        spread: spreadOf(ms),
        defaultNs: base.get(b.id)![ph] / o.ghz,
        fittedNs: c[ph] / o.ghz,
      });
    }
  }
  return { costs: fit.costs, set, residuals };
}
