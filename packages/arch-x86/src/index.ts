/** @pte/arch-x86: exact x86-64 paging for PTE Lab. */
export * from './pte-bits.js';
export {
  DEFAULT_FEATURES,
  ReservedMasks,
  isLeaf,
  entryPfn,
  frameLo,
  frameHi,
  encodeEntry,
  decodeEntry,
  splitEntry,
  joinEntry,
  parseEntryHex,
  formatEntryHex,
  FLAG_NAMES,
} from './pte-codec.js';
export type { PagingFeatures, DecodedEntry, EntryFields, FlagName } from './pte-codec.js';
export { tableIndex, isCanonical, vpnOf, splitAddress, joinAddress, parseAddress, formatAddress } from './address.js';
export { PhysMem, SimpleFrameSource } from './phys-mem.js';
export { PagingStructureCaches, PSC_SIZES } from './psc.js';
export type { PageTrackListener, FrameSource } from './phys-mem.js';
export { PageTables, DEFAULT_TABLE_FLAGS } from './page-tables.js';
export {
  Walker,
  DEFAULT_MODE,
  ACCESS_READ,
  ACCESS_WRITE,
  ACCESS_USER,
  ACCESS_FETCH,
  PF_P,
  PF_W,
  PF_U,
  PF_RSVD,
  PF_I,
  PF_PK,
} from './walker.js';
export type { PagingMode } from './walker.js';
export { Tlb, TlbArray, DEFAULT_TLB, TLB_RW, TLB_US, TLB_XD, TLB_DIRTY, TLB_GLOBAL, tlbEntryLevel } from './tlb.js';
export type { TlbConfig, TlbGeometry } from './tlb.js';
export { Mmu, TRANSLATE_PF, TRANSLATE_GP } from './mmu.js';
export type { MmuOptions, NestedPaging } from './mmu.js';
export { ARCH_COSTS } from './costs.js';
export type { ArchCostKey } from './costs.js';
