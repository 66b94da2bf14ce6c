import type { CpuTlbState } from './tlb-flush.js';
import { CycleLedger, RemoteClock, resolveCosts, type CostTable } from '@pte/core';
import { entryPfn, type PhysMem } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import { BlockDevice } from './block-device.js';
import { VM_COSTS, VmCosts, type VmCostKey } from './costs.js';
import { FrameTable } from './frames.js';
import { Mm } from './mm.js';
import { PageCache, type Inode } from './page-cache.js';
import { PG_LOCKED, PG_PAGETABLE, PG_PTCACHE, PG_UPTODATE, PG_ZERO } from './page-flags.js';
import type { VmPolicy } from './profiles.js';
import { VmStats } from './stats.js';
import { Reclaim } from './vmscan.js';
import { SwapDevice } from './swap.js';
import { Cpu } from './cpu.js';
import { MmuGather } from './tlb-gather.js';
import { SmpStats } from './smp-stats.js';
import type { SharedLine } from './cache-line.js';

export interface KernelOptions {
  readonly mem: PhysMem;
  /** CPU 0's pvops backend. */
  readonly pv: PvMmuOps;
  /** The other CPUs' backends (CPU 1 …), one per CPU like Linux's per-CPU paravirt state. */
  readonly otherCpus?: readonly PvMmuOps[];
  readonly policy: VmPolicy;
  readonly ledger?: CycleLedger;
  readonly costs?: CostTable<VmCostKey>;
  /** Paging levels of the guest (4 or 5). */
  readonly levels?: 4 | 5;
  /** Frames of guest memory (default: all of `mem`; fewer when `mem` is machine memory under Xen PV). */
  readonly frames?: number;
  /** The backing device's readahead in pages (read_ahead_kb / 4; default 32 = 128 KiB). */
  readonly raPages?: number;
  /**
   * The backing device's bdi io_pages (queue max_sectors_kb / 4): the largest single I/O, which
   * bounds force_page_cache_ra() with ra_pages. Default 1024 = 4 MiB, BLK_DEF_MAX_SECTORS_CAP since
   * 9b8b84879d4a (was 1280 KiB); the validation machine's virtio disk reports the same.
   */
  readonly ioPages?: number;
  /** Reclaim the page cache under memory pressure (LRU lists, watermarks, kswapd, direct reclaim). */
  readonly reclaim?: boolean;
  /** Touches within which a refault of an evicted page counts as premature (default 4096). */
  readonly reclaimHorizon?: number;
  /** Shared with the platform (Xen flushes other vCPUs itself); default: the kernel's own. */
  readonly remote?: RemoteClock;
  /** A swap device of this many slots, so reclaim can evict anonymous memory (with reclaim on). */
  readonly swapSlots?: number;
}

/**
 * Callbacks the assembly registers, so that mechanism (I/O completion, the page-table page cache)
 * never calls up into policy (map-on-io, vmalloc).
 */
export interface KernelHooks {
  /** A read issued from a fault of `mm` completed (end_page_read), `mm` still alive. */
  readCompleted: ((k: Kernel, mm: Mm, inode: Inode, start: number, pages: number) => void) | null;
  /** The page-table page cache was refilled (its pages must lose their vmap aliases). */
  ptCacheRefilled: (() => void) | null;
  /** A page-table frame was handed out (an observer: who holds a stale alias of it?). */
  ptFrameAllocated: ((pfn: number) => void) | null;
  /** A request went to a block device (the file's or swap): the platform's notify and completion. */
  ioRequest: (() => void) | null;
}

/** A read in flight: pages [start, start + pages) of `inode`, done at `doneAt` cycles. */
interface IoRequest {
  readonly inode: Inode;
  readonly start: number;
  readonly pages: number;
  readonly doneAt: number;
  /** The address space whose fault issued the read (for the map-on-completion policy). */
  readonly mm: Mm | null;
}

/**
 * The guest kernel's memory manager: frames, page cache, block device, address spaces, and the
 * policies of this run. The fault path, zap, fork and friends are functions in their own files
 * (fault.ts, zap.ts, fork.ts, ...) that take this object, as mm/*.c functions take a vmf.
 */
export class Kernel {
  readonly mem: PhysMem;
  /** The running CPU's pvops backend (runOn switches it with the CPU). */
  pv: PvMmuOps;
  readonly frames: FrameTable;
  readonly pageCache: PageCache;
  readonly blockDev: BlockDevice;
  readonly policy: VmPolicy;
  readonly ledger: CycleLedger;
  /** Resolved cycle costs of the guest kernel (VmCosts). */
  readonly costs: VmCosts;
  readonly stats = new VmStats();
  readonly levels: 4 | 5;
  /** The shared zero page (empty_zero_page). */
  readonly zeroPfn: number;
  /** The huge zero folio (order 9), made on first use by a THP read fault (mm_get_huge_zero_folio); -1 before. */
  hugeZeroPfn = -1;
  /** Ledger categories. */
  readonly catFault: number;
  readonly catZap: number;
  readonly catFork: number;
  readonly catIo: number;
  readonly catFlush: number;
  readonly catReclaim: number;
  /** The CPUs (one for now) and the one running. */
  readonly cpus: Cpu[];
  /** Every CPU's cpu_tlbstate, by id: what a flush of an mm's range looks at (flushTlbMmRange). */
  readonly tlbStates: readonly CpuTlbState[];
  /**
   * HZ in cycles: the once-a-second mm_cpumask trim of flush_tlb_mm_range. Only a flush that
   * reaches another CPU reads it; with one CPU none does, and the several-CPU model sets it from
   * the machine's clock.
   */
  trimIntervalCycles = Number.POSITIVE_INFINITY;
  /** VmPolicy.lazyMmCpumask, read by every flush (FlushEnv). */
  get lazyMmCpumask(): boolean {
    return this.policy.lazyMmCpumask;
  }
  cpu: Cpu;
  /** bdi->ra_pages. */
  raPages: number;
  /** bdi io_pages (KernelOptions.ioPages). */
  readonly ioPages: number;
  /** Page reclaim, when on. */
  readonly reclaim: Reclaim | null;
  /** The swap device, when there is one. */
  readonly swap: SwapDevice | null;
  /** Page touches so far (the machine counts them): the clock of the reclaim-precision horizon. */
  touchClock = 0;
  private readonly inFlight: IoRequest[] = [];
  private readonly ioByFrame = new Map<number, IoRequest>();
  private nextMmId = 1;
  readonly mms = new Set<Mm>();
  readonly hooks: KernelHooks = { readCompleted: null, ptCacheRefilled: null, ptFrameAllocated: null, ioRequest: null };

  constructor(o: KernelOptions) {
    this.mem = o.mem;
    this.pv = o.pv;
    this.policy = o.policy;
    this.levels = o.levels ?? 4;
    this.raPages = o.raPages ?? 32;
    this.ioPages = o.ioPages ?? 1024;
    this.ledger = o.ledger ?? new CycleLedger();
    this.remote = o.remote ?? new RemoteClock();
    this.costs = new VmCosts(o.costs ?? resolveCosts(VM_COSTS));
    const pvs = [o.pv, ...(o.otherCpus ?? [])];
    this.cpus = pvs.map((pv, id) => new Cpu(id, this.ledger, pv, new MmuGather(this, null, false), pvs.length, this));
    this.cpu = this.cpus[0]!;
    this.tlbStates = this.cpus.map((c) => c.tlbState);
    this.catFault = this.ledger.id('guest.fault');
    this.catZap = this.ledger.id('guest.zap');
    this.catFork = this.ledger.id('guest.fork_copy');
    this.catIo = this.ledger.id('io.wait');
    this.catFlush = this.ledger.id('tlb.flush');
    this.catReclaim = this.ledger.id('reclaim.scan');
    this.frames = new FrameTable(o.frames ?? o.mem.frames, 1);
    this.pageCache = new PageCache(this.frames);
    this.blockDev = new BlockDevice(this.costs.ioRequest, this.costs.ioPage);
    const ioRequest = () => this.hooks.ioRequest?.();
    this.blockDev.onRequest = ioRequest;
    this.zeroPfn = this.frames.allocOrFail(0);
    this.frames.flags[this.zeroPfn] = this.frames.flags[this.zeroPfn]! | PG_ZERO | PG_UPTODATE;
    this.frames.refcount[this.zeroPfn] = 1;
    this.pv.kernelAccess(this.zeroPfn, 1); // cleared at boot
    this.swap =
      o.reclaim === true && (o.swapSlots ?? 0) > 0
        ? new SwapDevice(o.swapSlots!, this.costs.ioRequest, this.costs.ioPage)
        : null;
    if (this.swap !== null) this.swap.dev.onRequest = ioRequest;
    this.reclaim = o.reclaim === true ? new Reclaim(this, o.reclaimHorizon) : null;
  }

  charge(cat: number, cycles: number): void {
    this.ledger.charge(cat, cycles);
  }

  // The kernel reads its page tables directly (through its direct map), addressing them by guest
  // frame; the entries hold the frames the hardware uses, converted back with pv.pfnOf (pte_val).

  /** Entry number (PhysMem.ent[2e], mark[e]) of entry `idx` of the table at guest frame `table`. */
  entryAt(table: number, idx: number): number {
    return this.mem.entryIndex(this.pv.mfn(table), idx);
  }

  readLo(table: number, idx: number): number {
    return this.mem.ent[2 * this.entryAt(table, idx)]!;
  }

  readHi(table: number, idx: number): number {
    return this.mem.ent[2 * this.entryAt(table, idx) + 1]!;
  }

  /** Guest frame a present entry at `level` points to (pte_pfn / pmd_pfn through pte_val). */
  frameOf(level: number, lo: number, hi: number): number {
    return this.pv.pfnOf(entryPfn(level, lo, hi));
  }

  /** Cycles charged on another CPU's behalf (a flush IPI's handler): the scheduler moves them to its clock. */
  readonly remote: RemoteClock;
  /** The several-CPU model's counts (published with more than one CPU). */
  readonly smp = new SmpStats();
  /** Each page-table page's split PTL cache line, by frame (made by the several-CPU fault path). */
  readonly ptlLines = new Map<number, SharedLine>();

  /** Simulated time: the running CPU's clock. */
  now(): number {
    const c = this.remote.now;
    return c === null ? this.cpu.ledger.total() : c();
  }

  /**
   * Submit a read of pages [start, start + pages) of `inode`, already in the cache, locked. The
   * request remembers the address space of the CPU's last fault (for map-on-io).
   */
  submitRead(inode: Inode, start: number, pages: number): void {
    const doneAt = this.blockDev.submit(this.now(), pages);
    const req: IoRequest = { inode, start, pages, doneAt, mm: this.cpu.vmf.mm };
    this.inFlight.push(req);
    for (let i = start; i < start + pages; i++) this.ioByFrame.set(this.pageCache.lookup(inode, i), req);
    this.stats.ioRequests++;
    this.stats.ioPages += pages;
  }

  /** Complete every read done by now (end_page_read: uptodate, unlocked). */
  reapIo(): void {
    // The common case (nothing in flight) inline, the completion loop out of line.
    if (this.inFlight.length !== 0) this.reapDone();
  }

  private reapDone(): void {
    const now = this.now();
    for (let i = 0; i < this.inFlight.length;) {
      const r = this.inFlight[i]!;
      if (r.doneAt <= now) {
        this.completeIo(r);
        this.inFlight.splice(i, 1);
      } else i++;
    }
  }

  /** folio_lock(): wait for the read holding frame `pfn`, charging the wait to io.wait. */
  waitIo(pfn: number): void {
    const r = this.ioByFrame.get(pfn);
    if (r === undefined) return;
    const now = this.now();
    if (r.doneAt > now) this.charge(this.catIo, r.doneAt - now);
    this.completeIo(r);
    const i = this.inFlight.indexOf(r);
    if (i >= 0) this.inFlight.splice(i, 1);
  }

  /** A folio was added to the page cache by a read: count a refault if its slot had a shadow entry. */
  noteRead(inode: Inode, index: number, pfn: number): void {
    const r = this.reclaim;
    if (r === null || !inode.shadow.has(index)) return;
    if (r.refault(inode, index)) r.activateRefault(pfn);
  }

  private completeIo(r: IoRequest): void {
    const f = this.frames;
    for (let i = r.start; i < r.start + r.pages; i++) {
      const pfn = this.pageCache.lookup(r.inode, i);
      if (pfn < 0) continue;
      f.flags[pfn] = (f.flags[pfn]! | PG_UPTODATE) & ~PG_LOCKED;
      this.ioByFrame.delete(pfn);
    }
    const h = this.hooks.readCompleted;
    if (h !== null && r.mm !== null && this.mms.has(r.mm)) h(this, r.mm, r.inode, r.start, r.pages);
  }

  /** mm_alloc + pgd_alloc: a new address space with an empty top-level table. */
  newMm(): Mm {
    const root = this.allocPtFrame();
    this.pv.allocPt(this.levels, root, root);
    this.stats.ptAllocs++; // counted as exit_mmap counts its pgd_free in pt.frees
    this.charge(this.catFault, this.costs.ptAlloc);
    const mm = new Mm(this.nextMmId++, root);
    mm.pcid = 0;
    mm.tlb.nextTrim = this.now() + this.trimIntervalCycles; // init_new_context: jiffies + HZ
    this.mms.add(mm);
    return mm;
  }

  private initMm: Mm | null = null;

  /**
   * init_mm: the kernel's own address space for vmalloc mappings, pinned like any pgd (Xen pins
   * swapper_pg_dir at boot). It is not a process: its mappings have no rmap and it is not in `mms`.
   */
  kernelMm(): Mm {
    if (this.initMm === null) {
      this.initMm = this.newMm();
      this.initMm.isInitMm = true;
      this.mms.delete(this.initMm);
      this.pv.pgdPin(this.initMm.root);
    }
    return this.initMm;
  }

  /** The kernel address space, if one was made. */
  get kernelMmIfAny(): Mm | null {
    return this.initMm;
  }

  private readonly ptCache: number[] = [];

  /**
   * A frame for a page-table page: from the buddy allocator, or with the `ptCache` policy from a
   * cache of alias-free pages refilled `ptCache` at a time followed by hooks.ptCacheRefilled
   * (vm_unmap_aliases()).
   */
  allocPtFrame(): number {
    const f = this.frames;
    let pfn: number;
    if (this.policy.ptCache > 0) {
      if (this.ptCache.length === 0) {
        for (let i = 0; i < this.policy.ptCache; i++) {
          const p = f.allocOrFail(0);
          f.flags[p] = f.flags[p]! | PG_PTCACHE;
          this.ptCache.push(p);
        }
        this.stats.ptCacheRefills++;
        const h = this.hooks.ptCacheRefilled;
        if (h !== null) h();
      }
      pfn = this.ptCache.pop()!;
      f.flags[pfn] = f.flags[pfn]! & ~PG_PTCACHE;
    } else {
      pfn = f.allocOrFail(0);
    }
    f.flags[pfn] = f.flags[pfn]! | PG_PAGETABLE;
    f.refcount[pfn] = 1;
    this.pv.kernelAccess(pfn, 1); // pte_alloc_one() & co. hand out zeroed pages
    const seen = this.hooks.ptFrameAllocated;
    if (seen !== null) seen(pfn);
    return pfn;
  }

  /** Return a page-table page: to the cache while it has room (clean pages returned from tables), else freed. */
  freePtFrame(pfn: number): void {
    const f = this.frames;
    f.flags[pfn] = f.flags[pfn]! & ~PG_PAGETABLE;
    f.refcount[pfn] = 0;
    if (this.policy.ptCache > 0 && this.ptCache.length < this.policy.ptCache) {
      f.flags[pfn] = f.flags[pfn]! | PG_PTCACHE;
      this.ptCache.push(pfn);
      return;
    }
    f.free(pfn, 0);
  }

  /** Run on CPU `id` from now on: its state and its pvops backend are the kernel's current ones. */
  runOn(id: number): void {
    const cpu = this.cpus[id];
    if (cpu === undefined) throw new Error(`no CPU ${id}`);
    this.cpu = cpu;
    this.pv = cpu.pv;
  }

  /** switch_mm() on the current CPU. */
  switchMm(mm: Mm): void {
    this.cpu.switchMm(mm);
  }

  /** Allocate one order-0 page for anonymous use, charging allocation and zeroing. */
  allocAnonPage(zero: boolean): number {
    const pfn = this.frames.allocOrFail(0);
    this.stats.pagesAllocated++;
    this.charge(this.catFault, this.costs.pageAlloc + (zero ? this.costs.pageZero : 0));
    this.pv.kernelAccess(pfn, 1); // zeroed, or the destination of a copy
    return pfn;
  }
}
