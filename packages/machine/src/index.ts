/**
 * @pte/machine: assembles and runs a simulated machine. This is the whole API the app (scenarios,
 * replay, the CLI) uses; it imports nothing else from the lower layers (scripts/check-layers.mjs).
 * docs/architecture.md "The scenario API" lists what each part is for.
 */

// The machine: processes and files (spawn, mmap, fork, exec, exit, createFile, writeFile …),
// touching memory (touch, accessRun), measuring (startMeasurement, ledger phases, counters).
export { Machine, ACCESS_SEGV, ACCESS_NONCANONICAL, USER_READ, USER_WRITE, USER_FETCH } from './machine.js';
export type {
  MachineOptions,
  AccessKind,
  PageRange,
  ThreadRun,
  MapUnmapRun,
  ProtectRun,
  BrkRun,
  VmapRun,
  ChunkRun,
  ThreadSpec,
} from './machine.js';
export type { VmapEra } from './thread-run.js';
export { PLATFORMS, IMPLEMENTED_PLATFORMS, parsePlatform } from './platform.js';
export type { PlatformName } from './platform.js';
export { ALL_COSTS, COSTS_BY_LAYER, ERA_COSTS, resolveRunCosts } from './costs.js';
export type { RunCostKey } from './costs.js';
export type { RunResult } from './run-result.js';
export { sortedRecord } from './run-result.js';
export { PGD_PIN_PHASE } from '@pte/pvops';

// The guest's vocabulary: protections, advice, processes and files as the machine hands them out,
// kernel profiles and policies.
export {
  VM_READ,
  VM_WRITE,
  VM_EXEC,
  PROFILES,
  DEFAULT_PROFILE,
  getProfile,
  lazyMaxPages,
  FAULT_LOCKS,
  MAX_CPUS,
} from '@pte/vm';
export type {
  Advice,
  AnonPrefault,
  FaultLockPolicy,
  Inode,
  KernelProfile,
  MmapRequest,
  Task,
  Vma,
  VmapPolicy,
  VmPolicy,
} from '@pte/vm';

// Workloads: access patterns, the mmap-touch parameters, policy specs, traces.
export {
  parsePattern,
  formatPattern,
  PAGES_PER_2M,
  parseMmapTouch,
  MMAP_TOUCH_KEYS,
  parseAnonPrefault,
  formatAnonPrefault,
  parseFaultAround,
  parsePrefaultPte,
  readTraceFile,
  parseTraceFormat,
  BinTraceWriter,
  newTraceStats,
  addChunkStats,
  OP_INSTR,
  OP_MODIFY,
  OP_STORE,
} from '@pte/workloads';
export type { PatternSpec, MmapTouchParams, RecordChunk, TraceFormat, TraceStats } from '@pte/workloads';

// x86 page-table entries: bits and the codec (`pte-lab pte`).
export {
  P,
  A,
  decodeEntry,
  encodeEntry,
  DEFAULT_FEATURES,
  FLAG_NAMES,
  formatEntryHex,
  parseEntryHex,
} from '@pte/arch-x86';
export type { DecodedEntry, FlagName } from '@pte/arch-x86';
