import type { Counters } from '@pte/core';
import { frameHi, frameLo, A, D, G, P, RW, XD_HI } from '@pte/arch-x86';
import type { Kernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PG_VMALLOC } from './page-flags.js';
import { pteTableFor } from './pgtable.js';
import { flushTlbKernelAll } from './tlb-gather.js';
import { RwSem } from './rwsem.js';
import { SharedLine } from './cache-line.js';

/** VMALLOC_START of x86-64 with 4-level paging (0xffffc90000000000) as a page number. */
export const VMALLOC_START_VPN = 0xffffc90000000;

/**
 * How vunmap flushes, after mm/vmalloc.c across eras (linux-mm.md §7):
 * - `eager`: before Nick Piggin's rewrite (≤ 2.6.27): clear the PTEs and flush the kernel range on
 *   every CPU at each vunmap;
 * - `lazy`: the rewrite (2.6.28): freed areas accumulate until `lazyMaxPages`, then one purge
 *   flushes them all. With `unmapAtPurge` the PTEs stay until the purge, as in the 2008 patch, so
 *   a freed area leaves live writable aliases of its pages; otherwise (later kernels,
 *   free_unmap_vmap_area) the PTEs are cleared at vunmap and only the flush waits.
 */
export interface VmapPolicy {
  readonly mode: 'eager' | 'lazy';
  readonly unmapAtPurge: boolean;
  /** CPUs online: a kernel-range flush interrupts the other nrCpus − 1. */
  readonly nrCpus: number;
  /** lazy_max_pages(); default fls(nrCpus) × 32 MiB / 4 KiB. */
  readonly lazyMaxPages?: number;
}

/** fls(): index of the highest set bit, 1-based (fls(1) = 1, fls(8) = 4). */
export function fls(x: number): number {
  return x <= 0 ? 0 : 32 - Math.clz32(x);
}

/** lazy_max_pages() = fls(num_online_cpus()) × (32 MiB / PAGE_SIZE). */
export function lazyMaxPages(nrCpus: number): number {
  return fls(nrCpus) * ((32 * 1024 * 1024) / 4096);
}

interface VmapArea {
  start: number;
  pages: number;
  frames: number[];
  mapped: boolean;
}

/**
 * The vmap allocator (mm/vmalloc.c): vmap() maps frames at fresh kernel addresses in init_mm's
 * page tables (through pvops, so a hypervisor sees and validates every PTE), vunmap() releases
 * them eagerly or lazily, and vm_unmap_aliases() purges every lazily freed area at once — what Xen
 * needs before it pins a page that may still have a stale writable alias (seed 003).
 */
export class Vmalloc {
  readonly mm: Mm;
  readonly lazyMax: number;
  private next = VMALLOC_START_VPN;
  private readonly areas = new Map<number, VmapArea>();
  private readonly lazy: VmapArea[] = [];
  private lazyPages = 0;
  /** Frames with a live vmap mapping of a lazily freed area (the "p→v bit" Nick Piggin offered). */
  private readonly aliased = new Map<number, number>();
  // Statistics (vmap.*).
  maps = 0;
  unmaps = 0;
  purges = 0;
  flushes = 0;
  ipis = 0;
  unmapAliasCalls = 0;
  /** Page-table frames handed out while still aliased (notePtFrame; not a published counter). */
  aliasedPtFrames = 0;
  /**
   * 2008's global vmlist_lock on several CPUs (spinlock.ts): an rwlock that get_vm_area and
   * remove_vm_area take for write; the vunmap flush runs under it.
   */
  readonly vmlistLock = new RwSem('vmlist_lock');
  readonly vmlistLine = new SharedLine('lock.vmlist_lock.line');

  /** Publish the counters (vmap.*). */
  addCountersTo(c: Counters): void {
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('vmap.maps', this.maps);
    add('vmap.unmaps', this.unmaps);
    add('vmap.purges', this.purges);
    add('vmap.flushes', this.flushes);
    add('vmap.ipis', this.ipis);
    add('vmap.unmap_aliases', this.unmapAliasCalls);
    if (this.k.cpus.length > 1) {
      add('lock.vmlist_lock.acquires', this.vmlistLock.acquires);
      add('lock.vmlist_lock.contended', this.vmlistLock.contended);
    }
  }

  constructor(
    private readonly k: Kernel,
    readonly policy: VmapPolicy,
  ) {
    this.mm = k.kernelMm();
    this.lazyMax = policy.lazyMaxPages ?? lazyMaxPages(policy.nrCpus);
  }

  /** vmap(): map `frames` at a new kernel range; returns its first page. PTEs PAGE_KERNEL (RW, global, NX). */
  vmap(frames: readonly number[]): number {
    const start = this.next;
    this.next += frames.length + 1; // a guard page between areas, as vmalloc leaves
    const k = this.k;
    const pv = k.pv;
    if (k.policy.lazySetPtes) pv.lazyEnter(); // vmap_pte_range in lazy MMU mode (modern)
    for (let i = 0; i < frames.length; i++) {
      const vpn = start + i;
      const pt = pteTableFor(k, this.mm, vpn, true);
      const m = pv.mfn(frames[i]!);
      pv.setPte(pt, vpn % 512, (frameLo(m) + (P | RW | A | D | G)) >>> 0, (frameHi(m) | XD_HI) >>> 0);
    }
    if (k.policy.lazySetPtes) pv.lazyLeave();
    this.areas.set(start, { start, pages: frames.length, frames: [...frames], mapped: true });
    this.maps++;
    return start;
  }

  /** vmalloc(): allocate `pages` order-0 frames and vmap them. */
  vmalloc(pages: number): number {
    const f = this.k.frames;
    const frames: number[] = [];
    for (let i = 0; i < pages; i++) {
      const pfn = f.allocOrFail(0);
      f.flags[pfn] = f.flags[pfn]! | PG_VMALLOC;
      f.refcount[pfn] = 1;
      frames.push(pfn);
    }
    this.k.stats.pagesAllocated += pages;
    this.k.charge(this.k.catFault, this.k.costs.pageAlloc * pages);
    return this.vmap(frames);
  }

  /**
   * vfree(): vunmap the area, then free its frames at once — which, with lazy unmapping, can hand
   * a frame back to the allocator while a stale writable alias of it is still mapped.
   */
  vfree(start: number): void {
    const area = this.areas.get(start);
    if (area === undefined)
      throw new Error(`vfree of an address that vmalloc did not return (page 0x${start.toString(16)})`);
    this.vunmap(start);
    const f = this.k.frames;
    for (const pfn of area.frames) {
      f.flags[pfn] = f.flags[pfn]! & ~PG_VMALLOC;
      f.refcount[pfn] = 0;
      f.free(pfn, 0);
      this.k.stats.pagesFreed++;
    }
  }

  /** Areas currently mapped (vmap'd and not yet vunmap'd). */
  get liveAreas(): number {
    return this.areas.size;
  }

  /** vunmap(): release the area at `start` per the policy. */
  vunmap(start: number): void {
    const area = this.areas.get(start);
    if (area === undefined)
      throw new Error(`vunmap of an address that vmap did not return (page 0x${start.toString(16)})`);
    this.areas.delete(start);
    this.unmaps++;
    if (this.policy.mode === 'eager') {
      this.clearPtes(area);
      this.flushKernelRange();
      return;
    }
    if (this.policy.unmapAtPurge) {
      for (const f of area.frames) this.aliased.set(f, (this.aliased.get(f) ?? 0) + 1);
    } else {
      this.clearPtes(area);
    }
    this.lazy.push(area);
    this.lazyPages += area.pages;
    if (this.lazyPages > this.lazyMax) this.purge();
  }

  /** __purge_vmap_area_lazy(): unmap what is still mapped, then one kernel-range flush for all. */
  purge(): void {
    if (this.lazy.length === 0) return;
    for (const area of this.lazy) {
      if (area.mapped) this.clearPtes(area);
      for (const f of area.frames) {
        const n = (this.aliased.get(f) ?? 0) - 1;
        if (n > 0) this.aliased.set(f, n);
        else this.aliased.delete(f);
      }
    }
    this.lazy.length = 0;
    this.lazyPages = 0;
    this.purges++;
    this.flushKernelRange();
  }

  /** vm_unmap_aliases(): purge every lazily freed area now (a flush only if there was one). */
  unmapAliases(): void {
    this.unmapAliasCalls++;
    this.purge();
  }

  /** Does guest frame `pfn` still have a stale vmap mapping? */
  hasAlias(pfn: number): boolean {
    return this.aliased.has(pfn);
  }

  /**
   * A page-table frame was allocated (Kernel hooks.ptFrameAllocated): count it if a lazily freed
   * area still maps it writable — a frame Xen refuses to pin unless a guard purged the alias first.
   */
  notePtFrame(pfn: number): void {
    if (this.aliased.has(pfn)) this.aliasedPtFrames++;
  }

  /** Pages freed lazily and not yet purged. */
  get pendingPages(): number {
    return this.lazyPages;
  }

  private clearPtes(area: VmapArea): void {
    const k = this.k;
    k.pv.lazyEnter();
    for (let i = 0; i < area.pages; i++) {
      const vpn = area.start + i;
      const pt = pteTableFor(k, this.mm, vpn, false);
      if (pt >= 0) k.pv.ptepGetAndClear(pt, vpn % 512);
    }
    k.pv.lazyLeave();
    area.mapped = false;
  }

  /**
   * flush_tlb_kernel_range(): a global flush here and an IPI to every other CPU. With several
   * CPUs in the machine they are interrupted for real (flushTlbKernelAll, each on its own clock);
   * with one, `nrCpus` stands for the machine's CPUs and each other CPU's IPI costs guest.ipi.
   */
  private flushKernelRange(): void {
    const k = this.k;
    this.flushes++;
    if (k.cpus.length > 1) {
      this.ipis += k.cpus.length - 1;
      flushTlbKernelAll(k);
      return;
    }
    this.ipis += this.policy.nrCpus - 1;
    k.stats.tlbFlushCalls++;
    k.stats.tlbFlushFull++;
    k.charge(k.catFlush, k.costs.flushTlbCall + k.costs.ipi * (this.policy.nrCpus - 1));
    k.pv.flushTlbAll();
  }
}
