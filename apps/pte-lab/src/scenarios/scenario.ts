import type { Machine, Platform } from '@pte/machine';

/** What a scenario's run hands back: figures for its table, on top of the machine's counters. */
export interface ScenarioOutcome {
  /** Derived figures (e.g. cycles per touched page), also in RunResult.derived. */
  readonly derived: Readonly<Record<string, number>>;
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
  readonly platforms: readonly Platform[];
  /** Scenario keys → one-line description with default. */
  readonly keys: Readonly<Record<string, string>>;
  /** Parse and complete the scenario's own keys (policy keys are the runner's). */
  resolve(set: Readonly<Record<string, string>>): ResolvedParams<P>;
  /** Guest memory the scenario needs when `mem` is not set. */
  defaultMemBytes(params: P): number;
  /** Rows of the default table: [label, RunResult path] in display order. */
  readonly tableRows: ReadonlyArray<readonly [string, string]>;
  run(machine: Machine, params: P): ScenarioOutcome;
}
