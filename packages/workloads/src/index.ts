/** @pte/workloads: access-pattern generators and scenario parameters for PTE Lab. */
export { parsePattern, formatPattern } from './pattern.js';
export type { PatternSpec, PatternKind } from './pattern.js';
export { AccessStream, PAGES_PER_2M } from './access-stream.js';
export {
  parseFaultAround,
  parsePrefaultPte,
  parseAnonPrefault,
  formatAnonPrefault,
  MAX_FAULT_AROUND_PAGES,
} from './policy-keys.js';
export type { PrefaultPte, AnonPrefaultSpec } from './policy-keys.js';
export { parseMmapTouch, MMAP_TOUCH_KEYS, KNOWN_MMAP_TOUCH_KEYS } from './mmap-touch.js';
export type { MmapTouchParams, Backing, Share, CacheState, Advice, AccessKind } from './mmap-touch.js';
export { validateWorkload } from './program.js';
export type { Program, ProgramOp, Workload, FileSpec, ProtSpec } from './program.js';
export * from './trace/index.js';
