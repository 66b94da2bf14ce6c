import { configError } from './errors.js';

/** Dotted lower-case names such as `faults.minor` or `guest.pte_write`. */
const NAME_RE = /^[a-z0-9_]+(\.[a-z0-9_]+)+$/;

export type TallySnapshot = Readonly<Record<string, number>>;

/**
 * Named numeric slots in a Float64Array. Names are registered once (cold path) and return an
 * integer id; the hot path only does `add(id, n)`. Shared by the cycle ledger and the counters.
 */
export class Tally {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  protected values = new Float64Array(32);

  /** The slot for `name`, registering it on first use. */
  id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      if (!NAME_RE.test(name)) throw configError(`'${name}' is not a dotted name like 'faults.minor'`);
      id = this.names.length;
      this.names.push(name);
      this.ids.set(name, id);
      if (id >= this.values.length) {
        const grown = new Float64Array(this.values.length * 2);
        grown.set(this.values);
        this.values = grown;
      }
    }
    return id;
  }

  add(id: number, n: number): void {
    this.values[id] += n;
  }

  /** Value by name; 0 for a name never registered. */
  get(name: string): number {
    const id = this.ids.get(name);
    return id === undefined ? 0 : this.values[id]!;
  }

  has(name: string): boolean {
    return this.ids.has(name);
  }

  /** Plain object, keys sorted, every registered name present (zeros included). */
  snapshot(): TallySnapshot {
    const out: Record<string, number> = {};
    for (const name of [...this.names].sort()) out[name] = this.values[this.ids.get(name)!]!;
    return out;
  }

  reset(): void {
    this.values.fill(0);
  }
}

/** after − before, over the union of names; names whose difference is 0 are kept. */
export function diffSnapshots(before: TallySnapshot, after: TallySnapshot): TallySnapshot {
  const out: Record<string, number> = {};
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const name of [...names].sort()) out[name] = (after[name] ?? 0) - (before[name] ?? 0);
  return out;
}

/** Event counts with dotted names (`faults.minor`, `pte.prefaulted`, `xen.hypercalls`). */
export class Counters extends Tally {}

/**
 * The cycle ledger: every simulated cycle is charged to one named category (`guest.fault`,
 * `tlb.walk`, `xen.hypercall`, ...). The total is the sum of the categories, never kept apart,
 * so the two cannot disagree. Every cost a scenario reports is a ledger category or a ledger phase
 * (definePhase), never a probe on a layer.
 */
export class CycleLedger extends Tally {
  private readonly phaseNames: string[] = ['none'];
  private phaseTotals = new Float64Array(8);
  private phase = 0;
  /** total() when the current phase was entered: a phase is charged at its transitions, not per charge. */
  private phaseStart = 0;

  charge(id: number, cycles: number): void {
    this.values[id] += cycles;
  }

  /**
   * A phase: a second, cheap tally of the same cycles by what the run was doing when they were
   * charged (a scenario's steps, a backend's pgd pin). Registered once; `none` (0) is the default.
   */
  definePhase(name: string): number {
    let p = this.phaseNames.indexOf(name);
    if (p < 0) {
      p = this.phaseNames.length;
      this.phaseNames.push(name);
      if (p >= this.phaseTotals.length) {
        const grown = new Float64Array(this.phaseTotals.length * 2);
        grown.set(this.phaseTotals);
        this.phaseTotals = grown;
      }
    }
    return p;
  }

  /** Charge to phase `p` from now on; returns the phase it replaces (restore it when done). */
  enterPhase(p: number): number {
    const prev = this.phase;
    const now = this.total();
    this.phaseTotals[prev] += now - this.phaseStart;
    this.phaseStart = now;
    this.phase = p;
    return prev;
  }

  /** Run `fn` in phase `p`, then return to the phase that was current (also when `fn` throws). */
  inPhase<T>(p: number, fn: () => T): T {
    const prev = this.enterPhase(p);
    try {
      return fn();
    } finally {
      this.enterPhase(prev);
    }
  }

  override reset(): void {
    super.reset();
    this.phaseTotals.fill(0);
    this.phaseStart = 0;
  }

  /** Cycles charged while phase `p` was current. */
  phaseTotal(p: number): number {
    return this.phaseTotals[p]! + (p === this.phase ? this.total() - this.phaseStart : 0);
  }

  total(): number {
    let t = 0;
    for (let i = 0; i < this.values.length; i++) t += this.values[i]!;
    return t;
  }
}
