/**
 * Fixtures for the @pte/kvm-shadow tests (not a test file itself): guest page tables built by hand
 * in a guest PhysMem (PageTables, as the guest kernel's pgd/pud/pmd/pte_alloc would), KVM's shadow
 * MMU over it, and a real CPU (Mmu) walking the shadow tables. `access` is the access loop of
 * Machine.touch without a guest kernel: translate, and on a #PF let KVM fix the shadow tables or
 * report that the fault belongs to the guest. Only @pte/core, @pte/arch-x86 and @pte/pvops are used
 * below this package (layer rule: no @pte/vm, no @pte/machine).
 */
import { CycleLedger } from '@pte/core';
import {
  frameHi,
  frameLo,
  A,
  ACCESS_USER,
  ACCESS_WRITE,
  D,
  LINUX_PAGE_TABLE,
  Mmu,
  P,
  PageTables,
  PhysMem,
  RW,
  SimpleFrameSource,
  TRANSLATE_PF,
  US,
  XD_HI,
} from '@pte/arch-x86';
import { ShadowMmu, type ShadowEra } from '../src/index.js';

/** PML4 slot 1: user addresses from 512 GiB up (page numbers from 512^3). */
export const BASE_VPN = 512 ** 3;

export function vpnHi(vpn: number): number {
  return Math.floor(vpn / 1048576);
}

export function vpnLo(vpn: number): number {
  return ((vpn % 1048576) * 4096) >>> 0;
}

export interface Rig {
  readonly ledger: CycleLedger;
  readonly gmem: PhysMem;
  /** Guest frames (tables and data) come from here. */
  readonly frames: SimpleFrameSource;
  readonly pt: PageTables;
  readonly kvm: ShadowMmu;
  readonly cpu: Mmu;
}

/**
 * A guest of `frames` frames with one address space (upper entries flagged as Linux's _PAGE_TABLE,
 * A and D set), KVM's shadow MMU and the CPU. `tables` pre-creates the PTE pages of the 2 MiB
 * regions 0..tables-1 from BASE_VPN, before KVM sees any of it. CR3 is not loaded yet.
 */
export function rig(era: ShadowEra = 'modern', tables = 1, frames = 8192): Rig {
  const ledger = new CycleLedger();
  const gmem = new PhysMem(frames);
  const src = new SimpleFrameSource(frames, 1);
  const pt = new PageTables(gmem, src, 4, LINUX_PAGE_TABLE);
  for (let i = 0; i < tables; i++) pt.tableFor(vpnHi(BASE_VPN + 512 * i), vpnLo(BASE_VPN + 512 * i), 1, true);
  const kvm = new ShadowMmu({ gmem, era, ledger });
  const cpu = new Mmu(kvm.smem, { ledger });
  kvm.attachCpu(cpu);
  return { ledger, gmem, frames: src, pt, kvm, cpu };
}

/** The guest's PTE page (frame) for `vpn`, which must exist. */
export function leafOf(r: Rig, vpn: number): number {
  const t = r.pt.tableFor(vpnHi(vpn), vpnLo(vpn), 1, false);
  if (t < 0) throw new Error(`no PTE page for page ${vpn}`);
  return t;
}

/** A user PTE (low half) for guest frame `pfn`: present, user, plus `flags` (A, D, RW). */
export function pteLo(pfn: number, flags: number): number {
  return (frameLo(pfn) + (P | US | flags)) >>> 0;
}

export function pteHi(pfn: number): number {
  return (frameHi(pfn) | XD_HI) >>> 0;
}

/** A young, clean, read-only user PTE; `young: false` gives an old one. */
export const YOUNG_RO = A;
export const YOUNG_RW_DIRTY = A | RW | D;

/** Guest store of a PTE (a plain store, as native_set_pte: write-tracked frames reach KVM). */
export function storePte(r: Rig, vpn: number, pfn: number, flags: number): void {
  r.gmem.write(leafOf(r, vpn), vpn % 512, pteLo(pfn, flags), pteHi(pfn));
}

/** Map `n` pages from `vpn` to fresh data frames with `flags`; returns the frames. */
export function mapPages(r: Rig, vpn: number, n: number, flags: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const f = r.frames.allocFrame();
    storePte(r, vpn + i, f, flags);
    out.push(f);
  }
  return out;
}

/** Result of `access` when the #PF belongs to the guest (KVM injected it, or it bypassed KVM). */
export const GUEST_PF = -1;

/**
 * One user access: translate; on a #PF, KVM's handler; retry while KVM fixes the shadow tables.
 * Returns the frame reached, or GUEST_PF.
 */
export function access(r: Rig, vpn: number, write = false): number {
  const hi = vpnHi(vpn);
  const lo = vpnLo(vpn);
  const acc = ACCESS_USER | (write ? ACCESS_WRITE : 0);
  let pfn = r.cpu.translate(hi, lo, acc);
  let tries = 0;
  while (pfn === TRANSLATE_PF) {
    if (++tries > 4) throw new Error(`page ${vpn} still faults on the shadow tables after ${tries} exits`);
    if (!r.kvm.handlePageFault(hi, lo, acc)) return GUEST_PF;
    pfn = r.cpu.translate(hi, lo, acc);
  }
  return pfn;
}

/** The CPU's view without KVM: the frame, or TRANSLATE_PF. */
export function translate(r: Rig, vpn: number, write = false): number {
  return r.cpu.translate(vpnHi(vpn), vpnLo(vpn), ACCESS_USER | (write ? ACCESS_WRITE : 0));
}

/** The leaf spte of `vpn` in the current shadow tables as [lo, hi], or null when no shadow PTE page is reached. */
export function spteOf(r: Rig, vpn: number): [number, number] | null {
  const s = r.kvm.smem;
  let t = r.cpu.root;
  for (let level = 4; level >= 2; level--) {
    const idx = Math.floor(vpn / 512 ** (level - 1)) % 512;
    const lo = s.readLo(t, idx);
    if ((lo & P) === 0) return null;
    t = (lo >>> 12) + (s.readHi(t, idx) & 0xfffff) * 1048576;
  }
  return [s.readLo(t, vpn % 512), s.readHi(t, vpn % 512)];
}

/** The shadow MMU's statistics as one object (for exact deltas). */
export function stats(kvm: ShadowMmu): Record<string, number> {
  return {
    exits: kvm.exits,
    shadowFaults: kvm.shadowFaults,
    injected: kvm.injected,
    bypassed: kvm.bypassed,
    prefetched: kvm.prefetched,
    emulated: kvm.emulated,
    unsyncs: kvm.unsyncs,
    syncs: kvm.syncs,
    invlpgExits: kvm.invlpgExits,
    cr3Exits: kvm.cr3Exits,
    zappedPages: kvm.zappedPages,
  };
}

/** `after − before` for the stats, keeping only what changed. */
export function delta(before: Record<string, number>, kvm: ShadowMmu): Record<string, number> {
  const now = stats(kvm);
  const out: Record<string, number> = {};
  for (const k of Object.keys(now)) if (now[k] !== before[k]) out[k] = now[k]! - before[k]!;
  return out;
}
