import { type Machine, type MachineOptions, type PlatformName } from '@pte/machine';
import type { Comparison } from '../findings/comparison.js';
import type { Verdict } from '../findings/verdict.js';

/** What a scenario's run hands back: the machine whose counters the result reports, and figures for its table. */
export interface ScenarioOutcome {
  readonly machine: Machine;
  /** Derived figures (e.g. cycles per touched page), also in RunResult.derived. */
  readonly derived: Readonly<Record<string, number>>;
  /** Parameters only the run could settle (a default that depends on the profile), added to RunResult.params. */
  readonly params?: Readonly<Record<string, string>>;
}

/** Machines for a run: with the run's options, or with some of them changed (comparison scenarios). */
export interface ScenarioContext {
  machine(overrides?: Partial<MachineOptions>): Machine;
  /** The run's own options (after --profile, --platform and --set). */
  readonly options: MachineOptions;
}

/** Resolved scenario parameters: canonical text per key (RunResult.params) and the parsed form. */
export interface ResolvedParams<P> {
  readonly text: Readonly<Record<string, string>>;
  readonly parsed: P;
}

/**
 * A scenario of SCENARIOS.md: its keys (settable with --set), the platforms it runs on, how much
 * guest memory it needs by default, and the experiment itself on a machine the runner built.
 */
export interface Scenario<P = unknown> {
  readonly name: string;
  readonly description: string;
  /** The claim it tests and who made it (for the report). */
  readonly claim: string;
  readonly platforms: readonly PlatformName[];
  /** Scenario keys → one-line description with default. */
  readonly keys: Readonly<Record<string, string>>;
  /** Parse and complete the scenario's own keys (policy keys are the runner's). */
  resolve(set: Readonly<Record<string, string>>): ResolvedParams<P>;
  /** Guest memory the scenario needs when `mem` is not set. */
  defaultMemBytes(params: P): number;
  /** Rows of the default table: [label, RunResult path] in display order. */
  readonly tableRows: ReadonlyArray<readonly [string, string]>;
  run(ctx: ScenarioContext, params: P): ScenarioOutcome;
  /** Its section of `pte-lab report` (every SCENARIOS.md scenario has one). */
  readonly report?: ScenarioReport;
}

/** One chart of a report section: named series of (x label, y) points, drawn as inline SVG. */
export interface ChartSpec {
  readonly title: string;
  readonly kind: 'bar' | 'line';
  readonly xLabel: string;
  readonly yLabel: string;
  /** Log-scale y axis (for figures spanning orders of magnitude). */
  readonly logY?: boolean;
  readonly series: ReadonlyArray<{ readonly name: string; readonly points: ReadonlyArray<readonly [string, number]> }>;
}

/**
 * A finding computed from the runs' data (never canned): the published figures the claim is
 * compared with, the model's figure for each, and the verdict by the rule of findings/verdict.ts
 * (built by findingOf). The text names every published figure, or says why there is none.
 */
export interface Finding {
  readonly verdict: Verdict;
  readonly text: string;
  readonly comparisons: readonly Comparison[];
  /** Why the claim has no published figure (verdict `no-figure`). */
  readonly noFigure?: string;
}

/** One run a report section makes: `pte-lab run <scenario> [--platform p] [--profile p] --set ...`. */
export interface ReportRun {
  readonly platform?: string;
  /** Default: the CLI's default profile. */
  readonly profile?: string;
  readonly set: readonly string[];
}

/**
 * How `pte-lab report` and docs/findings.md present a scenario: the runs it makes, the charts
 * drawn from their RunResults (in the same order as `runs`), and the finding.
 */
export interface ScenarioReport {
  readonly runs: readonly ReportRun[];
  charts(results: readonly import('@pte/machine').RunResult[]): ChartSpec[];
  finding(results: readonly import('@pte/machine').RunResult[]): Finding;
}
