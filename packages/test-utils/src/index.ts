/** @pte/test-utils: helpers the packages' tests share (private; never published). */
export { thrownBy } from './pte-error.js';
export { applyRangeOp, pickRangeIn } from './mm-ops.js';
export type { RangeOp } from './mm-ops.js';
