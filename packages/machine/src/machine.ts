import {
  configError,
  Counters,
  CycleLedger,
  diffSnapshots,
  Prng,
  RemoteClock,
  type CostTable,
  type TallySnapshot,
} from '@pte/core';
import { ACCESS_FETCH, ACCESS_USER, ACCESS_WRITE, TRANSLATE_GP, type Mmu, type PhysMem } from '@pte/arch-x86';
import type { PvMmuOps } from '@pte/pvops';
import {
  assertInvariants,
  enterLazyTlb,
  FAULT_RETRY,
  handleMmFault,
  Kernel,
  leaveLazyTlb,
  MAX_CPUS,
  mapCompletedRead,
  populateByRead,
  populateByWrite,
  pteTableFor,
  Syscalls,
  vpnHi,
  vpnLo,
  Vmalloc,
  VM_EXEC,
  VM_READ,
  VM_WRITE,
  type Advice,
  type Inode,
  type KernelProfile,
  type MmapRequest,
  type Prot,
  type Mm,
  type Task,
  type FaultLockPolicy,
  type Vma,
  type VmapPolicy,
  type VmPolicy,
} from '@pte/vm';
import {
  AccessStream,
  validateWorkload,
  type PatternSpec,
  type Program,
  type ProtSpec,
  type Workload,
} from '@pte/workloads';
import type { XenAliasPolicy, XenPteWrite } from '@pte/xen';
import type { ShadowEra } from '@pte/kvm-shadow';
import { FAULT_FIXED_BY_HOST, type Platform, type PlatformName } from './platform.js';
import { createPlatform } from './platforms/create.js';
import { Scheduler } from './scheduler.js';
import { checkTlbsAgainstTables } from './tlb-check.js';
import {
  ChunkThread,
  FaultingThread,
  MapUnmapThread,
  ProtectThread,
  BrkThread,
  VmapThread,
  type ThreadHost,
  type VmapEra,
} from './thread-run.js';
import type { RunCostKey } from './costs.js';

export interface MachineOptions {
  readonly platform: PlatformName;
  readonly profile: KernelProfile;
  /** The profile's policy with the run's overrides applied. */
  readonly policy: VmPolicy;
  /** Guest memory in bytes. */
  readonly memBytes: number;
  readonly seed: number;
  readonly costs: CostTable<RunCostKey>;
  /** Run the invariant checkers after every operation (and make Xen refusals fatal). */
  readonly check?: boolean;
  /** Xen PV: how the guest writes PTEs of pinned tables outside lazy mode (default: the profile's). */
  readonly xenPteWrite?: XenPteWrite;
  /** Xen PV: what the guest does about stale vmap aliases before pinning (default `always`). */
  readonly xenAlias?: XenAliasPolicy;
  /** The vmap allocator's flushing (default: the profile's vmapMode). */
  readonly vmap?: VmapPolicy;
  /** KVM shadow paging era (default: the profile's). */
  readonly shadowEra?: ShadowEra;
  /** KVM shadow: the proposed deferred A/D mode (host keeps A/D, synced on lazy-mode entry). */
  readonly deferredAD?: boolean;
  /** The backing device's read_ahead_kb (default 128). */
  readonly readAheadKb?: number;
  /** Reclaim the page cache under memory pressure (default off: memory is sized to fit). */
  readonly reclaim?: boolean;
  /** Touches within which a refault counts as a premature eviction (default 4096). */
  readonly reclaimHorizon?: number;
  /** Swap device size in pages (with reclaim on): anonymous memory becomes reclaimable (default 0: no swap). */
  readonly swapPages?: number;
  /**
   * CPUs (1 to 31; default 1). Several get their own MMU and pvops backend (native and kvm-tdp
   * so far); nothing runs them in parallel yet: runOn() picks the CPU that runs.
   */
  readonly cpus?: number;
  /** KVM: the share of flush targets the host has preempted (vCPU overcommit; default 0). */
  readonly vcpuPreempted?: number;
  /** KVM: the guest uses the PV TLB flush (kvm_flush_tlb_multi; default: the profile's). */
  readonly pvTlbFlush?: boolean;
  /**
   * KVM TDP: the host has mapped all of guest memory in the EPT already, as for a guest that has
   * run a while (default true); false: a fresh guest, whose first touch of each guest-physical page
   * is an EPT violation.
   */
  readonly hostBacked?: boolean;
  /**
   * KVM shadow paging: the host backs guest memory with 2 MiB pages, so a guest 2 MiB mapping gets
   * one 2 MiB spte (kvm_mmu_hugepage_adjust) instead of a direct page of 4 KiB sptes (default false).
   */
  readonly hostHuge?: boolean;
}

export type AccessKind = 'read' | 'write' | 'fetch';

/** Machine.accessPage results besides a frame number. */
export const ACCESS_SEGV = -1;
export const ACCESS_NONCANONICAL = -2;

/** User-mode access kinds for accessPage and accessRun (the #PF error code's bits). */
export const USER_READ = ACCESS_USER;
export const USER_WRITE = ACCESS_USER | ACCESS_WRITE;
export const USER_FETCH = ACCESS_USER | ACCESS_FETCH;

/** One thread of runThreads: the task (a thread of a process), its CPU, and what it touches. */
export interface ThreadRun {
  readonly task: Task;
  readonly cpu: number;
  readonly range: PageRange;
  readonly pattern: PatternSpec;
  readonly kind: AccessKind;
}

/**
 * A thread of runThreads that maps `pages` anonymous pages (MAP_POPULATE) and unmaps them,
 * `rounds` times or, without a count, until the touching threads are done: a writer of mmap_lock.
 */
export interface MapUnmapRun {
  readonly task: Task;
  readonly cpu: number;
  readonly mapUnmap: { readonly pages: number; readonly rounds?: number };
}

/** A thread of runThreads that maps `pages` frames into the kernel, touches and unmaps them, `rounds` times. */
export interface VmapRun {
  readonly cpu: number;
  readonly vmap: { readonly era: VmapEra; readonly pages: number; readonly rounds: number };
}

/** A thread of runThreads that maps a chunk of `pages` anonymous pages, writes it and unmaps it, `rounds` times (ebizzy -mT). */
export interface ChunkRun {
  readonly task: Task;
  readonly cpu: number;
  readonly chunks: { readonly pages: number; readonly rounds: number };
}

/**
 * A thread of runThreads that maps `pages` anonymous pages once, then writes them and mprotects
 * them read-only and back, until the touching threads are done: the mprotect writer of mmap_lock.
 */
export interface ProtectRun {
  readonly task: Task;
  readonly cpu: number;
  readonly protect: { readonly pages: number };
}

/**
 * A thread of runThreads that moves its process's break up by `pages` once, then up by `pages`
 * more, writes them and moves it back, until the touching threads are done: the brk writer.
 */
export interface BrkRun {
  readonly task: Task;
  readonly cpu: number;
  readonly brk: { readonly pages: number };
}

export type ThreadSpec = ThreadRun | MapUnmapRun | VmapRun | ChunkRun | ProtectRun | BrkRun;

/** Pages [start, start + pages) of an address space: a VMA, or a named region of a program. */
export interface PageRange {
  readonly start: number;
  readonly pages: number;
}

const PROT: Readonly<Record<ProtSpec, number>> = {
  r: VM_READ,
  rw: VM_READ | VM_WRITE,
  rx: VM_READ | VM_EXEC,
  rwx: VM_READ | VM_WRITE | VM_EXEC,
};

/**
 * One simulated computer: a CPU (MMU with TLBs), a platform backend behind pvops, the guest
 * kernel, and the workload driver. The access loop is the hardware path: translate, and on a page
 * fault, the guest kernel's handler, then retry (DESIGN.md "One access, end to end").
 */
export class Machine {
  /** The run's clock: cycles by category, and the phases a scenario measures (CycleLedger.definePhase). */
  readonly ledger = new CycleLedger();
  /** The CPUs' clocks as the kernel and the platform see them (runThreads connects its scheduler). */
  private readonly clocks = new RemoteClock();
  /** Cycles charged on other CPUs' behalf outside runThreads (flush IPI handlers) since startMeasurement. */
  private remoteCycles = 0;
  private readonly addRemote = (_cpu: number, cycles: number): void => {
    this.remoteCycles += cycles;
  };
  /** @internal The layers below: package tests reach in; scenarios use the methods below. */
  readonly mem: PhysMem;
  /** @internal The running CPU's MMU (runOn switches it). */
  mmu: Mmu;
  /** @internal The running CPU's pvops backend. */
  pv: PvMmuOps;
  /** @internal */
  readonly kernel: Kernel;
  /** @internal */
  readonly sys: Syscalls;
  /** @internal What lies under the guest kernel: memory, MMU, pvops backend, fault entry (platforms/*). */
  readonly platform: Platform;
  /** @internal The touch patterns' random stream. */
  readonly prng: Prng;
  private readonly check: boolean;
  /** The guest's vmap allocator, once a scenario asked for it (vmalloc()). */
  private vmap: Vmalloc | null = null;
  private baseCycles: TallySnapshot = {};
  private baseCounters: TallySnapshot = {};
  /** Workload figures. */
  touches = 0;
  accesses = 0;
  segv = 0;
  private peakRss = 0;
  /** runThreads ran: the several-CPU counters are published even with one CPU (its locks were taken). */
  private ranThreads = false;
  private sampledRss = 0;

  constructor(readonly opts: MachineOptions) {
    const frames = Math.floor(opts.memBytes / 4096);
    const costs = opts.costs;
    const platform = createPlatform(opts.platform, {
      frames,
      seed: opts.seed,
      ledger: this.ledger,
      costs,
      profile: opts.profile,
      check: opts.check ?? false,
      xenPteWrite: opts.xenPteWrite,
      xenAlias: opts.xenAlias,
      shadowEra: opts.shadowEra,
      deferredAD: opts.deferredAD,
      cpus: checkCpus(opts.cpus ?? 1),
      clocks: this.clocks,
      vcpuPreempted: opts.vcpuPreempted ?? 0,
      pvTlbFlush: opts.pvTlbFlush ?? opts.profile.hasPvTlbFlush,
      hostBacked: opts.hostBacked ?? true,
      hostHuge: opts.hostHuge ?? false,
    });
    this.platform = platform;
    this.mem = platform.mem;
    this.mmu = platform.mmu;
    this.pv = platform.pv;
    const policy = platform.limitPolicy(opts.policy);
    this.kernel = new Kernel({
      mem: this.mem,
      frames,
      pv: this.pv,
      otherCpus: platform.cpus.slice(1).map((c) => c.pv),
      policy,
      ledger: this.ledger,
      costs,
      raPages: Math.floor((opts.readAheadKb ?? 128) / 4),
      reclaim: opts.reclaim ?? false,
      ...(opts.reclaimHorizon !== undefined ? { reclaimHorizon: opts.reclaimHorizon } : {}),
      ...(opts.swapPages !== undefined ? { swapSlots: opts.swapPages } : {}),
      remote: this.clocks,
    });
    if (policy.mapOnIoComplete) this.kernel.hooks.readCompleted = mapCompletedRead;
    if (platform.ioRequest !== undefined) this.kernel.hooks.ioRequest = () => platform.ioRequest!();
    this.sys = new Syscalls(this.kernel);
    this.prng = new Prng(opts.seed, 'machine');
    this.check = opts.check ?? false;
    this.clocks.sink = this.addRemote;
  }

  /** Start counting: cycles and counters before this point (setup) are left out of the result. */
  startMeasurement(): void {
    this.remoteCycles = 0;
    this.baseCycles = this.ledger.snapshot();
    this.baseCounters = this.counterSnapshot();
    this.touches = 0;
    this.accesses = 0;
  }

  /** Cycles by category since startMeasurement(). */
  measuredCycles(): TallySnapshot {
    const d = diffSnapshots(this.baseCycles, this.ledger.snapshot());
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(d)) out[k] = v;
    return out;
  }

  /**
   * Of measuredCycles(), those the CPU that ran charged on other CPUs' behalf (the handlers of the
   * flush IPIs it sent, Xen's or KVM's flushes of other vCPUs), when no scheduler ran the CPUs
   * (runThreads puts them on those CPUs' clocks instead).
   */
  measuredOtherCpuCycles(): number {
    return this.remoteCycles;
  }

  /** Counters since startMeasurement(). */
  measuredCounters(): TallySnapshot {
    return diffSnapshots(this.baseCounters, this.counterSnapshot());
  }

  private counterSnapshot(): TallySnapshot {
    const c = new Counters();
    for (const cpu of this.platform.cpus) cpu.mmu.addCountersTo(c);
    this.kernel.stats.addCountersTo(c);
    for (const cpu of this.platform.cpus) c.add(c.id('pte.prefaulted_used'), cpu.mmu.walker.markedUses);
    for (const cpu of this.platform.cpus) cpu.pv.addCountersTo(c);
    this.vmap?.addCountersTo(c);
    this.kernel.reclaim?.addCountersTo(c);
    this.platform.addCountersTo(c);
    if (this.platform.cpus.length > 1 || this.ranThreads) {
      let ipis = 0;
      for (const cpu of this.platform.cpus) ipis += cpu.pv.ipisSent;
      this.kernel.smp.addCountersTo(c, ipis);
    }
    c.add(c.id('workload.touches'), this.touches);
    c.add(c.id('workload.accesses'), this.accesses);
    c.add(c.id('workload.segv'), this.segv);
    return c.snapshot();
  }

  /** The guest's vmap allocator, made on first use with the run's vmap policy. */
  vmalloc(): Vmalloc {
    if (this.vmap !== null) return this.vmap;
    const v = new Vmalloc(
      this.kernel,
      this.opts.vmap ?? { mode: this.opts.profile.vmapMode, unmapAtPurge: false, nrCpus: 4 },
    );
    for (const cpu of this.platform.cpus) cpu.pv.vmapAliases = v;
    this.kernel.hooks.ptCacheRefilled = () => v.unmapAliases();
    this.kernel.hooks.ptFrameAllocated = (pfn) => v.notePtFrame(pfn);
    this.vmap = v;
    return v;
  }

  // ---- Processes and files: the system calls a scenario's programs make (the kernel's own paths).

  /** A new process with an empty address space. */
  spawn(): Task {
    const t = this.sys.spawn();
    this.verify('after spawn');
    return t;
  }

  /** mmap(2): map `req.pages` pages of a file (or anonymous memory); returns the new VMA. */
  mmap(task: Task, req: MmapRequest): Vma {
    return this.sys.mmap(task, req);
  }

  /** munmap(2) of pages [start, start + pages). */
  munmap(task: Task, start: number, pages: number): void {
    this.sys.munmap(task, start, pages);
  }

  /** mprotect(2) of pages [start, start + pages) to `prot` (VM_READ | VM_WRITE | VM_EXEC). */
  mprotect(task: Task, start: number, pages: number, prot: Prot): void {
    this.sys.mprotect(task, start, pages, prot);
  }

  /** brk(2): move `task`'s program break to page `newBrk`; returns the break (unchanged if refused). */
  brk(task: Task, newBrk: number): number {
    return this.sys.brk(task, newBrk);
  }

  /** madvise(2) of pages [start, start + pages). */
  madvise(task: Task, start: number, pages: number, advice: Advice): void {
    this.sys.madvise(task, start, pages, advice);
  }

  /** pthread_create (clone with CLONE_VM): a thread sharing `task`'s address space. */
  spawnThread(task: Task): Task {
    return this.sys.spawnThread(task);
  }

  /** fork(2): the child shares the parent's pages copy-on-write (dup_mmap). */
  fork(parent: Task): Task {
    return this.sys.fork(parent);
  }

  /** execve(2): the task's address space is torn down and replaced by an empty one (exec_mmap). */
  exec(task: Task): void {
    this.sys.exec(task);
  }

  /** exit(2): the address space is torn down (exit_mmap → zap_pte_range). */
  exit(task: Task): void {
    this.sys.exit(task);
  }

  /** A file of `bytes` bytes on the block device, nothing of it in the page cache yet. */
  createFile(name: string, bytes: number): Inode {
    return this.kernel.pageCache.createFile(name, bytes);
  }

  /**
   * Fill the page cache by write(2) in calls of `chunkPages` pages: folios up to `maxOrder`
   * ('max': the profile's largest page-cache folio), no device reads.
   */
  writeFile(file: Inode, chunkPages: number, maxOrder: number | 'max'): void {
    populateByWrite(this.kernel, file, chunkPages, maxOrder === 'max' ? this.kernel.policy.maxFolioOrder : maxOrder);
  }

  /** Fill the page cache by read(2) in calls of `chunkPages` pages (synchronous readahead, device reads). */
  readFile(file: Inode, chunkPages: number): void {
    populateByRead(this.kernel, file, chunkPages);
  }

  /** Wait for every read in flight on `file` (folio_wait_locked on each cached page, in index order). */
  waitFileIo(file: Inode): void {
    const k = this.kernel;
    for (let index = 0; index < file.pages; index++) {
      const pfn = k.pageCache.lookup(file, index);
      if (pfn >= 0) k.waitIo(pfn);
    }
  }

  /** Is page `index` of `file` in the page cache? */
  isCached(file: Inode, index: number): boolean {
    return this.kernel.pageCache.lookup(file, index) >= 0;
  }

  /**
   * Run `fn` inside one lazy MMU section of the guest (lazy_mmu_mode_enable/disable, as zap,
   * mprotect and reclaim's scan do). With nothing in it, what entering costs the platform: with
   * the proposed deferred A/D mode on KVM shadow, the host's accessed bits are fetched.
   */
  lazyMmuSection(fn: () => void = () => {}): void {
    this.pv.lazyEnter();
    try {
      fn();
    } finally {
      this.pv.lazyLeave();
    }
  }

  // ---- Reading the page tables and counters (observation only: charges nothing).

  /**
   * The low half of the PTE mapping page `vpn` of `task` (flags and frame bits 0-19: P, RW, A,
   * D …), 0 when no PTE table covers it (not mapped, or mapped by a PMD leaf).
   */
  pteLow(task: Task, vpn: number): number {
    const k = this.kernel;
    const pt = pteTableFor(k, task.mm, vpn, false);
    return pt < 0 ? 0 : this.mem.ent[2 * k.entryAt(pt, vpn % 512)]!;
  }

  /** Does the PTE of page `vpn` still carry the prefault mark (mapped ahead, never used since)? */
  isPrefaultUnused(task: Task, vpn: number): boolean {
    const k = this.kernel;
    const pt = pteTableFor(k, task.mm, vpn, false);
    return pt >= 0 && this.mem.mark[k.entryAt(pt, vpn % 512)] !== 0;
  }

  /** A counter's value now (0 if this platform has no such counter), e.g. `reclaim.refaults`. */
  counter(name: string): number {
    return this.counterSnapshot()[name] ?? 0;
  }

  /**
   * Touch the pages of `range` in the order `pattern` gives (page indices relative to its start),
   * `runs` accesses per touch. Runs on `task`'s address space. One touch is one tick of the
   * kernel's touch clock (reclaim's notion of time), whatever `runs` is; a trace's accessRun ticks
   * per access, as the trace records them.
   */
  touch(task: Task, range: PageRange, pattern: PatternSpec, kind: AccessKind, runs: number): void {
    const k = this.kernel;
    k.switchMm(task.mm);
    const access = ACCESS_USER | (kind === 'write' ? ACCESS_WRITE : kind === 'fetch' ? ACCESS_FETCH : 0);
    const stream = new AccessStream(pattern, range.pages, this.prng);
    const buf = new Uint32Array(4096);
    const mm = task.mm;
    const base = range.start;
    let n: number;
    while ((n = stream.fill(buf)) > 0) {
      for (let i = 0; i < n; i++) {
        const vpn = base + buf[i]!;
        // A touch that ends in SIGSEGV stops there: the program's access does not go on.
        if (this.accessRepeated(mm, vpn, access, runs) === ACCESS_NONCANONICAL) {
          throw new Error(`non-canonical address for page ${vpn}`);
        }
      }
      this.touches += n;
      k.touchClock += n;
      this.accesses += n * runs;
    }
    this.noteRss();
    this.verify('after touch');
  }

  /** Run on CPU `id` from now on: its MMU and pvops backend, and the kernel's CPU state. */
  runOn(id: number): void {
    const cpu = this.platform.cpus[id];
    if (cpu === undefined) throw new Error(`no CPU ${id}`);
    this.kernel.runOn(id);
    this.platform.runOn?.(id);
    this.mmu = cpu.mmu;
    this.pv = cpu.pv;
  }

  /**
   * Run threads on their CPUs at once, in virtual time (Scheduler): each touching thread touches
   * the pages of its range in its pattern's order, one page per step, its faults taking what
   * `faultLock` says (fault-lock.ts: mmap_lock, the VMA's lock, or nothing for a speculative
   * fault); a map-unmap thread maps and unmaps under mmap_lock for write. The CPU with the
   * smallest clock goes next. Returns each CPU's clock at the end; the ledger holds the sum of
   * their cycles, waiting included (`lock.*.wait`), and a flush IPI's handler is charged to the
   * CPU that took it.
   */
  runThreads(threads: readonly ThreadSpec[], faultLock: FaultLockPolicy = 'mmap_lock'): Float64Array {
    const k = this.kernel;
    this.ranThreads = true;
    const sched = new Scheduler(
      this.platform.cpus.length,
      this.ledger,
      (cpu) => this.runOn(cpu),
      (cpu) => enterLazyTlb(k.cpus[cpu]!.tlbState),
    );
    const host: ThreadHost = {
      m: this,
      k,
      sched,
      faultLock,
      catMmapWait: this.ledger.id('lock.mmap_lock.wait'),
      catVmaWait: this.ledger.id('lock.vma.wait'),
      wake: [],
      waitCat: threads.map(() => -1),
      faultersLeft: threads.filter((t) => 'range' in t).length,
      catWalk: this.ledger.id('tlb.walk'),
      walkRef: this.opts.costs['tlb.walk_ref'],
    };
    threads.forEach((t, id) => {
      if ('mapUnmap' in t) {
        sched.add(new MapUnmapThread(host, id, t.cpu, t.task, t.mapUnmap.pages, t.mapUnmap.rounds ?? -1));
        return;
      }
      if ('brk' in t) {
        sched.add(new BrkThread(host, id, t.cpu, t.task, t.brk.pages));
        return;
      }
      if ('protect' in t) {
        sched.add(new ProtectThread(host, id, t.cpu, t.task, t.protect.pages));
        return;
      }
      if ('chunks' in t) {
        sched.add(new ChunkThread(host, id, t.cpu, t.task, t.chunks.pages, t.chunks.rounds, this.opts.seed));
        return;
      }
      if ('vmap' in t) {
        sched.add(new VmapThread(host, id, t.cpu, t.vmap.era, t.vmap.pages, t.vmap.rounds));
        return;
      }
      const access = ACCESS_USER | (t.kind === 'write' ? ACCESS_WRITE : t.kind === 'fetch' ? ACCESS_FETCH : 0);
      sched.add(
        new FaultingThread(host, id, t.cpu, t.task, t.range.start, t.range.pages, t.pattern, access, this.opts.seed),
      );
    });
    const clocks = this.clocks;
    clocks.now = () => sched.now();
    clocks.sink = (cpu, cycles) => sched.chargeRemote(cpu, cycles);
    try {
      sched.run();
    } finally {
      clocks.now = null;
      clocks.sink = this.addRemote;
      // The CPUs come back to the mm they idled on (switch_mm's was_lazy): a flush that skipped
      // one while it idled leaves it a full flush to do now.
      for (const cpu of k.cpus) {
        if (!leaveLazyTlb(cpu.tlbState)) continue;
        this.runOn(cpu.id);
        const t0 = this.ledger.total();
        this.pv.flushTlbAll();
        sched.clock[cpu.id] += this.ledger.total() - t0;
      }
      this.runOn(0);
    }
    this.noteRss();
    this.verify('after threads');
    return sched.clock;
  }

  /** Load `task`'s address space on the CPU (switch_mm). */
  switchTo(task: Task): void {
    this.kernel.switchMm(task.mm);
  }

  /**
   * `count` consecutive accesses of page `vpn` by `task` (loaded), each one touch, as a trace
   * replays them: the first through accessPage; if it reached a frame the rest are first-level
   * TLB hits (Mmu.translateRun), else each goes through accessPage again. Returns the first
   * access's result (a frame, ACCESS_SEGV or ACCESS_NONCANONICAL).
   */
  accessRun(task: Task, vpn: number, access: number, count: number): number {
    const k = this.kernel;
    const mm = task.mm;
    const first = this.accessRepeated(mm, vpn, access, count);
    if (first === ACCESS_NONCANONICAL) return first;
    if (first >= 0) {
      k.touchClock += count;
    } else {
      // Each access of a trace is one the program made: after a signal, the next faults again.
      k.touchClock++;
      for (let i = 1; i < count; i++) {
        this.accessPage(mm, vpn, access);
        k.touchClock++;
      }
    }
    this.touches += count;
    this.accesses += count;
    return first;
  }

  /**
   * The one access loop of touch and accessRun: `count` accesses of page `vpn`, the first through
   * accessPage; if it reached a frame the rest are first-level TLB hits (Mmu.translateRun, which
   * counts them as translate() would). Returns the first access's result.
   */
  private accessRepeated(mm: Mm, vpn: number, access: number, count: number): number {
    const pfn = this.accessPage(mm, vpn, access);
    if (count > 1 && pfn >= 0) this.mmu.translateRun(vpnHi(vpn), vpnLo(vpn), access, count - 1);
    return pfn;
  }

  /**
   * One access to page `vpn` of `mm` (already loaded) through the hardware path, exactly as the CPU
   * and the platform see it: translate; on a #PF, KVM shadow fixes its tables or injects the fault,
   * the guest's handler (handle_mm_fault) runs, and the access retries. Returns the frame reached,
   * ACCESS_SEGV when the process would get a signal (counted in `segv`), or ACCESS_NONCANONICAL.
   */
  accessPage(mm: Mm, vpn: number, access: number): number {
    const pfn = this.mmu.translate(vpnHi(vpn), vpnLo(vpn), access);
    return pfn >= 0 ? pfn : this.pageFault(mm, vpn, access, pfn);
  }

  /**
   * accessPage() once the first translation did not reach a frame (`pfn`): the #PF, the platform's
   * exit, the guest's handler and the retries. Out of line, so that the translation (a TLB hit or a
   * walk) stays small enough to inline into the access loops without the whole fault path.
   */
  private pageFault(mm: Mm, vpn: number, access: number, first: number): number {
    const mmu = this.mmu;
    const platform = this.platform;
    const hi = vpnHi(vpn);
    const lo = vpnLo(vpn);
    let pfn = first;
    let tries = 0;
    while (pfn < 0) {
      if (pfn === TRANSLATE_GP) return ACCESS_NONCANONICAL;
      // The platform sees the #PF first (KVM shadow: an exit that may fix its tables).
      const code = platform.pageFaultExit(hi, lo, access, mmu.faultCode);
      if (code === FAULT_FIXED_BY_HOST) {
        if (++tries > 8) throw new Error(`page ${vpn} still faults on the shadow tables after ${tries} exits`);
        pfn = mmu.translate(hi, lo, access);
        continue;
      }
      this.pv.onPageFault();
      if (handleMmFault(this.kernel, mm, vpn, code | ACCESS_USER) !== FAULT_RETRY) {
        this.segv++;
        return ACCESS_SEGV;
      }
      if (++tries > 12) {
        const why = platform.unfixableFault(vpn);
        if (why !== null) throw why;
        throw new Error(`page ${vpn} still faults after ${tries} retries`);
      }
      pfn = mmu.translate(hi, lo, access);
    }
    return pfn;
  }

  /** Record RSS now (memory.rss_pages is the last sample; peak is the highest per-process RSS). */
  noteRss(): void {
    let total = 0;
    for (const mm of this.kernel.mms) {
      total += mm.rssPages;
      if (mm.hiwaterRss > this.peakRss) this.peakRss = mm.hiwaterRss;
    }
    this.sampledRss = total;
  }

  get rssPages(): number {
    return this.sampledRss;
  }

  get peakRssPages(): number {
    return this.peakRss;
  }

  /**
   * Run a workload of process programs: create its files and fill their page caches (setup, not
   * measured), then measure from the first process's start to the last exit. A forked child runs
   * its program to completion while its parent waits (a shell or make waiting for a command).
   */
  runWorkload(w: Workload): void {
    validateWorkload(w);
    const files = new Map<string, Inode>();
    for (const f of w.files) {
      const inode = this.createFile(f.name, f.size);
      if (f.cache === 'written') this.writeFile(inode, Math.max(1, f.ioChunk / 4096), 'max');
      if (f.cache === 'readback') this.readFile(inode, Math.max(1, f.ioChunk / 4096));
      files.set(f.name, inode);
    }
    this.startMeasurement();
    this.runProgram(this.spawn(), w.main, new Map(), files);
  }

  private runProgram(
    task: Task,
    program: Program,
    inherited: ReadonlyMap<string, PageRange>,
    files: ReadonlyMap<string, Inode>,
  ): void {
    let regions = new Map(inherited);
    const region = (name: string): PageRange => regions.get(name)!;
    for (const op of program.ops) {
      switch (op.op) {
        case 'mmap': {
          const vma = this.sys.mmap(task, {
            pages: op.size / 4096,
            prot: PROT[op.prot],
            shared: op.shared,
            file: op.file === null ? null : files.get(op.file)!,
            pgoff: (op.offset ?? 0) / 4096,
          });
          regions.set(op.region, { start: vma.start, pages: vma.pages });
          break;
        }
        case 'touch': {
          const r = region(op.region);
          const first = op.firstPage ?? 0;
          const pages = Math.min(op.pages ?? r.pages - first, r.pages - first);
          this.touch(task, { start: r.start + first, pages }, op.pattern, op.access, op.runs ?? 1);
          break;
        }
        case 'munmap': {
          const r = region(op.region);
          this.sys.munmap(task, r.start, r.pages);
          regions.delete(op.region);
          break;
        }
        case 'mprotect': {
          const r = region(op.region);
          this.sys.mprotect(task, r.start, r.pages, PROT[op.prot]);
          break;
        }
        case 'madvise': {
          const r = region(op.region);
          this.sys.madvise(task, r.start, r.pages, op.advice);
          break;
        }
        case 'fork': {
          this.kernel.switchMm(task.mm);
          const child = this.sys.fork(task);
          this.runProgram(child, op.child, regions, files);
          this.kernel.switchMm(task.mm);
          break;
        }
        case 'exec':
          this.sys.exec(task);
          regions = new Map();
          break;
        case 'exit':
          this.noteRss();
          this.sys.exit(task);
          break;
      }
      this.verify(`after ${program.name} ${op.op}`);
    }
  }

  /** Run the invariant checkers if --check is on. */
  verify(where: string): void {
    if (!this.check) return;
    assertInvariants(this.kernel, where);
    this.platform.verify(where);
    if (this.platform.cpus.length > 1) {
      const problem = checkTlbsAgainstTables(this.kernel, this.platform);
      if (problem !== null) throw new Error(`cross-CPU check ${where}: ${problem}`);
    }
  }
}

/** The CPUs a machine can have: the flush state's mask holds 31 (MAX_CPUS). */
function checkCpus(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_CPUS) throw configError(`cpus: ${n} is not 1..${MAX_CPUS}`);
  return n;
}
