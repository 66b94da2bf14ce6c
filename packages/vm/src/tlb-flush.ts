/**
 * arch/x86/mm/tlb.c: who flushes what when the guest changes a user mapping on several CPUs
 * (docs/smp-notes.md §5), as native_flush_tlb_multi decides it natively and under KVM (whose
 * kvm_flush_tlb_multi drops the preempted vCPUs, then calls it). Xen PV replaces that function:
 * xen_flush_tlb_multi flushes the whole mask, itself included, with one MMUEXT_TLB_FLUSH_MULTI
 * (MMUEXT_INVLPG_MULTI for one page) and no per-CPU decision; that path comes with the platform
 * delivery. The platform prices what is decided here.
 *
 * Modelled, as in flush_tlb_mm_range → native_flush_tlb_multi → flush_tlb_func, in the two
 * generations the profiles need (VmPolicy.lazyMmCpumask):
 * - a range of more than tlb_single_page_flush_ceiling (33) strides is flushed whole;
 * - every flush bumps the mm's TLB generation; a CPU brings its context up to the mm's generation
 *   with INVLPGs only when it is exactly one flush behind and the flush is a range, else with a
 *   full flush (with flushes applied at once, as here, a CPU is never further behind);
 * - 6.14+ (mm_cpumask updated lazily, 209954cbc7d0): the targets are the CPUs in mm_cpumask: with
 *   page tables freed, all of them (lazy ones too, which switch to init_mm, and those running
 *   another mm, which leave the mask); otherwise a lazy CPU is skipped ("flushed at the next
 *   context switch"), and a CPU that runs another mm is skipped unless the once-a-second trim is
 *   due; a CPU reached while it runs another mm leaves the mask (it does not leave it when it
 *   switches away);
 * - up to 4.18 (2.6.27, 3.15): switch_mm() clears the previous mm's bit, so the mask holds the
 *   CPUs running the mm, lazy ones included; every one of them takes the IPI, and a lazy one
 *   leaves the mm (leave_mm: off the mask, CR3 to swapper_pg_dir), so it takes at most one.
 * CPU ids are bits of a 32-bit mask: at most 31 CPUs.
 */

/** tlb_single_page_flush_ceiling: strides flushed one by one at most (a profile may set another: KernelProfile). */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

/** The x86 mm context's flush state (mm->context.tlb_gen, mm_cpumask, next_trim_cpumask). */
export class MmTlbState {
  /** mm_cpumask: bit n set while CPU n may hold the mm's translations. */
  cpumask = 0;
  tlbGen = 0;
  /**
   * The clock (cycles) after which the next flush also trims the mask: init_new_context() sets
   * jiffies + HZ, so an mm's first second never trims.
   */
  nextTrim: number;
  constructor(nextTrim: number) {
    this.nextTrim = nextTrim;
  }
}

/** The most CPUs the flush state holds (bits of a 32-bit mask). */
export const MAX_CPUS = 31;

/** A CPU's TLB state (cpu_tlbstate): the mm it has loaded, lazy or not, and how current its context is. */
export class CpuTlbState {
  /** The loaded user mm, or null for init_mm. */
  loaded: MmTlbState | null = null;
  /** cpu_tlbstate_shared.is_lazy: a kernel thread runs on the previous mm. */
  lazy = false;
  /** ctxs[asid].tlb_gen of the loaded mm. */
  localGen = 0;
  constructor(readonly id: number) {
    if (!(id >= 0 && id < MAX_CPUS)) throw new Error(`CPU ${id}: the flush state holds CPUs 0..${MAX_CPUS - 1}`);
  }
}

/** What one CPU does for a flush. */
export const FLUSH_NONE = 0;
/** INVLPG of each stride of the range. */
export const FLUSH_RANGE = 1;
/** A full flush of the mm's context (CR3 rewrite). */
export const FLUSH_FULL = 2;
/** It runs another mm: it leaves mm_cpumask and flushes nothing. */
export const FLUSH_LEAVE_MASK = 3;
/** Lazy, with page tables freed: it switches to init_mm (switch_mm_irqs_off(NULL, &init_mm)). */
export const FLUSH_LAZY_SWITCH = 4;

/**
 * What a flush reads from its kernel: the running CPU's time and HZ in the same unit (the mask
 * trim), and which generation of mm_cpumask handling it has (VmPolicy.lazyMmCpumask).
 */
export interface FlushEnv {
  now(): number;
  readonly trimIntervalCycles: number;
  readonly lazyMmCpumask: boolean;
}

/**
 * flush_tlb_info: one flush, asked for (set()) and decided (flushTlbMmRange). One per CPU, reused
 * like the kernel's per-CPU flush_tlb_info, so the flush path allocates nothing.
 */
export class FlushTlbInfo {
  /** Strides in the range; 0 for the whole mm (TLB_FLUSH_ALL), as a range above the ceiling becomes. */
  strides = 0;
  freedTables = false;
  /** tlb_single_page_flush_ceiling of the running kernel. */
  ceiling = TLB_SINGLE_PAGE_FLUSH_CEILING;
  /** Per CPU (index = id): FLUSH_* for the CPUs that run flush_tlb_func, FLUSH_NONE for the others. */
  readonly action: Uint8Array;
  /** CPUs other than the initiator that get the IPI (or the hypercall's mask bit), as a mask and a count. */
  ipiMask = 0;
  remote = 0;
  constructor(
    nrCpus: number,
    readonly env: FlushEnv,
  ) {
    this.action = new Uint8Array(nrCpus);
  }

  /** get_flush_tlb_info(): `strides` strides (0: the whole mm), page tables freed or not, under `ceiling`. */
  set(strides: number, freedTables: boolean, ceiling: number): this {
    this.strides = strides;
    this.freedTables = freedTables;
    this.ceiling = ceiling;
    return this;
  }
}

/**
 * flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables) from CPU `self`, as `info` asks
 * (`strides` is (end − start) >> stride_shift, or 0 for the whole mm). Updates the mm's
 * generation, the CPUs' contexts and the mask; fills `info` with what each CPU does.
 */
export function flushTlbMmRange(
  mm: MmTlbState,
  cpus: readonly CpuTlbState[],
  self: number,
  info: FlushTlbInfo,
): FlushTlbInfo {
  const newGen = ++mm.tlbGen;
  const strides = info.strides;
  const freedTables = info.freedTables;
  const full = strides === 0 || strides > info.ceiling;
  const action = info.action;
  action.fill(FLUSH_NONE);
  let remote = 0;
  let ipiMask = 0;
  const others = mm.cpumask & ~(1 << self);
  if (others !== 0) {
    const lazyMask = info.env.lazyMmCpumask;
    // should_trim_cpumask(): at most once per HZ per mm (time_after: strictly later). Only a
    // flush that may reach another CPU reads the clock.
    let trim = false;
    if (lazyMask) {
      const now = info.env.now();
      if (now > mm.nextTrim) {
        mm.nextTrim = now + info.env.trimIntervalCycles;
        trim = true;
      }
    }
    for (const cpu of cpus) {
      if ((mm.cpumask & (1 << cpu.id)) === 0) continue;
      // Up to 4.18 native_flush_tlb_others() IPIs the whole mask (should_flush_tlb came in 4.19).
      if (lazyMask && !freedTables && !shouldFlushTlb(cpu, mm, trim)) continue;
      action[cpu.id] = flushTlbFunc(cpu, mm, newGen, full, lazyMask);
      if (cpu.id !== self) {
        remote++;
        ipiMask |= 1 << cpu.id; // it takes the interrupt even if its flush_tlb_func finds nothing to do
      }
    }
  } else if (cpus[self]!.loaded === mm) {
    action[self] = flushTlbFunc(cpus[self]!, mm, newGen, full, true);
  }
  info.strides = full ? 0 : strides;
  info.remote = remote;
  info.ipiMask = ipiMask;
  return info;
}

/**
 * switch_mm_irqs_off() for the flush state: `cpu` loads `next` (null: init_mm), joins its mask,
 * and has its context brought up to the mm's generation (a flush on load if it was stale). Without
 * `lazyMask` (kernels up to 4.18) it also leaves the previous mm's mask.
 */
export function switchMmTlb(cpu: CpuTlbState, next: MmTlbState | null, lazyMask: boolean): void {
  const prev = cpu.loaded;
  if (!lazyMask && prev !== null && prev !== next) prev.cpumask &= ~(1 << cpu.id);
  cpu.lazy = false;
  cpu.loaded = next;
  if (next === null) return;
  next.cpumask |= 1 << cpu.id;
  cpu.localGen = next.tlbGen;
}

/**
 * enter_lazy_tlb(): the CPU goes idle (or runs a kernel thread) on the mm it has loaded; flushes
 * skip it (should_flush_tlb) until it loads an mm again, unless page tables are freed.
 */
export function enterLazyTlb(cpu: CpuTlbState): void {
  if (cpu.loaded !== null) cpu.lazy = true;
}

/**
 * switch_mm_irqs_off() back to the mm a lazy CPU kept (was_lazy): it runs the mm again, and its
 * TLB needs a full flush if a flush skipped it meanwhile (its context's generation is behind).
 * Returns whether it must flush.
 */
export function leaveLazyTlb(cpu: CpuTlbState): boolean {
  if (!cpu.lazy) return false;
  cpu.lazy = false;
  const mm = cpu.loaded;
  if (mm === null || cpu.localGen === mm.tlbGen) return false;
  cpu.localGen = mm.tlbGen;
  return true;
}

/** should_flush_tlb(): skip lazy CPUs; flush the mm's own CPUs; reach the others only to trim. */
function shouldFlushTlb(cpu: CpuTlbState, mm: MmTlbState, trim: boolean): boolean {
  if (cpu.lazy) return false;
  if (cpu.loaded === mm) return true;
  return trim;
}

/**
 * flush_tlb_func() on `cpu`: leave the mask, switch off a lazy mm, or bring the context up to
 * date. Up to 4.18 (no `lazyMask`) a CPU running another mm just returns ("f->flush_mm !=
 * active_mm"), and a lazy one leaves the mm with leave_mm(), which takes it off the mask.
 */
function flushTlbFunc(cpu: CpuTlbState, mm: MmTlbState, newGen: number, full: boolean, lazyMask: boolean): number {
  if (cpu.loaded !== mm) {
    if (!lazyMask) return FLUSH_NONE;
    mm.cpumask &= ~(1 << cpu.id);
    return FLUSH_LEAVE_MASK;
  }
  if (cpu.lazy) {
    if (!lazyMask) mm.cpumask &= ~(1 << cpu.id);
    cpu.loaded = null;
    cpu.lazy = false;
    return FLUSH_LAZY_SWITCH;
  }
  const local = cpu.localGen;
  if (newGen <= local) return FLUSH_NONE; // a later flush already covered it
  const mmGen = mm.tlbGen;
  cpu.localGen = mmGen;
  if (mmGen === local) return FLUSH_NONE;
  return !full && newGen === local + 1 && newGen === mmGen ? FLUSH_RANGE : FLUSH_FULL;
}
