/**
 * Shared fixtures for the @pte/vm tests (not a test file itself): the layers below the guest kernel
 * assembled as @pte/machine does (PhysMem → Mmu → NativePvMmu → Kernel → Syscalls), without
 * importing @pte/machine (vm may only reach pvops, arch-x86 and core), and the access loop of
 * Machine.touch: translate, on a page fault call handleMmFault with the #PF error code, retry.
 */
import { CycleLedger } from '@pte/core';
import { ACCESS_USER, ACCESS_WRITE, entryPfn, isLeaf, Mmu, P, PhysMem, TRANSLATE_GP } from '@pte/arch-x86';
import { NativePvMmu } from '@pte/pvops';
import {
  FAULT_RETRY,
  getProfile,
  handleMmFault,
  Kernel,
  mapCompletedRead,
  PG_PAGECACHE,
  PG_UPTODATE,
  pteTableFor,
  Syscalls,
  vpnHi,
  vpnIndex,
  vpnLo,
  VM_READ,
  VM_WRITE,
  type Inode,
  type Mm,
  type Task,
  type Vma,
  type VmPolicy,
} from '../src/index.js';

/** 64 Ki frames (256 MiB) unless a test asks for more. */
export const DEFAULT_FRAMES = 1 << 16;

/** A 2 MiB-aligned page number well below the mmap area, for MAP_FIXED mappings. */
export const FIXED_BASE = 0x10000000;

export interface Harness {
  readonly ledger: CycleLedger;
  readonly mem: PhysMem;
  readonly mmu: Mmu;
  readonly pv: NativePvMmu;
  readonly k: Kernel;
  readonly sys: Syscalls;
}

/** A profile's policy with overrides (what `--profile P --set key=value` gives the machine). */
export function policyOf(profile: string, overrides: Partial<VmPolicy> = {}): VmPolicy {
  return { ...getProfile(profile).policy, ...overrides };
}

/** One guest: physical memory, MMU, native pvops, kernel and its system calls. */
export function makeHarness(
  policy: VmPolicy = policyOf('linux-3.15'),
  frames = DEFAULT_FRAMES,
  reclaim = false,
  swapSlots = 0,
): Harness {
  const ledger = new CycleLedger();
  const mem = new PhysMem(frames);
  const mmu = new Mmu(mem, { ledger });
  const pv = new NativePvMmu(mem, mmu, ledger);
  const k = new Kernel({ mem, pv, policy, ledger, reclaim, swapSlots });
  if (policy.mapOnIoComplete) k.hooks.readCompleted = mapCompletedRead;
  const sys = new Syscalls(k);
  return { ledger, mem, mmu, pv, k, sys };
}

/** Result of `touch` for an access the process dies of (SIGSEGV / SIGBUS). */
export const TOUCH_SIGNAL = -1;

/**
 * One access by `task` to page `vpn`, exactly as Machine.touch does it: switch to the task's
 * address space, translate; on a page fault call the kernel's handler with the hardware error
 * code (plus U) and retry. Returns the frame reached, or TOUCH_SIGNAL if the fault was fatal.
 */
export function touch(h: Harness, task: Task, vpn: number, write: boolean): number {
  const { k, mmu } = h;
  k.switchMm(task.mm);
  const access = ACCESS_USER | (write ? ACCESS_WRITE : 0);
  const hi = vpnHi(vpn);
  const lo = vpnLo(vpn);
  let pfn = mmu.translate(hi, lo, access);
  let tries = 0;
  while (pfn < 0) {
    if (pfn === TRANSLATE_GP) throw new Error(`non-canonical address for page ${vpn}`);
    if (handleMmFault(k, task.mm, vpn, mmu.faultCode | ACCESS_USER) !== FAULT_RETRY) return TOUCH_SIGNAL;
    if (++tries > 4) throw new Error(`page ${vpn} still faults after ${tries} retries`);
    pfn = mmu.translate(hi, lo, access);
  }
  return pfn;
}

/** Touch pages [first, first + count) of `vma` (relative indices) in order. */
export function touchRange(h: Harness, task: Task, vma: Vma, first: number, count: number, write: boolean): void {
  for (let i = first; i < first + count; i++) touch(h, task, vma.start + i, write);
}

/** Touch the given page indices of `vma`, in the given order. */
export function touchPages(h: Harness, task: Task, vma: Vma, pages: Iterable<number>, write: boolean): void {
  for (const i of pages) touch(h, task, vma.start + i, write);
}

/** The leaf PTE of `vpn` in `task`'s tables as [lo, hi], or null when no PTE page covers it. */
export function pteOf(h: Harness, task: Task, vpn: number): [number, number] | null {
  const pt = pteTableFor(h.k, task.mm, vpn, false);
  if (pt < 0) return null;
  return [h.mem.readLo(pt, vpn % 512), h.mem.readHi(pt, vpn % 512)];
}

/** Is page `vpn` mapped by a present PTE in `task`'s tables? */
export function ptePresent(h: Harness, task: Task, vpn: number): boolean {
  const e = pteOf(h, task, vpn);
  return e !== null && (e[0] & P) !== 0;
}

/** Pages of `vma` (relative indices) that have a present PTE. */
export function presentPages(h: Harness, task: Task, vma: Vma): number[] {
  const out: number[] = [];
  for (let v = vma.start; v < vma.end; v++) if (ptePresent(h, task, v)) out.push(v - vma.start);
  return out;
}

/** Insert one order-0, uptodate page-cache page at `index` with extra frame flags (filemap_add_folio). */
export function cachePage(h: Harness, inode: Inode, index: number, extraFlags = 0): number {
  const pfn = h.k.frames.allocOrFail(0);
  h.k.pageCache.insert(inode, index, pfn, 0, PG_UPTODATE | extraFlags);
  return pfn;
}

/** Insert one folio of 2^order pages at `index`, uptodate (it may reach past EOF). */
export function cacheFolio(h: Harness, inode: Inode, index: number, order: number): number {
  const pfn = h.k.frames.allocOrFail(order);
  h.k.pageCache.insert(inode, index, pfn, order, PG_UPTODATE);
  return pfn;
}

/** Frames that belong to the page cache (PG_PAGECACHE). */
export function pageCacheFrames(h: Harness): number {
  const f = h.k.frames;
  let n = 0;
  for (let pfn = 0; pfn < f.frames; pfn++) if ((f.flags[pfn]! & PG_PAGECACHE) !== 0) n++;
  return n;
}

/** A file mapping of `pages` pages (read-only unless `write`), private unless `shared`. */
export function mapFile(
  h: Harness,
  task: Task,
  file: Inode,
  pages: number,
  o: { shared?: boolean; write?: boolean; pgoff?: number; fixedVpn?: number } = {},
): Vma {
  return h.sys.mmap(task, {
    pages,
    prot: VM_READ | (o.write === true ? VM_WRITE : 0),
    shared: o.shared ?? false,
    file,
    ...(o.pgoff !== undefined ? { pgoff: o.pgoff } : {}),
    ...(o.fixedVpn !== undefined ? { fixedVpn: o.fixedVpn } : {}),
  });
}

/** A private read-write anonymous mapping. */
export function mapAnon(h: Harness, task: Task, pages: number, fixedVpn?: number): Vma {
  return h.sys.mmap(task, {
    pages,
    prot: VM_READ | VM_WRITE,
    shared: false,
    file: null,
    ...(fixedVpn !== undefined ? { fixedVpn } : {}),
  });
}

/** A snapshot of the kernel's counters, for deltas. */
export function statsOf(h: Harness): Record<string, number> {
  return { ...(h.k.stats as unknown as Record<string, number>) };
}

/** Counter deltas since `before`, only the ones that changed. */
export function statsDelta(h: Harness, before: Record<string, number>): Record<string, number> {
  const now = statsOf(h);
  const out: Record<string, number> = {};
  for (const key of Object.keys(now)) {
    const d = now[key]! - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

/**
 * The level-`level` entry (1 = PTE, 2 = PMD, ...) covering `vpn` in `mm`'s tables, found by a walk
 * of guest memory as the hardware does it; null when a table on the way is absent or a leaf
 * above `level` maps the address.
 */
export function entryAt(
  h: Harness,
  mm: Mm,
  vpn: number,
  level: number,
): { table: number; index: number; lo: number; hi: number } | null {
  let table = mm.root;
  for (let l = h.k.levels; ; l--) {
    const index = vpnIndex(vpn, l);
    const lo = h.mem.readLo(table, index);
    const hi = h.mem.readHi(table, index);
    if (l === level) return { table, index, lo, hi };
    if ((lo & P) === 0 || isLeaf(l, lo)) return null;
    table = entryPfn(l, lo, hi);
  }
}
