import { parseError } from '@pte/core';
import {
  A,
  D,
  G,
  LEVEL_NAMES,
  LEVEL_PDE,
  LEVEL_PDPTE,
  LEVEL_PTE,
  P,
  PAT_4K,
  PAT_LARGE,
  PCD,
  PKEY_MASK_HI,
  PKEY_SHIFT_HI,
  PS,
  PWT,
  RW,
  SW_HIGH_MASK_HI,
  SW_HIGH_SHIFT_HI,
  SW_LOW_MASK,
  SW_LOW_SHIFT,
  US,
  XD_HI,
} from './pte-bits.js';

/** The paging features that decide which bits of an entry are reserved. */
export interface PagingFeatures {
  /** MAXPHYADDR (CPUID 80000008H:EAX[7:0]); bits MAXPHYADDR..51 of every entry are reserved. */
  readonly maxPhyAddr: number;
  /** IA32_EFER.NXE: when 0, bit 63 (XD) is reserved. */
  readonly nxe: boolean;
  /** CPUID.80000001H:EDX.Page1GB: when 0, PS in a PDPTE is reserved. */
  readonly page1G: boolean;
}

export const DEFAULT_FEATURES: PagingFeatures = { maxPhyAddr: 46, nxe: true, page1G: true };

/**
 * Reserved-bit masks per level and PS, after SDM Vol. 3A §4.5 (tables 4-14..4-20) and
 * "reserved bit" faults (§4.7, RSVD). Index: level * 2 + ps.
 */
export class ReservedMasks {
  readonly lo = new Uint32Array(12);
  readonly hi = new Uint32Array(12);

  constructor(f: PagingFeatures) {
    if (!Number.isInteger(f.maxPhyAddr) || f.maxPhyAddr < 36 || f.maxPhyAddr > 52) {
      throw parseError(`MAXPHYADDR ${f.maxPhyAddr} is outside 36..52`);
    }
    // Bits MAXPHYADDR..51 (hi bits MAXPHYADDR-32 .. 19).
    const hiAddr = (((1 << 20) - 1) & ~((1 << (f.maxPhyAddr - 32)) - 1)) >>> 0;
    const xd = f.nxe ? 0 : XD_HI;
    for (let level = 1; level <= 5; level++) {
      for (let ps = 0; ps <= 1; ps++) {
        let lo = 0;
        if (level >= 4) lo |= PS; // PS must be 0 in PML4E and PML5E
        if (level === LEVEL_PDPTE && ps === 1) lo |= f.page1G ? 0x3fffe000 : PS; // bits 13..29
        if (level === LEVEL_PDE && ps === 1) lo |= 0x001fe000; // bits 13..20
        this.lo[level * 2 + ps] = lo >>> 0;
        this.hi[level * 2 + ps] = (hiAddr | xd) >>> 0;
      }
    }
  }

  /** True if the present entry (lo, hi) at `level` sets a reserved bit. */
  isReserved(level: number, lo: number, hi: number): boolean {
    const i = level * 2 + (level === LEVEL_PTE ? 0 : (lo & PS) >>> 7);
    return ((lo & this.lo[i]!) | (hi & this.hi[i]!)) !== 0;
  }
}

/** True if the entry maps a page at this level (PTE, or PDE/PDPTE with PS). */
export function isLeaf(level: number, lo: number): boolean {
  return level === LEVEL_PTE || ((level === LEVEL_PDE || level === LEVEL_PDPTE) && (lo & PS) !== 0);
}

/** Low bit of the physical-address field of an entry at `level` (12, or 21 / 30 for large leaves). */
function addrShift(level: number, lo: number): number {
  if (level === LEVEL_PDE && (lo & PS) !== 0) return 21;
  if (level === LEVEL_PDPTE && (lo & PS) !== 0) return 30;
  return 12;
}

/**
 * The 4 KiB frame number an entry points at (a table, or the first frame of the page it maps),
 * bits 12..51 without the PAT bit of large leaves. Hot path: no allocation.
 */
export function entryPfn(level: number, lo: number, hi: number): number {
  const shift = addrShift(level, lo);
  const loFrames = ((lo >>> shift) << (shift - 12)) >>> 0;
  return loFrames + (hi & 0xfffff) * 1048576;
}

/** Readable form of an entry, for the edges (CLI, tests, traces). */
export interface DecodedEntry {
  level: number;
  levelName: string;
  present: boolean;
  /** Maps a page (PTE, or PS set in a PDE/PDPTE). */
  leaf: boolean;
  /** Size in bytes of the page mapped, or of the region covered by the table it points to. */
  pageSize: number;
  rw: boolean;
  us: boolean;
  pwt: boolean;
  pcd: boolean;
  accessed: boolean;
  /** Dirty: meaningful in leaves only. */
  dirty: boolean;
  ps: boolean;
  pat: boolean;
  global: boolean;
  /** Software bits 9..11 as a 3-bit number. */
  softwareLow: number;
  /** Software bits 52..58 as a 7-bit number. */
  softwareHigh: number;
  /** Protection key (bits 59..62), meaningful for leaves with CR4.PKE. */
  pkey: number;
  xd: boolean;
  /** 4 KiB frame number of the page or table. */
  pfn: number;
  /** Names of the reserved bits that are set (empty when none). */
  reserved: string[];
}

/** Flags accepted by `encodeEntry` and printed by the CLI, in entry order. */
export const FLAG_NAMES = ['P', 'RW', 'US', 'PWT', 'PCD', 'A', 'D', 'PS', 'PAT', 'G', 'XD'] as const;
export type FlagName = (typeof FLAG_NAMES)[number];

export interface EntryFields {
  level?: number;
  pfn: number;
  flags?: readonly FlagName[];
  softwareLow?: number;
  softwareHigh?: number;
  pkey?: number;
}

/** Split a 64-bit entry given as bigint into halves. */
export function splitEntry(v: bigint): { lo: number; hi: number } {
  return { lo: Number(v & 0xffffffffn), hi: Number((v >> 32n) & 0xffffffffn) };
}

export function joinEntry(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Encode an entry at `level` (default PTE). PAT goes to bit 7 for 4K PTEs, bit 12 for large leaves. */
export function encodeEntry(fields: EntryFields): { lo: number; hi: number } {
  const level = fields.level ?? LEVEL_PTE;
  if (!Number.isInteger(level) || level < 1 || level > 5) throw parseError(`level ${level} is not 1..5`);
  const flags = new Set(fields.flags ?? []);
  for (const f of flags) {
    if (!FLAG_NAMES.includes(f)) throw parseError(`unknown flag '${f}'`, `flags are ${FLAG_NAMES.join(',')}`);
  }
  const large = flags.has('PS');
  if (large && level !== LEVEL_PDE && level !== LEVEL_PDPTE) {
    throw parseError(`PS is only valid in a PDE (level 2) or PDPTE (level 3), not level ${level}`);
  }
  const pfn = fields.pfn;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= 2 ** 40) throw parseError(`pfn ${pfn} is not in 0..2^40-1`);
  const align = large ? (level === LEVEL_PDE ? 512 : 512 * 512) : 1;
  if (pfn % align !== 0)
    throw parseError(`pfn 0x${pfn.toString(16)} is not aligned to the ${level === LEVEL_PDE ? '2 MiB' : '1 GiB'} page`);
  let lo = frameLo(pfn);
  let hi = frameHi(pfn);
  const bit: Record<string, number> = { P, RW, US, PWT, PCD, A, D, PS, G };
  for (const f of flags) {
    if (f === 'XD') hi |= XD_HI;
    else if (f === 'PAT') lo |= large ? PAT_LARGE : level === LEVEL_PTE ? PAT_4K : 0;
    else lo |= bit[f]!;
  }
  if (flags.has('PAT') && !large && level !== LEVEL_PTE) throw parseError(`PAT is only valid in a leaf entry`);
  const swl = fields.softwareLow ?? 0;
  const swh = fields.softwareHigh ?? 0;
  const pk = fields.pkey ?? 0;
  if (!(swl >= 0 && swl < 8 && Number.isInteger(swl))) throw parseError(`software bits 9..11 value ${swl} is not 0..7`);
  if (!(swh >= 0 && swh < 128 && Number.isInteger(swh)))
    throw parseError(`software bits 52..58 value ${swh} is not 0..127`);
  if (!(pk >= 0 && pk < 16 && Number.isInteger(pk))) throw parseError(`protection key ${pk} is not 0..15`);
  lo |= swl << SW_LOW_SHIFT;
  hi |= (swh << SW_HIGH_SHIFT_HI) | (pk << PKEY_SHIFT_HI);
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

const RESERVED_NAMES_LO: Array<[number, string]> = [[PS, 'PS']];

/** Decode an entry at `level` (default PTE) with the given features' reserved-bit rules. */
export function decodeEntry(
  lo: number,
  hi: number,
  level: number = LEVEL_PTE,
  features: PagingFeatures = DEFAULT_FEATURES,
): DecodedEntry {
  if (!Number.isInteger(level) || level < 1 || level > 5) throw parseError(`level ${level} is not 1..5`);
  lo >>>= 0;
  hi >>>= 0;
  const leaf = isLeaf(level, lo);
  const large = leaf && level !== LEVEL_PTE;
  const pageSize = 2 ** (12 + 9 * (level - 1));
  const reserved: string[] = [];
  if (lo & P) {
    const masks = new ReservedMasks(features);
    const i = level * 2 + (level === LEVEL_PTE ? 0 : (lo & PS) >>> 7);
    const rlo = lo & masks.lo[i]!;
    const rhi = hi & masks.hi[i]!;
    for (let b = 0; b < 32; b++) {
      if (rlo & (1 << b)) reserved.push(RESERVED_NAMES_LO.find(([m]) => m === 1 << b)?.[1] ?? `bit ${b}`);
    }
    for (let b = 0; b < 32; b++) if (rhi & (1 << b)) reserved.push(b === 31 ? 'XD (NXE=0)' : `bit ${b + 32}`);
  }
  return {
    level,
    levelName: LEVEL_NAMES[level]!,
    present: (lo & P) !== 0,
    leaf,
    pageSize,
    rw: (lo & RW) !== 0,
    us: (lo & US) !== 0,
    pwt: (lo & PWT) !== 0,
    pcd: (lo & PCD) !== 0,
    accessed: (lo & A) !== 0,
    dirty: (lo & D) !== 0,
    ps: level !== LEVEL_PTE && (lo & PS) !== 0,
    pat: level === LEVEL_PTE ? (lo & PAT_4K) !== 0 : large ? (lo & PAT_LARGE) !== 0 : false,
    global: (lo & G) !== 0,
    softwareLow: (lo & SW_LOW_MASK) >>> SW_LOW_SHIFT,
    softwareHigh: (hi & SW_HIGH_MASK_HI) >>> SW_HIGH_SHIFT_HI,
    pkey: (hi & PKEY_MASK_HI) >>> PKEY_SHIFT_HI,
    xd: (hi & XD_HI) !== 0,
    pfn: entryPfn(level, lo, hi),
    reserved,
  };
}

/** Parse `0x8000000012345067` into halves (the 0x is optional: digits are always hex); one clear error for anything else. */
export function parseEntryHex(text: string): { lo: number; hi: number } {
  const s = text.trim();
  if (!/^(0x)?[0-9a-f]{1,16}$/i.test(s)) {
    throw parseError(`'${text}' is not a 64-bit entry`, 'give up to 16 hex digits, e.g. 0x8000000012345067');
  }
  return splitEntry(BigInt(s.toLowerCase().startsWith('0x') ? s : `0x${s}`));
}

/** Hex form `0x%016x` of an entry. */
export function formatEntryHex(lo: number, hi: number): string {
  return `0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Low half of an entry's address field for 4 KiB frame `pfn` (bits 12..31 of pfn << 12; flags are
 * added to it). With frameHi, the one place where a frame is split into an entry's two halves.
 */
export function frameLo(pfn: number): number {
  return (pfn % 1048576) * 4096;
}

/** High half of an entry's address field for frame `pfn` (bits 32..51; XD and software bits are or-ed in). */
export function frameHi(pfn: number): number {
  return Math.floor(pfn / 1048576);
}
