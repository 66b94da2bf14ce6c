/**
 * Fixtures for the @pte/xen tests (not a test file itself): one Xen PV domain (XenHypervisor + a
 * CPU + the guest's XenPvMmu backend), a hand-built 4-level user tree, and snapshots of Xen's
 * counters. Only @pte/core, @pte/arch-x86 and @pte/pvops are used below the package (layer rule:
 * no @pte/vm, no @pte/machine).
 */
import { CycleLedger } from '@pte/core';
import { frameHi, frameLo, A, D, LINUX_PAGE_TABLE, Mmu, P, RW, US } from '@pte/arch-x86';
import { HYPERVISOR, XenHypervisor, XenPvMmu, type XenPteWrite } from '../src/index.js';

export interface Rig {
  readonly ledger: CycleLedger;
  readonly xen: XenHypervisor;
  readonly mmu: Mmu;
  readonly pv: XenPvMmu;
}

/** A domain of `guestFrames` frames (16 MiB by default) behind a seeded P2M, the CPU attached. */
export function rig(pteWrite: XenPteWrite = 'mmu_update', guestFrames = 4096, seed = 1): Rig {
  const ledger = new CycleLedger();
  const xen = new XenHypervisor({ guestFrames, seed, ledger });
  const mmu = new Mmu(xen.mem, { ledger });
  xen.attachCpu(mmu);
  const pv = new XenPvMmu(xen, mmu, pteWrite, ledger);
  return { ledger, xen, mmu, pv };
}

/** Low half of an entry pointing at machine frame `mfn` with `flags` (frames below 2^20 here). */
export function entLo(mfn: number, flags: number): number {
  return (frameLo(mfn) + flags) >>> 0;
}

export function entHi(mfn: number): number {
  return frameHi(mfn);
}

/** A user PTE for guest frame `pfn` as the guest builds it (pfn_pte through the P2M). */
export function userPte(r: Rig, pfn: number, writable: boolean, extra = 0): number {
  return entLo(r.pv.mfn(pfn), P | US | A | (writable ? RW | D : 0) | extra);
}

/** pml4 index of the test tree: user addresses from 512 GiB up. */
export const PML4_INDEX = 1;

/** Virtual page mapped by entry `j` of the tree's `i`-th PTE page. */
export function treeVpn(i: number, j: number): number {
  return PML4_INDEX * 512 ** 3 + i * 512 + j;
}

export function vpnHi(vpn: number): number {
  return Math.floor(vpn / 1048576);
}

export function vpnLo(vpn: number): number {
  return ((vpn % 1048576) * 4096) >>> 0;
}

/** Guest frames of a user tree: root → one L3 → one L2 → `l1.length` PTE pages (PMD slots 0..). */
export interface Tree {
  readonly root: number;
  readonly l3: number;
  readonly l2: number;
  readonly l1: number[];
  /** Every table page, root included. */
  readonly pages: number;
}

/**
 * Build a tree the way fork builds the child's (unpinned: plain stores through the backend), with
 * `ptes[i]` present PTEs in PTE page i (writable when `writable`), mapping data frames from
 * `dataBase` on. Frames for the tables come from `tableBase` on. Not pinned.
 */
export function buildTree(
  r: Rig,
  ptes: number[],
  opts: { writable?: boolean; tableBase?: number; dataBase?: number } = {},
): Tree {
  const pv = r.pv;
  let next = opts.tableBase ?? 16;
  let data = opts.dataBase ?? 1024;
  const root = next++;
  pv.allocPt(4, root, root);
  const l3 = next++;
  pv.allocPt(3, l3, root);
  pv.setUpper(4, root, PML4_INDEX, entLo(pv.mfn(l3), LINUX_PAGE_TABLE), entHi(pv.mfn(l3)));
  const l2 = next++;
  pv.allocPt(2, l2, root);
  pv.setUpper(3, l3, 0, entLo(pv.mfn(l2), LINUX_PAGE_TABLE), entHi(pv.mfn(l2)));
  const l1: number[] = [];
  ptes.forEach((n, i) => {
    const t = next++;
    pv.allocPt(1, t, root);
    pv.setUpper(2, l2, i, entLo(pv.mfn(t), LINUX_PAGE_TABLE), entHi(pv.mfn(t)));
    for (let j = 0; j < n; j++) pv.setPte(t, j, userPte(r, data++, opts.writable ?? true), 0);
    l1.push(t);
  });
  return { root, l3, l2, l1, pages: 3 + l1.length };
}

/** Xen's counters and the backend's, for before/after differences. */
export interface Snap {
  hypercalls: number;
  mmu_update: number;
  update_va_mapping: number;
  mmuext_op: number;
  multicall: number;
  updateEntries: number;
  multicallEntries: number;
  refused: number;
  pins: number;
  unpins: number;
  validatedEntries: number;
  ptwrEmulations: number;
  pfBounces: number;
  pinBatches: number;
  failures: number;
  pteWrites: number;
}

export function snap(r: Rig): Snap {
  const x = r.xen;
  return {
    hypercalls: x.hypercalls,
    mmu_update: x.byOp[HYPERVISOR.mmu_update]!,
    update_va_mapping: x.byOp[HYPERVISOR.update_va_mapping]!,
    mmuext_op: x.byOp[HYPERVISOR.mmuext_op]!,
    multicall: x.byOp[HYPERVISOR.multicall]!,
    updateEntries: x.updateEntries,
    multicallEntries: x.multicallEntries,
    refused: x.refused,
    pins: x.pins,
    unpins: x.unpins,
    validatedEntries: x.validatedEntries,
    ptwrEmulations: x.ptwrEmulations,
    pfBounces: x.pfBounces,
    pinBatches: r.pv.pinBatches,
    failures: r.pv.failures,
    pteWrites: r.pv.pteWrites,
  };
}

/** after − before, every field (zeros included, so toEqual pins down what must not move). */
export function delta(before: Snap, after: Snap): Snap {
  const out = { ...after };
  for (const k of Object.keys(before) as (keyof Snap)[]) out[k] = after[k] - before[k];
  return out;
}

/** A Snap of zeros with the given fields set: the exact expected difference. */
export function only(fields: Partial<Snap>): Snap {
  return {
    hypercalls: 0,
    mmu_update: 0,
    update_va_mapping: 0,
    mmuext_op: 0,
    multicall: 0,
    updateEntries: 0,
    multicallEntries: 0,
    refused: 0,
    pins: 0,
    unpins: 0,
    validatedEntries: 0,
    ptwrEmulations: 0,
    pfBounces: 0,
    pinBatches: 0,
    failures: 0,
    pteWrites: 0,
    ...fields,
  };
}
