/**
 * The least-squares fit behind `pte-lab calibrate`. On one CPU the model's cycles for a phase are
 * linear in the cost table: every charge is a count times one cost. So a measured phase i gives
 * one equation Σ_k n_ik θ_k ≈ y_i, with n_ik the phase's count of cost k (found by perturbing the
 * cost, sensitivity.ts) and y_i the real time in cycles. Relative errors are minimised, so a 2 ms
 * phase weighs as much as a 200 ms one, with a weak ridge pulling each cost toward its sourced
 * default: a cost the suite cannot tell apart from another (they always occur together) stays
 * near its default instead of taking an arbitrary share. Costs are kept non-negative.
 */

/** One measured phase: its real time in cycles, and the model's count of each cost key in it. */
export interface FitRow {
  readonly id: string;
  readonly realCycles: number;
  /** Cycles the model charges that no fitted key explains (keys held fixed). */
  readonly fixedCycles: number;
  /** Cost key → how many times the phase charges it. */
  readonly counts: Readonly<Record<string, number>>;
}

export interface FitOptions {
  /** Ridge weight toward the defaults, per key, in relative terms (default DEFAULT_RIDGE). */
  readonly ridge?: number;
}

export interface FitResult {
  /** Fitted cycles for every key any row counts. */
  readonly costs: Record<string, number>;
  /** Keys the fit set to 0 (the non-negativity bound was active). */
  readonly atZero: string[];
}

/** Default ridge: a key twice its default costs as much as one row 1% off. */
export const DEFAULT_RIDGE = 1e-4;

/**
 * Fit the keys the rows count, starting from `defaults` (cycles). Minimises
 * Σ_i ((fixed_i + Σ_k n_ik θ_k − y_i) / y_i)² + ridge · Σ_k ((θ_k − d_k) / s_k)², θ ≥ 0, with s_k
 * = max(d_k, 10) so that a default of 0 still has a scale. Active-set: solve the normal equations,
 * pin the most negative key at 0, solve again.
 */
export function fitCosts(
  rows: readonly FitRow[],
  defaults: Readonly<Record<string, number>>,
  o: FitOptions = {},
): FitResult {
  const ridge = o.ridge ?? DEFAULT_RIDGE;
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.counts).filter((k) => r.counts[k] !== 0)))].sort();
  for (const k of keys) if (!(k in defaults)) throw new Error(`fitCosts: no default for '${k}'`);
  const usable = rows.filter((r) => r.realCycles > 0);
  const scale = keys.map((k) => Math.max(defaults[k]!, 10));
  const free = keys.map(() => true);
  let u: number[] = keys.map((k, j) => defaults[k]! / scale[j]!);
  for (let round = 0; round <= keys.length; round++) {
    u = solveScaled(usable, keys, scale, free, defaults, ridge);
    let worst = -1;
    for (let j = 0; j < keys.length; j++) if (free[j] && u[j]! < 0 && (worst < 0 || u[j]! < u[worst]!)) worst = j;
    if (worst < 0) break;
    free[worst] = false;
  }
  const costs: Record<string, number> = {};
  const atZero: string[] = [];
  keys.forEach((k, j) => {
    const v = free[j] ? Math.max(0, u[j]! * scale[j]!) : 0;
    costs[k] = roundCycles(v);
    if (!free[j]) atZero.push(k);
  });
  return { costs, atZero };
}

/** Cycles to 3 significant figures (a fit is not more precise than that), at least 0. */
export function roundCycles(v: number): number {
  if (v <= 0) return 0;
  const p = Math.pow(10, Math.max(0, Math.floor(Math.log10(v)) - 2));
  return Math.round(v / p) * p;
}

/** Normal equations in scaled units u_k = θ_k / s_k; keys not free are held at 0. */
function solveScaled(
  rows: readonly FitRow[],
  keys: readonly string[],
  scale: readonly number[],
  free: readonly boolean[],
  defaults: Readonly<Record<string, number>>,
  ridge: number,
): number[] {
  const n = keys.length;
  const m = Array.from({ length: n }, () => new Float64Array(n));
  const b = new Float64Array(n);
  for (const r of rows) {
    // Row: Σ_k (n_ik s_k / y_i) u_k ≈ 1 − fixed_i / y_i
    const a = keys.map((k, j) => (free[j] ? ((r.counts[k] ?? 0) * scale[j]!) / r.realCycles : 0));
    const rhs = 1 - r.fixedCycles / r.realCycles;
    for (let j = 0; j < n; j++) {
      if (a[j] === 0) continue;
      b[j] += a[j]! * rhs;
      for (let l = 0; l < n; l++) m[j]![l] += a[j]! * a[l]!;
    }
  }
  for (let j = 0; j < n; j++) {
    if (!free[j]) {
      m[j]!.fill(0);
      m[j]![j] = 1;
      b[j] = 0;
      continue;
    }
    m[j]![j] += ridge;
    b[j] += (ridge * defaults[keys[j]!]!) / scale[j]!;
  }
  return gaussSolve(m, b);
}

/** Solve m·x = b by Gaussian elimination with partial pivoting (m is small and, with the ridge, regular). */
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
