/** @pte/machine: assembles and runs a simulated machine. */
export { Machine, ACCESS_SEGV, ACCESS_NONCANONICAL } from './machine.js';
export type { MachineOptions, AccessKind, PageRange } from './machine.js';
export { PLATFORMS, IMPLEMENTED_PLATFORMS, parsePlatform } from './platform.js';
export type { Platform } from './platform.js';
export { ALL_COSTS, resolveRunCosts } from './costs.js';
export type { RunResult } from './run-result.js';
export { sortedRecord } from './run-result.js';
