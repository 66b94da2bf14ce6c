import { tableIndex } from './address.js';
import { DEFAULT_FEATURES, entryPfn, ReservedMasks, type PagingFeatures } from './pte-codec.js';
import type { PhysMem } from './phys-mem.js';
import { A, D, G, LEVEL_PDE, LEVEL_PDPTE, P, PKEY_SHIFT_HI, PS, RW, US, XD_HI } from './pte-bits.js';

/**
 * Access kinds. The values are the #PF error-code bits that describe the access (SDM Vol. 3A
 * §4.7, figure 4-12): W/R = bit 1, U/S = bit 2, I/D = bit 4. A read is 0.
 */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1 << 1;
export const ACCESS_USER = 1 << 2;
export const ACCESS_FETCH = 1 << 4;

/** #PF error-code bits (SDM §4.7; Linux enum x86_pf_error_code X86_PF_*). */
export const PF_P = 1 << 0;
export const PF_W = 1 << 1;
export const PF_U = 1 << 2;
export const PF_RSVD = 1 << 3;
export const PF_I = 1 << 4;
export const PF_PK = 1 << 5;

/** Control-register state that changes what a walk allows. */
export interface PagingMode extends PagingFeatures {
  /** 4-level or 5-level (CR4.LA57). */
  readonly levels: 4 | 5;
  /** CR0.WP: supervisor writes honour R/W. */
  readonly wp: boolean;
  /** CR4.SMEP: supervisor instruction fetches from user pages fault. */
  readonly smep: boolean;
  /** CR4.PKE: protection keys for user-mode addresses. */
  readonly pke: boolean;
}

export const DEFAULT_MODE: PagingMode = { ...DEFAULT_FEATURES, levels: 4, wp: true, smep: false, pke: false };

/**
 * The hardware page walker (SDM Vol. 3A §4.5–4.8). It reads the paging structures in `PhysMem`,
 * applies the access-rights rules of §4.6 (R/W and U/S ANDed over the levels, XD ORed), computes
 * the #PF error code of §4.7, and sets A on every entry used and D on the leaf of a write, each
 * only when not already set (§4.8).
 *
 * A and D are written only when the translation succeeds, as KVM's software walker does
 * (arch/x86/kvm/mmu/paging_tmpl.h FNAME(walk_addr_generic) updates A/D after the permission
 * checks); the SDM does not require a faulting walk to set them.
 *
 * Results go to fields of this object so a walk allocates nothing.
 */
export class Walker {
  private readonly rsvd: ReservedMasks;
  private readonly levels: number;
  private readonly wp: boolean;
  private readonly nxe: boolean;
  private readonly smep: boolean;
  private readonly pke: boolean;
  /** Protection-key rights register (PKRU): AD = bit 2k, WD = bit 2k+1 for key k. */
  pkru = 0;
  /** Frame of the table read at each level of the last walk (what a hypervisor shadows). */
  readonly tables = new Int32Array(6);
  /** Index into PhysMem.ent of the low half of the entry used at each level of the last walk. */
  readonly path = new Int32Array(6);

  // Results of the last walk.
  /** #PF error code, valid when walk() returned false. */
  errorCode = 0;
  /** Level of the leaf (1 = 4K, 2 = 2M, 3 = 1G), or the level where the walk stopped. */
  level = 0;
  /** First 4K frame of the page mapped by the leaf. */
  basePfn = 0;
  /** 4K frame of the accessed address. */
  pfn = 0;
  /** Effective rights: RW and US bits as in an entry, after ANDing all levels. */
  rights = 0;
  /** XD ORed over the levels (with NXE). */
  xd = false;
  global = false;
  dirty = false;
  pkey = 0;
  /** Paging-structure reads of the last walk. */
  refs = 0;
  /** A/D bits written by the last walk (locked read-modify-writes). */
  adWrites = 0;
  /** Successful walks whose leaf carried a PhysMem mark (cleared on the way): first uses of prefaulted PTEs. */
  markedUses = 0;

  constructor(
    private readonly mem: PhysMem,
    mode: PagingMode = DEFAULT_MODE,
  ) {
    this.rsvd = new ReservedMasks(mode);
    this.levels = mode.levels;
    this.wp = mode.wp;
    this.nxe = mode.nxe;
    this.smep = mode.smep;
    this.pke = mode.pke;
  }

  /**
   * Translate `hi:lo` for `access` starting at the top-level table `root`. Returns true when the
   * access is allowed (results in the fields), false on a page fault (`errorCode`). The caller
   * checks canonicality first (a non-canonical address is #GP, not #PF).
   */
  walk(root: number, hi: number, lo: number, access: number): boolean {
    const mem = this.mem;
    const E = mem.ent;
    const slotOf = mem.slotOf;
    const rsvdLo = this.rsvd.lo;
    const rsvdHi = this.rsvd.hi;
    // The I/D bit is reported only with NXE or SMEP (SDM §4.7).
    const accessBits =
      access & (this.nxe || this.smep ? ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH : ACCESS_WRITE | ACCESS_USER);
    let table = root;
    let rights = RW | US;
    let xd = 0;
    let refs = 0;
    let level = this.levels;
    let elo = 0;
    let ehi = 0;
    let allA = A;
    for (;;) {
      const slot = slotOf[table]!;
      // `!(slot >= 0)` also catches a frame beyond physical memory (slotOf[table] is undefined).
      if (!(slot >= 0)) throw new Error(`walk reached frame 0x${table.toString(16)}, which is not a page table`);
      const e = (slot * 512 + tableIndex(level, hi, lo)) * 2;
      elo = E[e]!;
      ehi = E[e + 1]!;
      refs++;
      this.path[level] = e;
      this.tables[level] = table;
      if ((elo & P) === 0) return this.fault(level, refs, accessBits);
      const ri = level * 2 + (level === 1 ? 0 : (elo & PS) >>> 7);
      if (((elo & rsvdLo[ri]!) | (ehi & rsvdHi[ri]!)) !== 0)
        return this.fault(level, refs, accessBits | PF_P | PF_RSVD);
      rights &= elo;
      xd |= ehi & XD_HI;
      allA &= elo;
      if (level === 1 || ((level === LEVEL_PDE || level === LEVEL_PDPTE) && (elo & PS) !== 0)) break;
      table = (elo >>> 12) + (ehi & 0xfffff) * 1048576; // a table address: bits 12..51
      level--;
    }
    this.refs = refs;
    this.level = level;
    rights &= RW | US;
    const isXd = this.nxe && xd !== 0;
    const pkey = (ehi >>> PKEY_SHIFT_HI) & 0xf;
    const denied = this.permissionFault(rights, isXd, pkey, access);
    if (denied !== 0) return this.fault(level, refs, accessBits | denied);

    // Success: set A on every entry used, D on the leaf for a write, each only if clear.
    let adWrites = 0;
    const path = this.path;
    if (allA === 0) {
      for (let l = this.levels; l >= level; l--) {
        const e = path[l]!;
        const v = E[e]!;
        if ((v & A) === 0) {
          E[e] = v | A;
          adWrites++;
        }
      }
    }
    const leaf = path[level]!;
    if (mem.marked !== 0 && mem.takeMark(leaf >> 1)) this.markedUses++;
    if ((access & ACCESS_WRITE) !== 0 && (E[leaf]! & D) === 0) {
      E[leaf] = E[leaf]! | D;
      adWrites++;
    }
    this.adWrites = adWrites;
    const base = entryPfn(level, elo, ehi);
    this.basePfn = base;
    this.pfn = level === 1 ? base : base + ((lo >>> 12) & (level === 2 ? 0x1ff : 0x3ffff));
    this.rights = rights;
    this.xd = isXd;
    this.global = (elo & G) !== 0;
    this.dirty = (E[leaf]! & D) !== 0;
    this.pkey = pkey;
    return true;
  }

  /**
   * Access rights of SDM §4.6 for a translation with effective `rights` (RW|US), XD and protection
   * key: 0 if allowed, else the PF_P (and PF_PK) bits. Shared by walks and TLB hits, because a TLB
   * hit is checked against the rights cached with it (PKRU is read on every access, §4.6.2).
   */
  permissionFault(rights: number, isXd: boolean, pkey: number, access: number): number {
    const user = (access & ACCESS_USER) !== 0;
    let denied = false;
    if (user && (rights & US) === 0) denied = true;
    if ((access & ACCESS_WRITE) !== 0 && (rights & RW) === 0 && (user || this.wp)) denied = true;
    if ((access & ACCESS_FETCH) !== 0) {
      if (isXd) denied = true;
      if (!user && this.smep && (rights & US) !== 0) denied = true;
    }
    let pk = 0;
    if (this.pke && (rights & US) !== 0 && (access & ACCESS_FETCH) === 0) {
      const ad = (this.pkru >>> (2 * pkey)) & 1;
      const wd = (this.pkru >>> (2 * pkey + 1)) & 1;
      if (ad !== 0 || (wd !== 0 && (access & ACCESS_WRITE) !== 0 && (user || this.wp))) pk = PF_PK;
    }
    return denied || pk !== 0 ? PF_P | pk : 0;
  }

  private fault(level: number, refs: number, code: number): false {
    this.level = level;
    this.refs = refs;
    this.adWrites = 0;
    this.errorCode = code;
    return false;
  }
}
