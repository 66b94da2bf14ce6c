/** @pte/core: the pieces every PTE Lab layer shares. */
export { PteError, usageError, configError, parseError, isPteError } from './errors.js';
export type { PteErrorCode } from './errors.js';
export { parseSize, parseCount, formatSize } from './size.js';
export { Prng, hashString } from './prng.js';
export { Tally, Counters, CycleLedger, diffSnapshots } from './tally.js';
export type { TallySnapshot } from './tally.js';
export { resolveCosts, overrideCosts, mergeCostDefaults } from './cost-table.js';
export type { CostEntry, CostDefaults, CostTable } from './cost-table.js';
export { RemoteClock } from './remote-clock.js';
