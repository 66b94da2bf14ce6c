/** @pte/test-utils: helpers the packages' tests share (private; never published). */
export { thrownBy } from './pte-error.js';
export { applyRangeOp, pickRangeIn } from './mm-ops.js';
export type { RangeOp } from './mm-ops.js';
export { applyMmOp, anonPrefaultArb, FIXED_BASE, MAX_TASKS, mmFilesArb, mmOpArb } from './mm-model.js';
export type { MmOp, MmOpOptions, MmWorld } from './mm-model.js';
