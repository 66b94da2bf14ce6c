/** The report's unit of time, and how it converts to real time. */

/**
 * The clock the report converts cycles to time at: 3.0 GHz, the clock most of the cost table's
 * published times were converted at (docs/cost-model.md). The model is not calibrated to it.
 */
export const REPORT_GHZ = 3.0;

/** Cycles in µs at REPORT_GHZ: how a finding sets the model's cycles against a published time. */
export function cyclesToUs(cycles: number): number {
  return cycles / (REPORT_GHZ * 1000);
}

/** A chart axis in cycles says what a microsecond is at REPORT_GHZ (not a ratio of cycles: that has no unit). */
export function withMicroseconds(label: string): string {
  return /cycles/.test(label) && !label.includes('/')
    ? `${label} (${(REPORT_GHZ * 1000).toLocaleString('en-US')} = 1 µs)`
    : label;
}

/** What the report's "cycles" are, the clock it converts them at, and where the costs come from. */
export const UNITS_TEXT =
  `Cycles are the model's simulated CPU cycles: every step of a run (a fault's entry, a PTE write, a hypercall, a VM exit, a TLB walk) is charged a cost from the cost table, docs/cost-model.md, where each default names its source. ` +
  `At ${REPORT_GHZ.toFixed(1)} GHz, the clock most of the table's published times were converted at, ${(REPORT_GHZ * 1000).toLocaleString('en-US')} cycles are 1 µs. ` +
  `The default costs are sourced, not measured on one machine: docs/validation.md ("Time") compares the model's time with this kernel's case by case, and pte-lab calibrate fits the cost table to a machine (README, "Calibrate your own machine").`;
