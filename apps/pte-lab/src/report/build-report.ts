import { configError } from '@pte/core';
import { DEFAULT_PROFILE, type RunResult } from '@pte/machine';
import { DEFAULT_SEED, runScenario } from '../run-scenario.js';
import { SCENARIOS, getScenario } from '../scenarios/catalogue.js';
import type { ChartSpec, Finding, Scenario } from '../scenarios/scenario.js';

/** One scenario's section of the report: what it claims, what the model found, and how to regenerate it. */
export interface ReportSection {
  readonly scenario: string;
  readonly description: string;
  readonly claim: string;
  readonly charts: readonly ChartSpec[];
  readonly finding: Finding;
  /** The exact commands that regenerate the figures (one `pte-lab run` per run). */
  readonly commands: readonly string[];
}

export interface ReportOptions {
  /** Only these scenarios (default: every scenario that has a report section). */
  readonly only?: readonly string[];
  readonly seed?: number;
  /** Called before each scenario's runs (progress). */
  readonly onScenario?: (name: string, index: number, total: number) => void;
}

/** The scenarios a report covers, validated up front so a bad --only fails before any run. */
export function reportScenarios(only?: readonly string[]): Scenario<unknown>[] {
  if (only === undefined || only.length === 0) return SCENARIOS.filter((s) => s.report !== undefined);
  return only.map((name) => {
    const s = getScenario(name);
    if (s.report === undefined) throw configError(`--only: ${name} has no report section`);
    return s;
  });
}

/** Run every section's runs and compute its charts and finding from the results. */
export function buildReport(o: ReportOptions = {}): ReportSection[] {
  const scenarios = reportScenarios(o.only);
  const seed = o.seed ?? DEFAULT_SEED;
  return scenarios.map((s, i) => {
    o.onScenario?.(s.name, i, scenarios.length);
    const report = s.report!;
    const results: RunResult[] = report.runs.map((r) =>
      runScenario({
        scenario: s.name,
        ...(r.platform !== undefined ? { platform: r.platform } : {}),
        profile: r.profile ?? DEFAULT_PROFILE,
        set: r.set,
        seed,
        check: false,
      }),
    );
    return {
      scenario: s.name,
      description: s.description,
      claim: s.claim,
      charts: report.charts(results),
      finding: report.finding(results),
      commands: results.map((r) => r.command),
    };
  });
}
