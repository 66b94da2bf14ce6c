/**
 * The least-squares fit behind `pte-lab calibrate`. On one CPU the model's cycles for a phase are
 * linear in the cost table: every charge is a count times one cost. So a measured phase i gives
 * one equation Σ_k n_ik θ_k ≈ y_i, with n_ik the phase's count of cost k (found by perturbing the
 * cost, calibrate.ts) and y_i the real time in cycles. Relative errors are minimised, so a 2 ms
 * phase weighs as much as a 200 ms one. The costs are fitted in log space (θ_k = e^u_k: always
 * positive) with a weak prior pulling each toward its sourced default: costs the suite cannot
 * tell apart (they always occur together) move together, the dearer one further, instead of one
 * taking everything and the other dropping to zero.
 */

/** One measured phase: its real time in cycles, and the model's count of each cost key in it. */
export interface FitRow {
  readonly id: string;
  readonly realCycles: number;
  /** Cycles the model charges that no fitted key explains (keys held fixed). */
  readonly fixedCycles: number;
  /** Cost key → how many times the phase charges it. */
  readonly counts: Readonly<Record<string, number>>;
  /** How much the row counts (default 1): calibrate gives a phase whose real runs vary less weight. */
  readonly weight?: number;
}

export interface FitOptions {
  /** Weight of the prior toward the defaults, per key, on the squared log ratio (default DEFAULT_PRIOR). */
  readonly prior?: number;
}

export interface FitResult {
  /** Fitted cycles for every key any row counts. */
  readonly costs: Record<string, number>;
}

/** Default prior: a key 10× its default costs as much as one row 7% off. */
export const DEFAULT_PRIOR = 1e-3;

/**
 * Fit the keys the rows count, starting from `defaults` (cycles). Minimises
 * Σ_i ((fixed_i + Σ_k n_ik e^u_k − y_i) / y_i)² + prior · Σ_k (u_k − ln d_k)², with d_k =
 * max(default, 1), by Levenberg–Marquardt (Gauss–Newton steps, damped when they do not help).
 */
export function fitCosts(
  rows: readonly FitRow[],
  defaults: Readonly<Record<string, number>>,
  o: FitOptions = {},
): FitResult {
  const prior = o.prior ?? DEFAULT_PRIOR;
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.counts).filter((k) => r.counts[k] !== 0)))].sort();
  for (const k of keys) if (!(k in defaults)) throw new Error(`fitCosts: no default for '${k}'`);
  const usable = rows.filter((r) => r.realCycles > 0);
  const n = keys.length;
  const center = keys.map((k) => Math.log(Math.max(defaults[k]!, 1)));
  let u = [...center];
  const objective = (v: readonly number[]): number => {
    let sum = 0;
    for (const r of usable) {
      const e = residual(r, keys, v) * (r.weight ?? 1);
      sum += e * e;
    }
    for (let j = 0; j < n; j++) sum += prior * (v[j]! - center[j]!) ** 2;
    return sum;
  };
  let f = objective(u);
  let damping = 1e-3;
  for (let iter = 0; iter < 200; iter++) {
    // Normal equations of the linearised problem: (JᵀJ + prior·I + damping·diag) δ = −g.
    const m = Array.from({ length: n }, () => new Float64Array(n));
    const g = new Float64Array(n);
    for (const r of usable) {
      const w = r.weight ?? 1;
      const e = residual(r, keys, u) * w;
      const jrow = keys.map((k, j) => (w * (r.counts[k] ?? 0) * Math.exp(u[j]!)) / r.realCycles);
      for (let a = 0; a < n; a++) {
        if (jrow[a] === 0) continue;
        g[a] += jrow[a]! * e;
        for (let b = 0; b < n; b++) m[a]![b] += jrow[a]! * jrow[b]!;
      }
    }
    for (let j = 0; j < n; j++) {
      g[j] += prior * (u[j]! - center[j]!);
      m[j]![j] += prior;
    }
    let improved = false;
    for (let tries = 0; tries < 30 && !improved; tries++) {
      const md = m.map((row, j) => {
        const c = Float64Array.from(row);
        c[j] += damping * (row[j]! + 1e-12);
        return c;
      });
      const step = gaussSolve(
        md,
        Float64Array.from(g, (x) => -x),
      );
      const next = u.map((x, j) => x + Math.max(-5, Math.min(5, step[j]!)));
      const fn = objective(next);
      if (fn < f) {
        const gain = f - fn;
        u = next;
        f = fn;
        damping = Math.max(damping / 3, 1e-9);
        improved = true;
        if (gain < 1e-12 * (1 + f)) iter = Infinity; // converged
      } else damping *= 4;
    }
    if (!improved) break;
  }
  const costs: Record<string, number> = {};
  keys.forEach((k, j) => (costs[k] = roundCycles(Math.exp(u[j]!))));
  return { costs };
}

/** A row's relative error at log-costs `u`. */
function residual(r: FitRow, keys: readonly string[], u: readonly number[]): number {
  let model = r.fixedCycles;
  for (let j = 0; j < keys.length; j++) {
    const c = r.counts[keys[j]!];
    if (c !== undefined) model += c * Math.exp(u[j]!);
  }
  return (model - r.realCycles) / r.realCycles;
}

/** Cycles to 3 significant figures (a fit is not more precise than that); 0 for a non-positive value. */
export function roundCycles(v: number): number {
  if (v <= 0) return 0;
  const p = Math.pow(10, Math.floor(Math.log10(v)) - 2);
  return p >= 1 ? Math.round(v / p) * p : Math.round(v / p) / Math.round(1 / p);
}

/** Solve m·x = b by Gaussian elimination with partial pivoting (m is small and, with the prior, regular). */
export function gaussSolve(m: Float64Array[], b: Float64Array): number[] {
  const n = b.length;
  const a = m.map((row) => Float64Array.from(row));
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    [a[c], a[p]] = [a[p]!, a[c]!];
    [x[c], x[p]] = [x[p]!, x[c]!];
    const piv = a[c]![c]!;
    if (piv === 0) throw new Error('gaussSolve: singular system');
    for (let r = c + 1; r < n; r++) {
      const f = a[r]![c]! / piv;
      if (f === 0) continue;
      for (let k = c; k < n; k++) a[r]![k] -= f * a[c]![k]!;
      x[r] -= f * x[c]!;
    }
  }
  const out = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r]!;
    for (let k = r + 1; k < n; k++) s -= a[r]![k]! * out[k]!;
    out[r] = s / a[r]![r]!;
  }
  return out;
}
