/** @pte/pvops: the paravirt MMU interface and the native backend. */
export { PvMmuOps, PGD_PIN_PHASE } from './pv-mmu-ops.js';
export type { VmapAliases, GuestCpu } from './pv-mmu-ops.js';
export { NativePvMmu } from './native.js';
export { PVOPS_COSTS } from './costs.js';
export type { PvopsCostKey } from './costs.js';
